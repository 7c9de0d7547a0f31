"""The method x finding table in numbers: three measures per registered method, from a given gradient.

For one group (rewards ``REWARDS``, lengths ``LENGTHS``, pi_old = 1/2 on every token), with
``grad(name, rewards, log_ratios)`` any function returning dJ/d log pi per token:

* **Prop. 1** -- W = sum_i dJ/dx_{i,1} at s = 1, the net coefficient of a first token shared by the whole
  group, and W / sum_i |dJ/dx_{i,1}| (0 when the weights cancel);
* **Prop. 2** -- the factor rho by which the gradient changes when every reward is multiplied by
  ``PHI`` (least squares over the tokens, at the log-ratios :func:`inside_ratios`), and the residual
  ``|g(PHI r) - rho g(r)| / |g(PHI r)|`` (0 when the gradient is proportional). rho = 1: the std
  normalisation cancels the scale; rho = PHI: the gradient scales and Adam's step does not, up to
  its eps factor (Prop. 2);
* **Props. 3, 7** -- the summed gradient of the positive-advantage completions with every token at
  s = :data:`S_PAST_UP`, divided by its value at s = 1, and the same for the negative-advantage
  completions at s = :data:`S_PAST_LOW`. 0: the gradient is exactly zero past the bound, so only
  Adam's momentum moves the ratio on (Prop. 3); < 0: it pulls back (a restoring term); > 0: it pushes on.

:func:`derived_gradient` is the compiled symbolic gradient (:func:`grpo_proofs.evaluate.token_gradient`),
:func:`reference_gradient` autograd of :mod:`grpo_proofs.reference`; the claim compares the two.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

__all__ = ["REWARDS", "LENGTHS", "PHI", "S_PAST_UP", "S_PAST_LOW", "P_OLD", "inside_ratios", "derived_gradient",
           "reference_gradient", "measures", "verdicts"]

#: the group: two correct answers, two wrong ones, of unequal lengths (the findings page's worked example)
REWARDS = (1.0, 0.0, 0.0, 1.0)
LENGTHS = (10, 30, 20, 40)
#: the reward scale of the Prop. 2 column
PHI = 10.0
#: the ratios past every registered bound: 1.5 > 1 + eps_up (at most 0.28) and DPPO's p - p_old = 0.25 > 0.2
#: with p_old = 1/2; 0.5 < 1 - eps_low (at least 0.8) and p_old - p = 0.25 > 0.2
S_PAST_UP, S_PAST_LOW = 1.5, 0.5
#: pi_old of every token (DPPO's mask reads it)
P_OLD = 0.5


def inside_ratios(lengths=LENGTHS) -> list[np.ndarray]:
    """Log-ratios of order 1e-5 that vary by token (inside every clip band, GSPO's 3e-4 included)."""
    return [1e-5 * np.sin(np.arange(L) + 1.7 * i) for i, L in enumerate(lengths)]


def derived_gradient(name, rewards, log_ratios, sigma: str = "pop", masks=None) -> list[np.ndarray]:
    """dJ/d log pi by the compiled symbolic gradient of ``name`` (a registry name or a Variant), pi_old =
    :data:`P_OLD` per token; ``masks`` maps the rewards to the weight's masks (or is None)."""
    from ...evaluate import token_gradient

    old = [np.full(L, math.log(P_OLD)) for L in LENGTHS]
    return token_gradient(name, list(rewards), list(LENGTHS), log_ratios=log_ratios, old_logp=old, sigma=sigma,
                          masks=masks(rewards) if masks else None)


def reference_gradient(name: str, rewards, log_ratios, references: dict | None = None) -> list[np.ndarray]:
    """dJ/d log pi by autograd of the hand-written reference loss of ``name`` (``references`` overrides
    :data:`grpo_proofs.reference.REFERENCE`), pi_old = :data:`P_OLD` per token."""
    from ...reference import REFERENCE

    loss = (references or REFERENCE)[name]
    L = torch.as_tensor(LENGTHS)
    mask = (torch.arange(int(L.max()))[None, :] < L[:, None]).double()
    old = torch.full(mask.shape, math.log(P_OLD), dtype=torch.float64)
    x = torch.zeros_like(old)
    for i, lr in enumerate(log_ratios or ()):
        x[i, : len(lr)] = torch.as_tensor(lr, dtype=torch.float64)
    logp = (old + x).requires_grad_(True)
    (g,) = torch.autograd.grad(loss(logp, old, torch.as_tensor(rewards, dtype=torch.float64), mask), logp)
    return [-g[i, :Li].numpy() for i, Li in enumerate(LENGTHS)]


def _past(lengths=LENGTHS, rewards=REWARDS) -> list[np.ndarray]:
    A = np.asarray(rewards) - np.mean(rewards)
    return [np.full(L, math.log(S_PAST_UP if a > 0 else S_PAST_LOW)) for L, a in zip(lengths, A)]


def measures(grad: Callable) -> dict:
    """The three findings' measures of one method from ``grad(rewards, log_ratios)`` (see the module docstring)."""
    at1 = grad(REWARDS, None)
    first = np.array([g[0] for g in at1])
    W = float(first.sum())
    W_rel = abs(W) / float(np.abs(first).sum()) if np.abs(first).sum() > 0 else 0.0
    inside = inside_ratios()
    g1 = np.concatenate(grad(REWARDS, inside))
    gphi = np.concatenate(grad(tuple(PHI * r for r in REWARDS), inside))
    rho = float(gphi @ g1 / (g1 @ g1))
    resid = float(np.linalg.norm(gphi - rho * g1) / np.linalg.norm(gphi))
    past = grad(REWARDS, _past())
    A = np.asarray(REWARDS) - np.mean(REWARDS)
    out = {"W": W, "W_rel": W_rel, "rho": rho, "residual": resid}
    for key, side in (("past_up", A > 0), ("past_low", A < 0)):
        base = sum(float(at1[i].sum()) for i in np.flatnonzero(side))
        moved = sum(float(past[i].sum()) for i in np.flatnonzero(side))
        out[key] = moved / base if base != 0 else math.nan  # nan: no gradient on that side at all
    return out


#: relative size below which a measure counts as zero (far above float64 rounding of these sums)
ZERO = 1e-9


def _side(r: float) -> str:
    if math.isnan(r):
        return "no update"
    if abs(r) <= ZERO:
        return "zero"
    return "pulls back" if r < 0 else "pushes on"


def verdicts(m: dict) -> dict:
    """The verdict of each finding, read off the measures ``m`` of :func:`measures` (never typed per method)."""
    prefix = "cancels (W = 0)" if m["W_rel"] <= ZERO else ("W > 0" if m["W"] > 0 else "W < 0")
    if m["residual"] > 1e-6:
        scale = "not proportional"
    elif abs(m["rho"] - 1) <= 1e-6:
        scale = "unchanged (sigma cancels)"
    elif abs(m["rho"] - PHI) <= 1e-6 * PHI:
        scale = f"x{PHI:g}; Adam's step unchanged up to eps"
    elif abs(m["rho"] - 1) <= 1e-2:
        scale = f"x{m['rho']:.6g} (sigma cancels up to its added constant)"
    else:
        scale = f"x{m['rho']:.3g}"
    up, low = _side(m["past_up"]), _side(m["past_low"])
    overshoot = "momentum only past the bound (Prop. 3)" if {up, low} <= {"zero", "no update"} else f"A>0: {up}; A<0: {low}"
    return {"prefix": prefix, "scale": scale, "overshoot": overshoot}
