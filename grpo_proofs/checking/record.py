"""Outcomes recorded while the book is built, so that each claim runs once per build.

A book page runs the claims it states (:func:`~grpo_proofs.checking.run_claim`); the claims index
lists every registered claim. When the environment variable ``GRPO_PROOFS_RECORD`` names a
folder, :func:`~grpo_proofs.checking.run_claim` writes each outcome there as ``<label>.json``
(the measured error, the tolerance, the compared count, the context and the seconds it took), and
the claims index reads them back with :func:`recorded` instead of running those claims again. The
book's Sphinx extension sets the variable to an empty folder at the start of every build and reads
the claims index last, so a recorded outcome always comes from the same build. Without the variable
nothing is written and :func:`recorded` returns nothing: the index then runs every claim itself.

>>> import tempfile
>>> from grpo_proofs.checking import Context, Outcome
>>> with tempfile.TemporaryDirectory() as d:
...     write(d, "some-claim", Context(quick=True), Outcome(1e-16, 1e-12, data={"compared": 3}), 0.5)
...     r = recorded(d)["some-claim"]
>>> (r.outcome.error, r.outcome.tolerance, r.outcome.compared, r.quick)
(1e-16, 1e-12, 3, True)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Context, Outcome

__all__ = ["ENV", "Recorded", "folder", "write", "recorded"]

#: the environment variable naming the folder outcomes are recorded in
ENV = "GRPO_PROOFS_RECORD"


@dataclass(frozen=True)
class Recorded:
    """A claim's outcome as a page recorded it."""

    label: str
    outcome: "Outcome"
    #: the context it ran in (``Context`` fields)
    quick: bool
    device: str
    seed: int
    precision: str | None
    model: str | None
    seconds: float


def folder() -> Path | None:
    """The folder named by ``GRPO_PROOFS_RECORD``, or None when it is unset or empty."""
    value = os.environ.get(ENV, "")
    return Path(value) if value else None


def _number(x: float) -> float | str:
    """JSON has no infinity or NaN: those are written as strings."""
    return x if math.isfinite(x) else repr(float(x))


def write(directory: str | os.PathLike, label: str, ctx: "Context", outcome: "Outcome", seconds: float) -> None:
    """Record one outcome as ``<directory>/<label>.json`` (written whole: a temporary file, then renamed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    compared = outcome.compared
    record = {
        "label": label,
        "error": _number(float(outcome.error)),
        "tolerance": _number(float(outcome.tolerance)),
        "detail": outcome.detail,
        "compared": compared,
        "context": asdict(ctx),
        "seconds": seconds,
    }
    tmp = directory / f".{label}.json.tmp"
    tmp.write_text(json.dumps(record), encoding="utf-8")
    tmp.replace(directory / f"{label}.json")


def recorded(directory: str | os.PathLike | None = None) -> dict[str, Recorded]:
    """Every outcome recorded in ``directory`` (default: :func:`folder`), by label; empty when there is none."""
    directory = Path(directory) if directory is not None else folder()
    if directory is None or not directory.is_dir():
        return {}
    from . import Outcome

    found = {}
    for path in sorted(directory.glob("*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        data = {} if d["compared"] is None else {"compared": d["compared"]}
        outcome = Outcome(float(d["error"]), float(d["tolerance"]), d["detail"], data)
        ctx = d["context"]
        found[d["label"]] = Recorded(d["label"], outcome, ctx["quick"], ctx["device"], ctx["seed"], ctx["precision"],
                                     ctx["model"], d["seconds"])
    return found
