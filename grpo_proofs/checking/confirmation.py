"""What a confirmation of a user's variant is: the :class:`Options` it runs with (the flags of
``grpo-proofs check``) and the :class:`Confirmation` it returns, a measured error against a tolerance.

>>> Confirmation("x", "t", "p", error=0.0, tolerance=0.0).passed, Confirmation("x", "t", "p").passed
(True, False)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

__all__ = ["Confirmation", "Options"]


@dataclass(frozen=True)
class Options:
    """How the confirmations run (the CLI flags of ``grpo-proofs check``)."""

    device: str = "cpu"
    quick: bool = False
    seed: int = 0
    #: inner optimizer steps per sampled batch for the ratio trajectories
    mu: int = 8
    #: Adam settings of the overshoot verdict and of every optimizer run (T, k: None when mu = 1)
    T: int | None = 2
    k: int | None = 6
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    sigma: str = "pop"


@dataclass
class Confirmation:
    """One verdict confirmed (or not) numerically: error against tolerance (``passed``)."""

    name: str
    title: str
    prediction: str
    error: float | None = None
    tolerance: float | None = None
    detail: str = ""
    #: arrays for the plots (not written to JSON)
    plot: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        if self.error is None or self.tolerance is None:
            return False
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("plot")
        d["passed"] = self.passed
        return d
