"""Related results in numbers (numpy and Torch; the SymPy side is :mod:`.derive`).

* :func:`binary_groups`, :func:`reference_token_gradient`: the per-token coefficients of binary-reward
  groups, measured by autograd through the hand-written reference losses (:mod:`grpo_proofs.reference`);
* :func:`regime_group`, :func:`shared_token_gradient`: a group whose completions all start with one shared
  token (same log-probability, same ratio in every completion) and that token's dJ/dx_{i,0} per completion,
  by autograd through the reference loss;
* :func:`min_fix`, :func:`projection_fix`, :func:`fixed_surrogate`: the two cancellation fixes of Ding et
  al. 2026 (arXiv 2604.13088) and the policy-gradient surrogate sum_i A_i sg[w_i] sum_t log pi(y_{i,t});
* :func:`enumerated_baseline`, :func:`sampled_baseline`: E[p_hat | 1 <= R <= G-1] by exact enumeration of
  every reward vector (the baseline read from the project's own centered advantages) and by sampling;
* :func:`covered`: the worst error over the compared items, infinite below a coverage floor.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
import torch

from ...checking import coverage
from ...objective import group_numbers
from ...reference import REFERENCE
from ...variants import Ratio, get_variant

__all__ = ["covered", "binary_groups", "padded", "reference_token_gradient", "regime_group",
           "shared_token_gradient", "min_fix", "projection_fix", "fixed_surrogate", "sequence_ratios",
           "enumerated_baseline", "sampled_baseline"]


def covered(errors: Sequence[float], floor: int) -> tuple[float, int]:
    """(max error, number of items compared); the error is inf when fewer than ``floor`` items were compared
    or any error is not finite.

    >>> covered([1e-16, 3e-16], floor=2), covered([], floor=1)
    ((3e-16, 2), (inf, 0))
    """
    c = coverage.covered(errors, floor)
    return c.error, c.compared


def binary_groups(G_values: Sequence[int], rng: np.random.Generator, max_len: int = 64):
    """Every success count k = 1..G-1 of each G, as (rewards, lengths): k ones then G - k zeros, shuffled,
    with random lengths in 1..max_len."""
    for G in G_values:
        for k in range(1, G):
            yield rng.permutation([1.0] * k + [0.0] * (G - k)), rng.integers(1, max_len + 1, size=G)


def padded(lengths, per_token, junk: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(G, T) float64 tensor of per-token values with ``junk`` in the padding, and the 0/1 mask."""
    T = int(max(lengths))
    vals = torch.full((len(lengths), T), junk, dtype=torch.float64)
    mask = torch.zeros((len(lengths), T), dtype=torch.float64)
    for i, (L, x) in enumerate(zip(lengths, per_token)):
        vals[i, :int(L)] = torch.as_tensor(np.asarray(x, dtype=np.float64))
        mask[i, :int(L)] = 1
    return vals, mask


def _reference_grad(name, rewards, lengths, x, sigma: str) -> torch.Tensor:
    """dJ/d log pi (G, T) by autograd through the reference loss at log-ratios x (old log-probs -1.25 + x0)."""
    old = [np.full(int(L), -1.25) for L in lengths]
    old_t, mask = padded(lengths, old, junk=2.0)
    logp, _ = padded(lengths, [o + xi for o, xi in zip(old, x)], junk=-9.0)
    logp.requires_grad_(True)
    loss = REFERENCE[name](logp, old_t, torch.as_tensor(np.asarray(rewards, dtype=np.float64)), mask, sigma=sigma)
    (g,) = torch.autograd.grad(loss, logp)
    return -g


def reference_token_gradient(name: str, rewards, lengths, sigma: str = "pop") -> list[np.ndarray]:
    """dJ/d log pi(y_{i,t}) at s = 1 by autograd through the hand-written reference loss, one array per completion."""
    g = _reference_grad(name, rewards, lengths, [np.zeros(int(L)) for L in lengths], sigma)
    return [g[i, :int(L)].numpy().copy() for i, L in enumerate(lengths)]


