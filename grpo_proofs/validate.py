"""Input checks shared by the API and the CLI: each failure is one InputError line."""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from .errors import InputError

__all__ = ["rewards_and_lengths", "sigma_kind", "log_ratios_for", "flat_log_ratios", "memory_budget", "check_memory",
           "BYTES_PER_TOKEN"]

#: peak memory of :func:`grpo_proofs.evaluate.token_gradient` per token, rounded up: measured 74 (CISPO) to
#: 173 (GRPO, G = 2000) bytes per token on CPU float64 (GRPO, GSPO, GCPO, CISPO; 4e6..8e6 tokens)
BYTES_PER_TOKEN = 200


def memory_budget() -> int:
    """Bytes a computation may allocate: half of the memory the system reports available.

    MemAvailable from /proc/meminfo; half the physical memory where that file is missing.
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 4 << 30


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_memory(n_bytes: float, what: str, hint: str) -> None:
    """Refuse, before allocating, a computation whose memory estimate exceeds :func:`memory_budget`.

    >>> check_memory(1e3, "the coefficients", "give fewer tokens")   # a kilobyte always fits
    """
    budget = memory_budget()
    if n_bytes > budget:
        raise InputError(f"{what} need about {_gb(n_bytes)} of memory, more than the {_gb(budget)} this machine "
                         f"can spare now (half its available memory); {hint}")


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
        bad = [int(x) for x in L[L <= 0][:5]]
        raise InputError(f"lengths must be >= 1 token, got {', '.join(map(str, bad))}")
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(np.max(r) - np.min(r))
        centred = r - np.mean(r)
        square = float(np.sum(centred * centred))
    if not (math.isfinite(spread) and math.isfinite(square)):
        raise InputError(f"rewards as large as {float(np.max(np.abs(r))):.3g} overflow float64 in the mean or the std "
                         "(their squares exceed 1.8e308); divide them by a common factor (a common scale changes "
                         "nothing for std-normalised methods)")
    return r, L.astype(np.int64)


def sigma_kind(sigma: str) -> str:
    if sigma not in ("pop", "sample"):
        raise InputError(f"sigma must be 'pop' (population std) or 'sample' (sample std), got {sigma!r}")
    return sigma


def flat_log_ratios(lengths: np.ndarray, log_ratios) -> np.ndarray:
    """log pi_theta - log pi_old of every token, completions one after another (default zeros: s = 1).

    ``log_ratios`` holds one sequence per completion (a single value stands for all its tokens),
    or is a (G, T) array when every completion has T tokens (read without copying).

    >>> flat_log_ratios(np.array([2, 1]), [[0.1, 0.2], [0.3]]).tolist()
    [0.1, 0.2, 0.3]
    """
    L = np.asarray(lengths, dtype=np.int64)
    if log_ratios is None:
        return np.zeros(int(L.sum()))
    if len(log_ratios) != len(L):
        raise InputError(f"log_ratios has {len(log_ratios)} entries for {len(L)} completions; give one array per completion")
    if isinstance(log_ratios, np.ndarray) and log_ratios.ndim == 2 and np.all(L == log_ratios.shape[1]):
        flat = np.ascontiguousarray(log_ratios, dtype=np.float64).reshape(-1)
    else:
        parts = [np.asarray(lr, dtype=np.float64).reshape(-1) for lr in log_ratios]
        sizes = np.fromiter((p.size for p in parts), dtype=np.int64, count=len(parts))
        for i in np.flatnonzero((sizes == 1) & (L > 1)):
            parts[i] = np.full(int(L[i]), float(parts[i][0]))
            sizes[i] = L[i]
        bad = np.flatnonzero(sizes != L)
        if bad.size:
            i = int(bad[0])
            raise InputError(f"log_ratios[{i}] has {sizes[i]} values for a completion of {L[i]} tokens")
        flat = np.concatenate(parts)
    finite = np.isfinite(flat)
    if not finite.all():
        i = int(np.searchsorted(np.cumsum(L), int(np.argmin(finite)), side="right"))
        raise InputError(f"log_ratios[{i}] contains NaN or inf")
    return flat


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
