"""Proposition 4 in numbers: the value of a hand-written reference loss at s = 1 against the regime's
formula evaluated on the same group, and the relative error that tolerates a cancelling value."""

from __future__ import annotations

import numpy as np
import torch

from ...checking.table1 import TABLE1
from ...checking.tolerances import CLOSED_FORM
from ...runtime.numerics import rel_err
from ...variants import get_variant
from ..gradient.api import padded
from .derive import regime

__all__ = ["table1_numbers", "stated_numbers", "numeric_value", "value_error"]


def table1_numbers(name: str, rewards, lengths, sigma: str = "pop") -> tuple[np.ndarray, np.ndarray]:
    """(A_i, alpha_i) of a group from the hand-typed Table 1 (masks 1): A_i = r_i - mean r, alpha_i
    with sigma = std(r) (population or sample), independent of :func:`grpo_proofs.objective.group_numbers`."""
    r = np.asarray(rewards, float)
    L = np.asarray(lengths, float)
    A = r - r.mean()
    sd = float(r.std(ddof=0 if sigma == "pop" else 1))
    row = TABLE1[name]
    alpha = np.array([float(row.alpha(G=len(r), L_i=L[i], L_sum=L.sum(), sigma=sd, A_i=A[i])) for i in range(len(r))])
    return A, alpha


def stated_numbers(name: str, rewards, lengths, logprobs, sigma: str = "pop") -> tuple[float, float]:
    """(the regime's value from the hand-typed Table 1, the uncancelled scale sum_i |A_i Omega_i|) for a
    group whose per-token log-probs (list of arrays, one per completion) are ``logprobs`` (used by the
    log-prob regime only)."""
    A, alpha = table1_numbers(name, rewards, lengths, sigma)
    kind = regime(get_variant(name))
    if kind == "log-prob":
        Om = np.array([a * np.sum(lp) for a, lp in zip(alpha, logprobs)])          # Lambda_i
    else:
        Om = alpha * np.asarray(lengths, float)                                     # Omega_i
    stated = {"length-normalised": 0.0, "constant": float(alpha[0] * np.dot(A, np.asarray(lengths, float)))}.get(
        kind, float(len(A) * np.mean(A * (Om - Om.mean()))))
    return stated, float(np.abs(A * Om).sum())


def numeric_value(name: str, rewards, lengths, sigma: str = "pop") -> tuple[float, float, float]:
    """(J by the hand-written reference loss at s = 1, the regime's value from Table 1 numbers, scale)."""
    from ...reference import REFERENCE

    rng = np.random.default_rng(len(lengths))
    lp = [rng.normal(-2.0, 0.7, size=int(L)) for L in lengths]
    logp, mask = padded(lengths, lp, junk=5.0)
    J_ref = -float(REFERENCE[name](logp, logp.clone(), torch.as_tensor(np.asarray(rewards, float)), mask, sigma=sigma))
    stated, scale = stated_numbers(name, rewards, lengths, lp, sigma)
    return J_ref, stated, scale


def value_error(J: float, stated: float, scale: float) -> float:
    """Relative error of a value; where the stated value cancels (|stated| <= CLOSED_FORM sum_i |A_i Omega_i|)
    the error is measured against that uncancelled scale."""
    if abs(stated) <= CLOSED_FORM * scale:
        return abs(J - stated) / scale if scale > 0 else abs(J - stated)
    return rel_err(J, stated)
