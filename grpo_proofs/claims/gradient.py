"""Claim ``eq15-gradient``: the SymPy-derived gradient equals autograd of the reference losses.

Three computations of dJ/d log pi_theta(y_{i,t}) that share nothing but their inputs:

1. the per-token gradient SymPy derives from the unified surrogate, compiled to Torch
   (:func:`grpo_proofs.evaluate.token_gradient`);
2. the whole-group gradient SymPy derives for a concrete group, evaluated numerically
   (:func:`grpo_proofs.gradient.group_gradient`, small groups only: it is exact but slow);
3. ``torch.autograd`` through the hand-written reference loss of each method
   (:mod:`grpo_proofs.reference`), negated because the reference returns the loss -J.

Random groups cover G = 2..16, lengths 1..64, tied and untied rewards, and ratios on every clip
branch, kept at least a tenth of eps away from each bound (where the subgradient is a
convention, see :mod:`grpo_proofs.compile`). Limits: at s = 1 the gradient is alpha A; with eps
-> infinity the clipped gradient equals the unclipped one.

The registered formulations beyond Table 1 are covered the same way: DPPO's TV mask with token
probabilities p_old in [0.3, 0.7] and p on each side of p_old +- delta_tv (at least a tenth of
delta_tv away from it), TOPR's and VESPO's sequence weights with the sequence ratio drawn like a
sequence-level ratio (both sides of 1).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch

from .. import notation as n
from .. import tolerances
from ..evaluate import token_gradient, torch_surrogate
from ..gradient import group_gradient
from ..numerics import rel_err
from ..objective import group_numbers, surrogate
from ..variants import VARIANTS, Ratio, Surrogate, Variant
from . import Context, Outcome, claim

__all__ = ["random_group", "random_old", "padded", "reference_gradient", "symbolic_group_gradient", "check_variant",
           "without_clip"]


def _region_ratio(rng: np.random.Generator, v: Variant) -> float:
    """A ratio drawn on a random clip branch, at least eps/10 away from every bound."""
    lo = 1 - v.eps_low if v.eps_low is not None else None
    hi = 1 + v.eps_up if v.eps_up is not None else None
    m = 0.1 * min(e for e in (v.eps_low, v.eps_up, 0.2) if e is not None)
    choices = ["inside"] + (["below"] if lo is not None else []) + (["above"] if hi is not None else [])
    where = choices[rng.integers(len(choices))]
    if where == "below":
        return float(rng.uniform(max(lo - 3 * v.eps_low, 0.05), lo - m))
    if where == "above":
        return float(rng.uniform(hi + m, hi + 3 * v.eps_up))
    return float(rng.uniform(lo + m if lo is not None else 0.3, hi - m if hi is not None else 3.0))


def random_group(rng: np.random.Generator, v: Variant, G: int | None = None, max_len: int = 64):
    """(rewards, lengths, log_ratios) of a random group for variant ``v``."""
    G = int(G if G is not None else rng.integers(2, 17))
    lengths = rng.integers(1, max_len + 1, size=G)
    while True:
        rewards = rng.integers(0, 2, size=G).astype(float) if rng.random() < 0.5 else np.round(rng.normal(size=G), 3)
        if np.ptp(rewards) > 0:
            break
    log_ratios = []
    for L in lengths:
        if v.sequence_level or v.ratio is Ratio.SEQ_SG_WEIGHT:
            s = _region_ratio(rng, v)
            noise = rng.normal(scale=0.05, size=L)
            noise -= noise.mean()
            target = math.log(s) if v.ratio is Ratio.SEQ_GEOMEAN else math.log(s) / L  # product: sum = log s
            log_ratios.append(target + noise)
        else:
            log_ratios.append(np.log([_region_ratio(rng, v) for _ in range(L)]))
    return rewards, lengths, log_ratios


def random_old(rng: np.random.Generator, v: Variant, log_ratios) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(log pi_old, log-ratios) for a variant whose term reads pi_old itself (DPPO's TV mask):
    p_old uniform in [0.3, 0.7], p = pi_theta drawn inside the band |p - p_old| < delta_tv, above it or
    below it, at least a tenth of delta_tv from its edges. Other variants: the log-ratios unchanged
    and log pi_old = -2 +- 0.5 (any constants)."""
    if not v.needs_old_logp:
        return [rng.normal(-2.0, 0.5, size=len(x)) for x in log_ratios], list(log_ratios)
    d = v.phi_params["delta_tv"]
    m = 0.1 * d
    olds, xs = [], []
    for x in log_ratios:
        p_old = rng.uniform(0.3, 0.7, size=len(x))
        where = rng.integers(3, size=len(x))
        lo = np.where(where == 0, p_old - d + m, np.where(where == 1, p_old + d + m, np.maximum(p_old - 3 * d, 0.01)))
        hi = np.where(where == 0, p_old + d - m, np.where(where == 1, np.minimum(p_old + 3 * d, 0.99), p_old - d - m))
        p = rng.uniform(lo, hi)
        olds.append(np.log(p_old))
        xs.append(np.log(p) - np.log(p_old))
    return olds, xs


