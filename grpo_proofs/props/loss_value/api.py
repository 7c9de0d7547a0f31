"""Proposition 4 in numbers: the value of a hand-written reference loss at s = 1 against the regime's
formula evaluated on the same group, and the relative error that tolerates a cancelling value."""

from __future__ import annotations

import numpy as np
import torch

from ...checking.tolerances import CLOSED_FORM
from ...objective import group_numbers
from ...runtime.numerics import rel_err
from ...variants import REGISTRY
from ..gradient.api import padded
from .derive import regime

__all__ = ["numeric_value", "value_error"]


def numeric_value(name: str, rewards, lengths, sigma: str = "pop") -> tuple[float, float, float]:
    """(J by the hand-written reference loss at s = 1, the regime's value from Table 1 numbers, scale)."""
    from ...reference import REFERENCE

    rng = np.random.default_rng(len(lengths))
    lp = [rng.normal(-2.0, 0.7, size=int(L)) for L in lengths]
    logp, mask = padded(lengths, lp, junk=5.0)
    J_ref = -float(REFERENCE[name](logp, logp.clone(), torch.as_tensor(np.asarray(rewards, float)), mask, sigma=sigma))
    num = group_numbers(name, rewards, lengths, sigma=sigma)
    v = REGISTRY[name]
    if regime(v) == "log-prob":
        Om = np.array([(a * l).sum() for a, l in zip(num.alpha, lp)])
    else:
        Om = num.Omega
    stated = {"length-normalised": 0.0, "constant": float(num.alpha[0][0] * np.dot(num.A, num.lengths))}.get(
        regime(v), float(len(num.A) * np.mean(num.A * (Om - Om.mean()))))
    return J_ref, stated, float(np.abs(num.A * Om).sum())


def value_error(J: float, stated: float, scale: float) -> float:
    """Relative error of a value; where the stated value cancels (|stated| <= CLOSED_FORM sum_i |A_i Omega_i|)
    the error is measured against that uncancelled scale."""
    if abs(stated) <= CLOSED_FORM * scale:
        return abs(J - stated) / scale if scale > 0 else abs(J - stated)
    return rel_err(J, stated)
