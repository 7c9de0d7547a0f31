"""Input checks shared by the API and the CLI: each failure is one InputError line."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .errors import InputError

__all__ = ["rewards_and_lengths", "sigma_kind", "log_ratios_for"]


def rewards_and_lengths(rewards: Sequence[float], lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Validate a group: G >= 2 rewards, one positive whole length per completion, all finite."""
    try:
        r = np.asarray(rewards, dtype=np.float64).reshape(-1)
        L = np.asarray(lengths, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError("rewards and lengths must be sequences of numbers") from None
    if r.size < 2:
        raise InputError(f"a group needs G >= 2 completions, got {r.size} reward(s)")
    if not np.all(np.isfinite(r)):
        raise InputError("rewards contain NaN or inf; give finite numbers")
    if L.size != r.size:
        raise InputError(f"got {r.size} rewards but {L.size} lengths; give one length per completion")
    if not np.all(np.isfinite(L)) or np.any(L != np.round(L)):
        raise InputError("lengths must be whole numbers of tokens")
    if np.any(L <= 0):
        raise InputError(f"lengths must be >= 1 token, got {L.astype(int).tolist()}")
    return r, L.astype(np.int64)


def sigma_kind(sigma: str) -> str:
    if sigma not in ("pop", "sample"):
        raise InputError(f"sigma must be 'pop' (population std) or 'sample' (sample std), got {sigma!r}")
    return sigma


def log_ratios_for(lengths: np.ndarray, log_ratios) -> list[np.ndarray]:
    """One float64 array of log pi_theta - log pi_old per completion (default zeros: s = 1)."""
    if log_ratios is None:
        return [np.zeros(int(L)) for L in lengths]
    if len(log_ratios) != len(lengths):
        raise InputError(f"log_ratios has {len(log_ratios)} entries for {len(lengths)} completions; give one array per completion")
    out = []
    for i, (lr, L) in enumerate(zip(log_ratios, lengths)):
        arr = np.asarray(lr, dtype=np.float64).reshape(-1)
        if arr.size == 1 and L > 1:
            arr = np.full(int(L), float(arr[0]))
        if arr.size != L:
            raise InputError(f"log_ratios[{i}] has {arr.size} values for a completion of {L} tokens")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"log_ratios[{i}] contains NaN or inf")
        out.append(arr)
    return out