def without_clip(v: Variant) -> Variant:
    """``v`` without its clip: the plain s A term for a clipped or penalised token term."""
    kind = Surrogate.CLIP if v.surrogate is Surrogate.QUADRATIC else v.surrogate
    return v.replace(eps_low=None, eps_up=None, surrogate=kind)


def padded(lengths, per_token, junk: float = 1e3) -> tuple[torch.Tensor, torch.Tensor]:
    """(G, T) float64 tensor of per-token values with junk in the padding, and the mask."""
    T = int(max(lengths))
    vals = torch.full((len(lengths), T), junk, dtype=torch.float64)
    mask = torch.zeros((len(lengths), T), dtype=torch.float64)
    for i, (L, p) in enumerate(zip(lengths, per_token)):
        vals[i, :L] = torch.as_tensor(np.asarray(p, dtype=np.float64))
        mask[i, :L] = 1
    return vals, mask


def reference_gradient(name: str, rewards, lengths, log_ratios, sigma: str = "pop", old=None) -> list[np.ndarray]:
    """dJ/d log pi by autograd through the hand-written reference loss (loss = -J); ``old``: log pi_old
    per token (default: random constants, which only a term reading pi_old itself depends on)."""
    from ..reference import REFERENCE

    rng = np.random.default_rng(0)
    if old is None:
        old = [rng.normal(-2.0, 0.5, size=len(x)) for x in log_ratios]  # log pi_old: any constants
    old_t, mask = padded(lengths, old, junk=-7.0)
    logp, _ = padded(lengths, [o + x for o, x in zip(old, log_ratios)], junk=1e3)
    logp.requires_grad_(True)
    loss = REFERENCE[name](logp, old_t, torch.as_tensor(np.asarray(rewards, dtype=np.float64)), mask, sigma=sigma)
    (grad,) = torch.autograd.grad(loss, logp)
    g = -grad.detach().numpy()
    if np.any(g[mask.numpy() == 0] != 0):
        raise AssertionError(f"reference {name}: gradient leaks into padding")
    return [g[i, :L].copy() for i, L in enumerate(lengths)]


def symbolic_group_gradient(v: Variant, rewards, lengths, log_ratios, sigma: str = "pop", old=None) -> list[np.ndarray]:
    """The exact group gradient of SymPy, evaluated at the given numbers (``old``: log pi_old per
    token, for the terms that read it; default log pi_old = -2)."""
    grp = surrogate(v, lengths)
    num = group_numbers(v, rewards, lengths, sigma=sigma)
    subs = {sym: sp.Float(a, 30) for sym, a in zip(grp.A, num.A)}
    subs.update({n.M: 1, n.lam: 1, n.delta: 1, n.chi: 1})  # default masks, as in group_numbers
    if num.sigma is not None:
        subs[n.sigma] = sp.Float(num.sigma, 30)
    out = []
    for i, (xi, gi, lr) in enumerate(zip(grp.x, group_gradient(grp), log_ratios)):
        point = dict(subs)
        point.update({xs: sp.Float(val, 30) for xs, val in zip(xi, lr)})
        if grp.old:
            oi = old[i] if old is not None else np.full(len(xi), -2.0)
            point.update({os_: sp.Float(val, 30) for os_, val in zip(grp.old[i], oi)})
        out.append(np.array([float(expr.subs(point)) for expr in gi]))
    return out


