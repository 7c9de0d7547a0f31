"""A claim's Outcome from what its check found: identities that failed, items compared, the coverage floor.

A check verifies identities (each holds exactly or not) and compares items (a measurement against a
prediction, :mod:`grpo_proofs.checking.coverage`). Its Outcome states how many were checked
(``data["compared"]``, the ``compared`` column of ``verify``) and fails when an identity fails or fewer
than the floor were compared:

    error = inf                         if an identity failed or compared < floor,
            max error over the items    else (0 for identities alone).

>>> o = of_identities([], 5, "5 identities reduce to 0")
>>> o.passed, o.compared, o.detail
(True, 5, '5 identities reduce to 0')
>>> of_identities(["W != 0"], 5, "unused").detail
'failed: W != 0'
>>> from grpo_proofs.checking.coverage import covered
>>> of_comparison(covered([1e-16, 2e-16], floor=3), 1e-12, "two items").detail
'FAILS: 2/2 items compared (100.0%), below the floor of 3 (nothing checked cannot pass)'
"""

from __future__ import annotations

import math
from typing import Sequence

from . import Outcome
from .coverage import Comparison

__all__ = ["failure", "of_identities", "of_comparison"]


def failure(problems: Sequence[str], shown: int = 5) -> str:
    """``"failed: a; b; ... (+N more)"``: what went wrong, the first ``shown`` items."""
    more = f" (+{len(problems) - shown} more)" if len(problems) > shown else ""
    return "failed: " + "; ".join(problems[:shown]) + more


def of_identities(bad: Sequence[str], checked: int, detail: str, *, tolerance: float = 0.0, data: dict | None = None,
               floor: int = 1) -> Outcome:
    """The Outcome of ``checked`` exact identities of which ``bad`` (their names) failed: error 0 or inf."""
    data = {**(data or {}), "compared": int(checked), "floor": max(int(floor), 1)}
    if bad or checked < data["floor"]:
        why = list(bad) or [f"{checked} identities checked, below the floor of {data['floor']}"]
        return Outcome(math.inf, tolerance, failure(why), data)
    return Outcome(0.0, tolerance, detail, data)


def of_comparison(comparison: Comparison, tolerance: float, detail: str, *, bad: Sequence[str] = (),
             data: dict | None = None) -> Outcome:
    """The Outcome of an item-by-item ``comparison`` (and of identities, ``bad`` naming those that failed).

    ``detail`` is shown when nothing failed; below the floor the detail is the comparison's own message.
    """
    data = {**(data or {}), "compared": comparison.compared, "floor": comparison.floor}
    if bad:
        return Outcome(math.inf, tolerance, failure(list(bad)), data)
    if comparison.below_floor:
        return Outcome(math.inf, tolerance, comparison.message, data)
    return Outcome(comparison.error, tolerance, detail, data)
