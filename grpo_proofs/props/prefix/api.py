"""Proposition 1 (arXiv 2601.05002, Sec. 4, App. B.2): the net coefficient on a shared prefix.

If the completions i in a subset S of the group share a prefix y_{1:k} (same tokens, same context),
then grad log pi(y_t | x, y_<t) is the same vector for every i in S, so the gradient of the surrogate
J gives the prefix

    sum_{t<=k} W_t grad log pi(y_t | x, y_<t),     W_t = sum_{i in S} dJ/dx_{i,t} = sum_{i in S} A_i omega_{i,t}

with x_{i,t} = log pi_theta - log pi_old and omega_{i,t} the effective per-token coefficient
(alpha_{i,t} s_{i,t} on the unclipped branch, 0 on the clipped one). Here
dJ/dx_{i,t} is the gradient SymPy derives from the unified surrogate
(:func:`grpo_proofs.evaluate.token_gradient`), not a typed formula.

* Whole group with group-constant omega (Dr. GRPO, DAPO at a common ratio): W = 0.
* Whole group in general: W = G Cov_pop(A, omega); for a subset,
  W = |S| Cov_S(A, omega) + |S| mean_S(A) mean_S(omega) (the second term is the subset's own advantage).
* Token ratios: the shared token has the same ratio s in every completion of S (same token, same
  context, same pi_theta and pi_old), but the clip branch depends on sign(A_i): past 1 + eps_up only
  A_i < 0 completions contribute, past 1 - eps_low only A_i > 0 ones (a restoring gradient).
* Sequence ratios (GSPO, GCPO): dJ/dx_{i,t} depends on the whole completion through s_i, the same
  for every token of completion i, so W needs one s_i per completion (``sequence_ratios``).

With the default masks (M = lambda = delta = 1) alpha_{i,t} does not depend on t, so W_t is the same
for every prefix position with the same token ratio: call once per position for differing ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ...evaluate import batched_gradient, weights_gradient
from ...weights import GroupWeights, group_weights, split_by_completion
from ...validate import rewards_and_lengths, sigma_kind
from ...variants import Ratio, Variant, get_variant
from ..gradient.api import padded
from .inputs import check_prefix_inputs, check_shared

__all__ = ["PrefixTerms", "prefix_terms", "group_terms", "prefix_coefficient", "check_shared", "reference_W"]


@dataclass(frozen=True)
class PrefixTerms:
    """W of one shared prefix position and its decomposition (arrays are over the whole group)."""

    variant: str
    #: indices i in S, sorted
    shared: tuple[int, ...]
    #: centered advantages A_i = r_i - mean r
    A: np.ndarray
    #: omega_i at the prefix position: dJ/dx_{i,t} / A_i (A_i != 0); unclipped branch where A_i = 0
    omega: np.ndarray
    #: dJ/dx_{i,t} at the prefix position's ratio, for every completion (only i in S enter W)
    gradient: np.ndarray
    #: W = sum_{i in S} dJ/dx_{i,t}
    W: float
    #: |S| Cov_S(A, omega) (population covariance over S)
    covariance_term: float
    #: |S| mean_S(A) mean_S(omega) (0 for the whole group)
    mean_term: float
    sigma: float | None

    @property
    def contributions(self) -> np.ndarray:
        """A_i omega_i for i in S (same order as ``shared``)."""
        idx = list(self.shared)
        return self.A[idx] * self.omega[idx]

    def dominant(self, top: int | None = None) -> list[tuple[int, float, float]]:
        """(i, A_i omega_i, share of sum_S |A_i omega_i|) sorted by |A_i omega_i|, largest first."""
        c = self.contributions
        total = float(np.abs(c).sum())
        order = np.argsort(-np.abs(c), kind="stable")[: top or len(c)]
        return [(self.shared[j], float(c[j]), float(abs(c[j]) / total) if total > 0 else 0.0) for j in order]


def _log_ratios(v: Variant, lengths: np.ndarray, ratio: float, seq: np.ndarray | None) -> list[np.ndarray]:
    """Log-ratios of every token that put the prefix position (t = 0) at the asked ratio.

    Token kinds: x_{i,0} = log(ratio) (the other tokens do not enter dJ/dx_{i,0}). Sequence kinds:
    x such that the sequence ratio is s_i (mean of x = log s_i for GSPO, sum = log s_i for GCPO).
    """
    if seq is None:
        return [np.concatenate([[math.log(ratio)], np.zeros(int(L) - 1)]) for L in lengths]
    if v.ratio is Ratio.SEQ_GEOMEAN:
        return [np.full(int(L), math.log(s)) for L, s in zip(lengths, seq)]
    return [np.full(int(L), math.log(s) / int(L)) for L, s in zip(lengths, seq)]


def _unclipped_omega(v: Variant, num, x: list[np.ndarray], lengths: np.ndarray) -> np.ndarray:
    """omega_i on the unclipped branch (dJ/dx at A = 1 with the clip region removed), at t = 0."""
    u = v if v.ratio in (Ratio.LOGPROB, Ratio.SG_WEIGHT) else v.replace(eps_low=None, eps_up=None)
    idx = torch.repeat_interleave(torch.arange(len(lengths)), torch.as_tensor(lengths))
    n_tok = int(lengths.sum())
    g = batched_gradient(u, alpha=torch.as_tensor(np.concatenate(num.alpha)), A=torch.ones(n_tok, dtype=torch.float64),
                         x=torch.as_tensor(np.concatenate(x)), lengths=torch.as_tensor(lengths, dtype=torch.float64),
                         seq_index=idx).numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return g[starts]


def prefix_terms(
    variant: "str | Variant",
    rewards: Sequence[float],
    lengths: Sequence[int],
    shared: Sequence[int] | None = None,
    ratio: float = 1.0,
    sequence_ratios: Sequence[float] | None = None,
    sigma: str = "pop",
) -> PrefixTerms:
    """W of a shared prefix position with its covariance decomposition and per-completion terms.

    Same arguments as :func:`prefix_coefficient`.

    >>> t = prefix_terms("grpo", [1, 0, 0, 1], [10, 30, 20, 40])
    >>> [float(1 / w) for w in t.omega]              # omega_i = alpha_i = 1/(G |o_i| sigma)
    [20.0, 60.0, 40.0, 80.0]
    >>> t.dominant(2)                                 # (i, A_i omega_i, share of sum |A_i omega_i|)
    [(0, 0.025, 0.48), (2, -0.0125, 0.24)]
    """
    v = get_variant(variant)
    sigma_kind(sigma)
    r, L = rewards_and_lengths(rewards, lengths)
    return group_terms(v, group_weights(v, r, L, sigma=sigma), shared, ratio, sequence_ratios)


def group_terms(v: Variant, w: GroupWeights, shared: Sequence[int] | None = None, ratio: float = 1.0,
                sequence_ratios: Sequence[float] | None = None) -> PrefixTerms:
    """:func:`prefix_terms` of a resolved variant on a group whose weights ``w`` are already evaluated
    (:func:`grpo_proofs.weights.group_weights`): for callers that ask one group at several ratios."""
    r, L = w.rewards, w.lengths
    S, ratio, seq = check_prefix_inputs(v, len(r), shared, ratio, sequence_ratios)
    num = split_by_completion(w)
    x = _log_ratios(v, L, ratio, seq)
    grad = np.array([g[0] for g in weights_gradient(v, w, log_ratios=x)])
    omega = _unclipped_omega(v, num, x, L)
    nz = num.A != 0
    omega[nz] = grad[nz] / num.A[nz]
    idx = list(S)
    A_S, w_S = num.A[idx], omega[idx]
    mean_term = float(len(S) * A_S.mean() * w_S.mean())
    cov_term = float(len(S) * np.mean((A_S - A_S.mean()) * (w_S - w_S.mean())))
    return PrefixTerms(v.name, S, num.A, omega, grad, float(grad[idx].sum()), cov_term, mean_term, num.sigma)


def prefix_coefficient(
    variant: "str | Variant",
    rewards: Sequence[float],
    lengths: Sequence[int],
    shared: Sequence[int] | None = None,
    ratio: float = 1.0,
    sequence_ratios: Sequence[float] | None = None,
    sigma: str = "pop",
) -> float:
    """W_t = sum_{i in S} A_i omega_{i,t}: the net coefficient of grad log pi(y_t | x, y_<t) on a shared prefix.

    Source: arXiv 2601.05002, Proposition 1 (Sec. 4, App. B.2). W_t is the sum over the completions
    that share the prefix of dJ/dx_{i,t}, the gradient SymPy derives from the unified surrogate
    (Eq. 1; Eq. 15 on the unclipped branch, Eq. 28 on the clipped one), J maximised, beta = 0.

    Args:
        variant: a registry name or a :class:`~grpo_proofs.variants.Variant`.
        rewards, lengths: r_i and |o_i| of the G completions of the group.
        shared: indices i of the completions that share the prefix (the subset S); default all.
        ratio: the importance ratio s = pi_theta/pi_old of the prefix token, common to every i in S
            (token-level variants; irrelevant for GPG, whose surrogate has no ratio).
        sequence_ratios: one s_i per completion (sequence-level variants GSPO/GCPO, default all 1).
        sigma: ``"pop"`` (population) or ``"sample"`` std of the rewards.

    Worked example of the prefix page (G = 4, r = [1, 0, 0, 1], |o| = [10, 30, 20, 40], s = 1, whole group):
    GRPO with the population std gives W = sqrt(p(1-p)) (h_c - h_w) = (1/2)(1/16 - 1/24) = 1/96;
    Dr. GRPO and DAPO weights are group-constant, so W = 0.

    >>> from fractions import Fraction
    >>> W = prefix_coefficient("grpo", [1, 0, 0, 1], [10, 30, 20, 40])
    >>> Fraction(W).limit_denominator(10_000), abs(W - 1 / 96) < 1e-17
    (Fraction(1, 96), True)
    >>> [prefix_coefficient(name, [1, 0, 0, 1], [10, 30, 20, 40]) for name in ("dr_grpo", "dapo")]
    [0.0, 0.0]
    >>> prefix_coefficient("dr_grpo", [1, 0, 0, 1], [10, 30, 20, 40], ratio=1.25)   # past 1 + eps: only A < 0 pull
    -0.3125
    """
    return prefix_terms(variant, rewards, lengths, shared, ratio, sequence_ratios, sigma).W


def reference_W(name: str, rewards, lengths, S, log_ratios, sigma: str = "pop") -> tuple[float, float]:
    """(sum_{i in S} dJ/dx_{i,0}, sum_{i in S} |dJ/dx_{i,0}|) by autograd through the hand-written
    reference loss (shares nothing with the derived path but the inputs)."""
    from ...reference import REFERENCE

    old = [np.full(len(x), -1.25) for x in log_ratios]
    old_t, mask = padded(lengths, old, junk=2.0)
    logp, _ = padded(lengths, [o + x for o, x in zip(old, log_ratios)], junk=-9.0)
    logp.requires_grad_(True)
    loss = REFERENCE[name](logp, old_t, torch.as_tensor(np.asarray(rewards, dtype=np.float64)), mask, sigma=sigma)
    (g,) = torch.autograd.grad(loss, logp)
    return float(-g[list(S), 0].sum()), float(g[list(S), 0].abs().sum())
