"""Error measures used by every check (one definition, so every figure means the same)."""

from __future__ import annotations

import numpy as np

__all__ = ["rel_err"]


def rel_err(measured, expected, floor: float = 1e-300) -> float:
    """max |measured - expected| / max |expected| over all entries (0 when both are zero).

    >>> rel_err([1.0, 2.0], [1.0, 2.5])
    0.2
    """
    m = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in _parts(measured)])
    e = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in _parts(expected)])
    if m.shape != e.shape:
        raise ValueError(f"shapes differ: {m.shape} vs {e.shape}")
    scale = float(np.max(np.abs(e))) if e.size else 0.0
    diff = float(np.max(np.abs(m - e))) if e.size else 0.0
    if scale == 0.0:
        return diff
    return diff / max(scale, floor)


def _parts(v):
    if isinstance(v, (list, tuple)) and v and not np.isscalar(v[0]):
        return list(v)
    return [v]