def regime_group(rng: np.random.Generator, variant, ratios: tuple[float, float], ratio_regime: str,
                 equal_lengths: bool, G: int | None = None):
    """A random group whose completions all start with one shared token, in a regime of :mod:`.derive`.

    ``ratios`` are the regime's two ratios (:func:`grpo_proofs.props.related.derive.regime_ratios`, as floats).
    Token kinds: the shared token has ratio ``ratios[0]`` in every completion, the other tokens random ratios
    (all ratios 1 at "s = 1"). Sequence kinds: the shared token has log-ratio 0 and the other tokens carry each
    completion's s_i: all 1, all ``ratios[0]`` past a bound, or distinct values between the two ratios in the
    band. Returns (rewards, lengths, log-ratios per completion, the shared token's ratio, s_i or None).
    """
    v = get_variant(variant)
    G = int(G if G is not None else rng.integers(2, 11))
    if equal_lengths:
        lengths = np.full(G, int(rng.integers(2, 20)))
    else:
        lengths = rng.integers(2, 24, size=G)
        lengths[0] = lengths[1] + 1                       # at least two lengths differ
    while True:
        rewards = rng.integers(0, 2, size=G).astype(float) if rng.random() < 0.5 else np.round(rng.normal(size=G), 3)
        if np.ptp(rewards) > 0:
            break
    at_one = ratio_regime == "s = 1"
    if not v.sequence_level:
        x = [np.zeros(int(L)) if at_one else rng.uniform(-0.3, 0.3, size=int(L)) for L in lengths]
        for xi in x:
            xi[0] = math.log(ratios[0])
        return rewards, lengths, x, ratios[0], None
    lo, hi = sorted(ratios)
    seq = (np.ones(G) if at_one else rng.uniform(lo, hi, size=G) if ratio_regime == "in the band"
           else np.full(G, ratios[0]))
    x = []
    for L, s in zip(lengths, seq):
        total = math.log(s) * (L if v.ratio is Ratio.SEQ_GEOMEAN else 1)   # sum_t x_{i,t} that gives s_i
        xi = np.full(int(L), total / (L - 1))
        xi[0] = 0.0
        x.append(xi)
    return rewards, lengths, x, 1.0, seq


def shared_token_gradient(name: str, rewards, lengths, x, sigma: str = "pop") -> np.ndarray:
    """dJ/dx_{i,0} of every completion i for the token all completions share at position 0 (equal log-prob and
    equal ratio there), by autograd through the reference loss: (G,). Their sum is the token's net coefficient."""
    return _reference_grad(name, rewards, lengths, x, sigma)[:, 0].numpy().copy()


def min_fix(A, w):
    """Every weight replaced by the group's smallest, min_j w_j (numpy or Torch, 1-D over completions)."""
    return w * 0 + w.min()


def projection_fix(A, w):
    """The weights' component along the advantages removed, w - (A.w / |A|^2) A (numpy or Torch)."""
    return w - (A * w).sum() / (A * A).sum() * A


def fixed_surrogate(logp: torch.Tensor, mask: torch.Tensor, A: torch.Tensor, w: torch.Tensor,
                    stop_gradient: bool = True) -> torch.Tensor:
    """J = sum_i A_i sg[w_i] sum_t log pi(y_{i,t}) on padded (G, T) log-probs: its gradient is
    sum_i A_i w_i sum_t grad log pi(y_{i,t}). ``stop_gradient=False`` lets the gradient flow through w too."""
    weight = w.detach() if stop_gradient else w
    return (A * weight * torch.where(mask > 0, logp, torch.zeros((), dtype=logp.dtype)).sum(1)).sum()


def sequence_ratios(logp: torch.Tensor, old: torch.Tensor, mask: torch.Tensor, geometric: bool) -> torch.Tensor:
    """s_i = exp(mean_t x_{i,t}) (geometric, GSPO) or exp(sum_t x_{i,t}) (product, GCPO), x = log pi - log pi_old."""
    u = torch.where(mask > 0, logp - old, torch.zeros((), dtype=logp.dtype)).sum(1)
    return torch.exp(u / mask.sum(1) if geometric else u)


def _baseline(rewards) -> float:
    """p_hat of a group read from the project's centered advantages: r_i - A_i, the same for every i up to
    rounding, averaged over the group."""
    num = group_numbers("dr_grpo", rewards, np.ones(len(rewards), dtype=int))
    return float(np.mean(num.rewards - num.A))


def enumerated_baseline(G: int, ps: Sequence[float]) -> tuple[np.ndarray, int]:
    """E[p_hat | 1 <= R <= G-1] at each p, summed over every reward vector of {0, 1}^G with 1 <= R <= G-1
    (weight p^R (1-p)^(G-R)); returns (means, number of vectors enumerated)."""
    ps = np.asarray(ps, dtype=np.float64)
    num, den, count = np.zeros_like(ps), np.zeros_like(ps), 0
    for r in itertools.product((0.0, 1.0), repeat=G):
        R = int(sum(r))
        if R in (0, G):
            continue
        weight = ps ** R * (1 - ps) ** (G - R)
        num += weight * _baseline(r)
        den += weight
        count += 1
    return num / den, count


def sampled_baseline(G: int, p: float, groups: int, rng: np.random.Generator) -> tuple[float, float, int]:
    """Monte-Carlo: (mean p_hat over the sampled groups with 1 <= R <= G-1, its standard error, groups kept)."""
    R = (rng.random((groups, G)) < p).sum(1)
    keep = R[(R > 0) & (R < G)] / G
    return float(keep.mean()), float(keep.std(ddof=1) / math.sqrt(len(keep))), int(len(keep))
