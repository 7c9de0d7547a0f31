"""Numbers behind the gradient claims: random groups on every clip branch, padded batches, and the two
autograd paths (the hand-written reference loss, the compiled surrogate) that the derived gradient of
:func:`grpo_proofs.evaluate.token_gradient` is compared with."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...evaluate import torch_surrogate
from ...variants import Ratio, Surrogate, Variant

__all__ = ["random_group", "random_old", "without_clip", "padded", "reference_gradient", "surrogate_autograd"]


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
    from ...reference import REFERENCE

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


def surrogate_autograd(v: Variant, rewards, lengths, log_ratios, sigma: str = "pop", old=None) -> list[np.ndarray]:
    """dJ/d log pi by autograd through the compiled surrogate J itself (torch_surrogate)."""
    old = old if old is not None else [np.full(len(x), -1.5) for x in log_ratios]
    old_t, mask = padded(lengths, old, junk=3.0)
    logp, _ = padded(lengths, [o + x for o, x in zip(old, log_ratios)], junk=-1e3)
    logp.requires_grad_(True)
    J = torch_surrogate(v, logp, old_t, np.asarray(rewards, dtype=np.float64), mask, sigma=sigma)
    (grad,) = torch.autograd.grad(J, logp)
    return [grad[i, :L].numpy().copy() for i, L in enumerate(lengths)]
