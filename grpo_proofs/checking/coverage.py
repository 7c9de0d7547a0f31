"""Comparisons with coverage floors: an error over an empty or thin selection is a failure.

A check compares two independent computations item by item (coordinates of a step, entries of a
gradient, rows of a table). Where some items are left out (unresolved, rounding-level, outside a
premise), the comparison states how many were compared and how many were dropped, and it FAILS when
fewer than its floor were compared: an error of 0 over nothing compared is no evidence.

    error = max_j |measured_j - predicted_j| / scale_j     over the kept items with scale_j > 0,
    passed  iff  compared >= floor  and  error <= tolerance.

>>> c = compare([1.0, 2.0, 3.0], [1.0, 2.0, 3.5], floor=3)
>>> c.compared, c.dropped, c.error
(3, 0, 0.5)
>>> compare([1.0, 2.0], [1.0, 9.0], keep=[True, False], floor=2).below_floor
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Comparison", "compare", "covered", "floor_fraction", "coverage_text", "merge"]


@dataclass(frozen=True)
class Comparison:
    """The outcome of one item-by-item comparison.

    ``error``: the largest (scaled) difference over the compared items, inf below the floor or where
    an item with zero scale differs; ``compared``: items compared; ``dropped``: items left out by the
    selection; ``floor``: the least number of compared items the check accepts.
    """

    error: float
    compared: int
    dropped: int
    floor: int
    what: str = "items"

    @property
    def total(self) -> int:
        return self.compared + self.dropped

    @property
    def below_floor(self) -> bool:
        return self.compared < self.floor

    def passed(self, tolerance: float) -> bool:
        """compared >= floor and a finite error within ``tolerance``."""
        return (not self.below_floor) and math.isfinite(self.error) and self.error <= tolerance

    @property
    def message(self) -> str:
        """One line: the coverage, and why the comparison fails if it is below its floor."""
        text = coverage_text(self.compared, self.total, self.what)
        if self.below_floor:
            return f"FAILS: {text}, below the floor of {self.floor} (nothing checked cannot pass)"
        return text

    def as_dict(self) -> dict:
        return {"error": self.error, "compared": self.compared, "dropped": self.dropped, "floor": self.floor}


def coverage_text(compared: int, total: int, what: str = "items") -> str:
    """``"1234/1300 coordinates compared (94.9%)"``.

    >>> coverage_text(3, 4, "coordinates")
    '3/4 coordinates compared (75.0%)'
    """
    pct = 100.0 * compared / total if total else 0.0
    return f"{compared}/{total} {what} compared ({pct:.1f}%)"


def floor_fraction(total: int, fraction: float, minimum: int = 1) -> int:
    """The floor of a comparison that must cover ``fraction`` of ``total`` items (at least ``minimum``).

    >>> floor_fraction(1000, 0.9), floor_fraction(0, 0.9)
    (900, 1)
    """
    return max(int(minimum), int(math.ceil(fraction * total)))


def compare(measured, predicted, *, floor: int, scale=None, keep=None, what: str = "items") -> Comparison:
    """Compare two arrays (or lists of arrays, e.g. one per optimizer step) item by item.

    Args:
        measured, predicted: arrays of the same shape, or equal-length lists of such arrays.
        floor: the least number of items that must be compared (stated by the caller).
        scale: per-item divisor (same shapes; None: absolute differences). Items with scale 0 must
            agree exactly (else the error is inf) and are not counted as compared.
        keep: per-item boolean selection (same shapes; None: every item).
        what: the name of an item in the message ("coordinates", "tokens").

    Returns a :class:`Comparison`; below ``floor`` its error is inf.

    >>> compare([np.array([1.0, 0.0])], [np.array([1.0, 1e-3])], scale=[np.array([1.0, 0.0])], floor=1).error
    inf
    """
    ms, ps = _as_list(measured), _as_list(predicted)
    if len(ms) != len(ps):
        raise ValueError(f"compare: {len(ms)} measured arrays against {len(ps)} predicted")
    scs = [None] * len(ms) if scale is None else _as_list(scale)
    ks = [None] * len(ms) if keep is None else _as_list(keep)
    err, n, dropped, exact_fail = 0.0, 0, 0, False
    for m, p, sc, k in zip(ms, ps, scs, ks):
        m, p = np.asarray(m, float), np.asarray(p, float)
        if m.shape != p.shape:
            raise ValueError(f"compare: shapes {m.shape} and {p.shape} differ")
        k = np.ones(m.shape, bool) if k is None else np.asarray(k, bool)
        sc = np.ones(m.shape) if sc is None else np.asarray(sc, float)
        zero = k & (sc == 0)
        if np.any(m[zero] != p[zero]):
            exact_fail = True
        sel = k & (sc > 0)
        if sel.any():
            with np.errstate(invalid="ignore"):
                d = np.abs(m[sel] - p[sel]) / sc[sel]
            err = max(err, float(np.max(d)) if np.all(np.isfinite(d)) else math.inf)
        n += int(sel.sum())
        dropped += int((~k).sum())
    if exact_fail or n < floor:
        err = math.inf
    return Comparison(err, n, dropped, int(floor), what)


def covered(errors, floor: int, what: str = "items") -> Comparison:
    """Errors already computed item by item, as a :class:`Comparison`: the largest, and how many there are.

    The error is inf when fewer than ``floor`` (at least 1) items were compared or any error is not finite.

    >>> covered([1e-16, 3e-16], floor=2).error, covered([], floor=1).error, covered([0.0], floor=2).compared
    (3e-16, inf, 1)
    """
    errs = [float(e) for e in errors]
    floor = max(int(floor), 1)
    err = max(errs) if len(errs) >= floor and all(math.isfinite(e) for e in errs) else math.inf
    return Comparison(err, len(errs), 0, floor, what)


def merge(parts: list[Comparison], floor: int | None = None) -> Comparison:
    """Several comparisons as one: the largest error, the summed counts, the summed (or given) floor."""
    err = max((c.error for c in parts), default=math.inf)
    n, dropped = sum(c.compared for c in parts), sum(c.dropped for c in parts)
    fl = sum(c.floor for c in parts) if floor is None else int(floor)
    if n < fl or any(c.below_floor for c in parts):
        err = math.inf
    return Comparison(err, n, dropped, fl, parts[0].what if parts else "items")


def _as_list(x) -> list:
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], (np.ndarray, list, tuple)):
        return list(x)
    return [x]
