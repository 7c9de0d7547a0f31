"""Group bookkeeping for the advantage estimators: rewards, group ids, per-group statistics.

Every estimator takes one scalar reward per completion and a group id per completion (the
prompt: TRL's block of ``num_generations`` rows, verl's ``uid``, OpenRLHF's block of
``n_samples_per_prompt``) and returns one advantage per completion, in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Groups", "groups", "lengths_for", "token_whiten"]


@dataclass(frozen=True)
class Groups:
    rewards: np.ndarray  # (B,) or (B, F)
    index: np.ndarray  # (B,) group number 0..n_groups-1
    counts: np.ndarray  # (n_groups,)

    @property
    def size(self) -> np.ndarray:
        """Group size of each row."""
        return self.counts[self.index]

    def mean(self, x: np.ndarray) -> np.ndarray:
        """Group mean of x, per row."""
        sums = np.zeros((len(self.counts),) + x.shape[1:])
        np.add.at(sums, self.index, x)
        return (sums / self.counts.reshape((-1,) + (1,) * (x.ndim - 1)))[self.index]

    def std(self, x: np.ndarray) -> np.ndarray:
        """Unbiased (n - 1) group std of x, per row (NaN for a singleton group, like torch.std)."""
        dev = x - self.mean(x)
        ss = np.zeros((len(self.counts),) + x.shape[1:])
        np.add.at(ss, self.index, dev**2)
        n = self.counts.reshape((-1,) + (1,) * (x.ndim - 1)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(ss / (n - 1))[self.index]


def groups(rewards, group_ids, *, allow_matrix: bool = False) -> Groups:
    """Validate rewards (B,) (or (B, F) when ``allow_matrix``) and group ids (B,)."""
    try:
        r = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("rewards must be numbers, one per completion") from None
    if r.ndim not in ((1, 2) if allow_matrix else (1,)) or r.shape[0] < 1:
        want = "(B,) or (B, F) (one column per reward function)" if allow_matrix else "(B,), one per completion"
        raise InputError(f"rewards must have shape {want}, got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise InputError("rewards contain NaN or inf; give finite numbers")
    ids = np.asarray(group_ids)
    if ids.ndim != 1 or ids.shape[0] != r.shape[0]:
        raise InputError(f"group_ids must give one id per completion ({r.shape[0]}), got shape {ids.shape}")
    try:
        uniq, index = np.unique(ids, return_inverse=True)
    except TypeError:
        raise InputError("group_ids must be comparable values (ints or strings), one per completion") from None
    counts = np.bincount(index, minlength=len(uniq))
    return Groups(r, index.reshape(-1), counts)


def lengths_for(lengths, B: int, estimator: str) -> np.ndarray:
    """Completion lengths |o_i| (needed by token-weighted estimators)."""
    if lengths is None:
        raise InputError(f"estimator {estimator!r} weights completions by their token counts: pass lengths=[|o_1|, ...]")
    try:
        L = np.asarray(lengths, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError("lengths must be whole numbers of tokens, one per completion") from None
    if L.shape[0] != B or not np.all(np.isfinite(L)) or np.any(L != np.round(L)) or np.any(L < 0):
        raise InputError(f"lengths must be {B} whole numbers >= 0 (tokens per completion)")
    return L


def token_whiten(x: np.ndarray, L: np.ndarray, *, unbiased: bool, floor: float, add: bool) -> np.ndarray:
    """Whiten per-completion values broadcast over their tokens (mean/var over all N tokens).

    ``unbiased``: var * N/(N-1) (verl ``masked_var``); ``add``: rsqrt(var + floor) (verl),
    else rsqrt(max(var, floor)) (OpenRLHF).
    """
    N = L.sum()
    mean = float((L * x).sum() / N)
    var = float((L * (x - mean) ** 2).sum() / N)
    if unbiased:
        var *= N / (N - 1)
    scale = 1.0 / np.sqrt(var + floor) if add else 1.0 / np.sqrt(max(var, floor))
    return (x - mean) * scale