def surrogate_autograd(v: Variant, rewards, lengths, log_ratios, sigma: str = "pop", old=None) -> list[np.ndarray]:
    """dJ/d log pi by autograd through the compiled surrogate J itself (torch_surrogate)."""
    old = old if old is not None else [np.full(len(x), -1.5) for x in log_ratios]
    old_t, mask = padded(lengths, old, junk=3.0)
    logp, _ = padded(lengths, [o + x for o, x in zip(old, log_ratios)], junk=-1e3)
    logp.requires_grad_(True)
    J = torch_surrogate(v, logp, old_t, np.asarray(rewards, dtype=np.float64), mask, sigma=sigma)
    (grad,) = torch.autograd.grad(J, logp)
    return [grad[i, :L].numpy().copy() for i, L in enumerate(lengths)]


def check_variant(v: Variant, rewards, lengths, log_ratios, sigma: str = "pop", symbolic: bool = False,
                  old=None) -> float:
    """Largest relative error between the derived gradient and the independent computations
    (reference autograd; the exact group gradient if ``symbolic``), and between the derived
    gradient and autograd of the compiled surrogate that real models are trained on. ``old``:
    log pi_old per token, given to every path (needed by terms that read pi_old itself)."""
    kw = {"old_logp": old} if v.needs_old_logp else {}
    derived = token_gradient(v, rewards, lengths, log_ratios, sigma=sigma, **kw)
    err = rel_err(derived, reference_gradient(v.name, rewards, lengths, log_ratios, sigma, old=old))
    err = max(err, rel_err(surrogate_autograd(v, rewards, lengths, log_ratios, sigma, old=old), derived))
    if symbolic:
        err = max(err, rel_err(derived, symbolic_group_gradient(v, rewards, lengths, log_ratios, sigma, old=old)))
    return err


@claim(
    "eq15-gradient",
    title="Gradient of the unified surrogate (Eq. 13-15, 28)",
    page="gradient",
    statement=(
        "For every Table 1 method, dJ/d log pi_theta(y_{i,t}) = alpha_{i,t} A_i s_{i,t} on the unclipped "
        "branch (with the method's ratio kind) and 0 on the clipped branch; the SymPy-derived gradient "
        "equals autograd of an independent reference loss. The same holds for the registered formulations "
        "beyond Table 1 (CFPO, DPPO-TV, UP, TOPR, LUSPO, SAPO, VESPO, STARE, WAPO), each with its own term."
    ),
    kind="numeric",
)
def check_eq15(ctx: Context) -> Outcome:
    rng = np.random.default_rng(ctx.seed)
    n_groups = 3 if ctx.quick else 12
    worst, where = 0.0, ""
    for name, v in VARIANTS.items():
        for k in range(n_groups):
            rewards, lengths, lr = random_group(rng, v, G=3 if k == 0 else None, max_len=8 if k == 0 else 64)
            old, lr = random_old(rng, v, lr)
            sigma = "sample" if k % 2 else "pop"
            err = check_variant(v, rewards, lengths, lr, sigma, symbolic=(k == 0), old=old)
            if err > worst:
                worst, where = err, f"{name} (G={len(lengths)})"
        # limits: s = 1 gives alpha A; eps -> infinity removes clipping
        rewards, lengths, lr = random_group(rng, v)
        num = group_numbers(v, rewards, lengths)
        at_one = token_gradient(v, rewards, lengths)
        per_token = [np.full_like(a, a.sum() * A) if v.ratio is Ratio.SEQ_PRODUCT else a * A for a, A in zip(num.alpha, num.A)]
        worst = max(worst, rel_err(at_one, per_token))
        if v.clipped:
            wide = v.replace(eps_low=1e18 if v.eps_low is not None else None, eps_up=1e18 if v.eps_up is not None else None)
            unclipped = without_clip(v)
            worst = max(worst, rel_err(token_gradient(wide, rewards, lengths, lr), token_gradient(unclipped, rewards, lengths, lr)))
    return Outcome(worst, tolerances.CLOSED_FORM, detail=f"worst: {where}" if where else "", data={"groups_per_variant": n_groups, "variants": len(VARIANTS)})
