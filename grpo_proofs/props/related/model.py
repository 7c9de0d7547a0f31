"""The cancellation fixes of Ding et al. 2026 (arXiv 2604.13088) on a real transformer (Torch only).

A group is sampled from the float64 GPT-2 ``tiny`` preset (:mod:`grpo_proofs.runtime.policy`) with a forced prefix
shared by the whole group or by a subset S; every prefix position carries one log-ratio, common to the
completions of S. Three gradients of the model's parameters are taken, keeping only the prefix positions
of S (the other log-probs enter with their values, detached):

* ``none``: the method's hand-written reference loss (:mod:`grpo_proofs.reference`), the unfixed gradient;
* ``min`` / ``projection``: the policy-gradient surrogate sum_i A_i sg[w'_i] sum_t log pi(y_{i,t}) with the
  fixed weights w' of the per-completion weights w_i = omega_i of the prefix position;
* ``<fix>, no stop-gradient``: the same with w_i = sg[w_i / s_i] s_i(theta) for a sequence ratio s_i, so
  the gradient also flows through the weights.

Each is compared with W grad sum_t log pi(y_t | x, y_<t) from ONE copy of the prefix, W = sum_{i in S}
A_i w_i (w' for the fixes). Errors: |g - g_pred|_inf / |g_pred|_inf, or |g|_inf / |g_U|_inf where W cancels
(|W| <= ``cancel`` sum_{i in S} |A_i w_i|), g_U the gradient the prefix would get without cancellation
(one copy's gradient itself where every weight is 0). The model runs on one CPU thread (its matrices are tiny).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ...runtime.threads import one_thread
from ...runtime.policy import PolicyConfig, build_policy, prefix_logprobs, sample_group, token_logprobs
from ..prefix.api import prefix_terms
from ...reference import REFERENCE
from ...variants import Ratio, get_variant
from .api import fixed_surrogate, min_fix, projection_fix, sequence_ratios

__all__ = ["Case", "FIXES", "Row", "fix_rows"]

#: the fixes, by name: (A, w) -> w'
FIXES: dict[str, Callable] = {"min": min_fix, "projection": projection_fix}


@dataclass(frozen=True)
class Case:
    """One method in one regime: the prefix positions' common ratio (token kinds) or the completions'
    sequence ratios drawn between ``seq`` (sequence kinds)."""

    variant: str
    regime: str
    ratio: float = 1.0
    seq: tuple[float, float] | None = None


@dataclass(frozen=True)
class Row:
    variant: str
    regime: str
    #: "whole group" or "subset"
    shared: str
    #: "none", "min", "projection", or "<fix>, no stop-gradient"
    fix: str
    W: float
    uncancelled: float
    #: W cancels: the measured gradient must vanish
    cancels: bool
    error: float
    #: |g|_inf / |g_U|_inf: how much of the uncancelled gradient remains
    remaining: float


def _flat(grads, params) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(q)).reshape(-1) for g, q in zip(grads, params)])


def _log_ratios(case: Case, v, lengths, k: int, S, rng) -> torch.Tensor:
    """x_{i,t}: the prefix positions of S at log(case.ratio) (0 for sequence kinds), the others random; for
    sequence kinds the other tokens carry each completion's s_i."""
    T = int(max(lengths))
    x = torch.zeros(len(lengths), T, dtype=torch.float64)
    for i, L in enumerate(lengths):
        L = int(L)
        if v.sequence_level:
            if case.seq is not None:
                s = float(rng.uniform(*case.seq))
                total = math.log(s) * (L if v.ratio is Ratio.SEQ_GEOMEAN else 1)
                start = k if i in S else 0
                x[i, start:L] = total / (L - start)
        else:
            x[i, :L] = torch.as_tensor(rng.uniform(-0.3, 0.3, size=L)) if case.regime != "s = 1" else 0.0
            if i in S:
                x[i, :k] = math.log(case.ratio)
    return x


def fix_rows(case: Case, fixes: dict[str, Callable] = FIXES, *, seed: int = 0, G: int = 8,
             prefix: Sequence[int] = (5, 7, 9), cancel: float = 1e-12) -> list[Row]:
    """The rows of one case on a whole-group and a subset group sampled from the float64 tiny GPT-2."""
    with one_thread("cpu"):
        return _rows(get_variant(case.variant), case, fixes, seed, G, tuple(prefix), cancel)


def _rows(v, case: Case, fixes, seed: int, G: int, prefix: tuple[int, ...], cancel: float) -> list[Row]:
    model = build_policy(PolicyConfig.tiny(seed=seed))
    params = [q for q in model.parameters() if q.requires_grad]
    rng = np.random.default_rng(seed)
    rows = []
    for n_shared, shared in enumerate(("whole group", "subset")):
        S = tuple(range(G)) if shared == "whole group" else tuple(range(math.ceil(2 * G / 3)))
        group = sample_group(model, G=G, prompt=(2, 3), prefix=prefix, max_new_tokens=8, seed=seed + 100 * n_shared,
                             shared=S, reward="last_token_even", require_mixed_rewards=True)
        k, lengths = len(prefix), group.lengths
        rewards = np.asarray(group.rewards, dtype=np.float64)
        logp, mask = token_logprobs(model, group)
        old = logp.detach() - _log_ratios(case, v, lengths, k, S, rng)
        pm = torch.zeros_like(mask, dtype=torch.bool)
        pm[list(S), :k] = True
        lp = torch.where(pm, logp, logp.detach())                    # gradient through the prefix of S only
        xa = (logp.detach() - old).numpy()
        seq = None
        if v.sequence_level:
            u = np.array([xa[i, :L].sum() for i, L in enumerate(lengths)])
            seq = np.exp(u / lengths if v.ratio is Ratio.SEQ_GEOMEAN else u)
        terms = prefix_terms(v, rewards, lengths, S, ratio=case.ratio, sequence_ratios=seq)
        A, w = terms.A, terms.omega
        one = prefix_logprobs(model, group.prompt, group.prefix).sum()
        g_one = _flat(torch.autograd.grad(one, params, allow_unused=True), params)
        At = torch.as_tensor(A)

        def row(fix: str, J: torch.Tensor, weights: np.ndarray) -> Row:
            g = _flat(torch.autograd.grad(J, params, allow_unused=True, retain_graph=True), params)
            W = float(np.sum(A[list(S)] * weights[list(S)]))
            U = float(np.sum(np.abs(A[list(S)] * weights[list(S)])))
            # all weights 0 (the min fix with a clipped completion): measured in units of one prefix gradient
            gu = (U if U > 0 else 1.0) * float(g_one.abs().max())
            remaining = float(g.abs().max()) / gu
            cancels = abs(W) <= cancel * U
            pred = W * g_one
            err = remaining if cancels else float((g - pred).abs().max() / pred.abs().max())
            return Row(v.name, case.regime, shared, fix, W, U, cancels, err, remaining)

        loss = REFERENCE[v.name](lp, old, torch.as_tensor(rewards), mask)
        rows.append(row("none", -loss, w))
        for name, fix in fixes.items():
            fixed = np.asarray(fix(A, w), dtype=np.float64)
            rows.append(row(name, fixed_surrogate(lp, mask, At, torch.as_tensor(fixed)), fixed))
            if v.sequence_level and case.seq is not None and shared == "whole group":
                s = sequence_ratios(lp, old, mask, geometric=v.ratio is Ratio.SEQ_GEOMEAN)
                live = torch.as_tensor(w / seq) * s                  # equals w in value, carries grad s_i
                J = fixed_surrogate(lp, mask, At, fix(At, live), stop_gradient=False)
                rows.append(row(f"{name}, no stop-gradient", J, fixed))
    return rows
