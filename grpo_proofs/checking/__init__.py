"""Registry of claims: one label per result, used as the book's theorem label and the pytest id.

A claim is a check that compares two independent computations and returns an
:class:`Outcome` (the measured error and the tolerance it must meet). Modules register their
claims with the :func:`claim` decorator; :func:`all_claims` imports every claim module listed
in ``_MODULES`` and returns the registry in the paper's order. Beside the registry:
:mod:`~grpo_proofs.checking.tolerances` (the one tolerance table), :mod:`~grpo_proofs.checking.coverage`
(comparisons with coverage floors), :mod:`~grpo_proofs.checking.table1` (Table 1 typed by hand, the stated
side of Props 1 and 4), :mod:`~grpo_proofs.checking.confirmation` (a user variant's confirmations) and
:mod:`~grpo_proofs.checking.record` (outcomes recorded during a book build).

>>> from grpo_proofs.checking import Outcome
>>> Outcome(error=0.0, tolerance=0.0).passed
True
"""

from __future__ import annotations

import importlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Claim", "Context", "Outcome", "claim", "all_claims", "run_claim", "REGISTRY"]

#: claim modules, in the order of the paper; each registers its claims on import
_MODULES = [
    "grpo_proofs.props.gradient.claims",
    "grpo_proofs.props.prefix.claims",
    "grpo_proofs.props.prefix.claims_branches",
    "grpo_proofs.props.prefix.claims_model",
    "grpo_proofs.props.loss_value.claims",
    "grpo_proofs.props.reward_scale.claims",
    "grpo_proofs.props.reward_scale.claims_consequences",
    "grpo_proofs.props.reward_scale.claims_practice",
    "grpo_proofs.props.overshoot.claims",
    "grpo_proofs.props.related.claims",
    "grpo_proofs.props.frontier.claims",
    "grpo_proofs.check.claims_frontier",
    "grpo_proofs.props.findings.claims",
    "grpo_proofs.trainers.claims_others",
    "grpo_proofs.trainers.claims",
    "grpo_proofs.check.claims",
]


@dataclass(frozen=True)
class Context:
    """Where and how a check runs."""

    device: str = "cpu"
    seed: int = 0
    #: smaller groups/models and fewer examples (used by the test suite)
    quick: bool = False
    #: arithmetic of the real-model checks: "float64", "float32" or "bf16" (bf16 autocast with float32
    #: master weights); None = the device's default, float64 on cpu and float32 on cuda
    precision: str | None = None
    #: policy preset of the real-model checks (a name in ``grpo_proofs.runtime.precision.MODELS``); None = each
    #: check's float64 GPT-2 preset on cpu, the Qwen2-0.5B shape (G = 16, up to 1024 tokens) on cuda
    model: str | None = None

    def __post_init__(self):
        from ..errors import InputError
        from ..runtime.choices import MODEL_NAMES, PRECISIONS

        if self.precision not in (None, *PRECISIONS):
            raise InputError(f"precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, got {self.precision!r}")
        if self.model not in (None, *MODEL_NAMES):
            raise InputError(f"model must be {', '.join(MODEL_NAMES[:-1])} or {MODEL_NAMES[-1]}, got {self.model!r}")

    @property
    def effective_precision(self) -> str:
        """``precision``, or the device's default when it is None.

        >>> Context().effective_precision, Context(device="cuda").effective_precision
        ('float64', 'float32')
        """
        if self.precision is not None:
            return self.precision
        return "float32" if self.device.startswith("cuda") else "float64"


@dataclass(frozen=True)
class Outcome:
    """What a check measured: ``error`` is compared against ``tolerance``."""

    error: float
    tolerance: float
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)

    @property
    def compared(self) -> int | None:
        """How many items the check compared (``data["compared"]``; None where the check does not say)."""
        n = self.data.get("compared")
        return None if n is None else int(n)

    def result(self, precision: str | None = None) -> str:
        """``"PASS"``, ``"FAIL"``, or ``"bounded"`` for a pass in float32/bf16 (an error within a measured
        rounding bound, not an exact agreement).

        >>> Outcome(1e-3, 1e-2).result("bf16"), Outcome(0.0, 0.0).result(), Outcome(1.0, 0.0).result()
        ('bounded', 'PASS', 'FAIL')
        """
        if not self.passed:
            return "FAIL"
        return "bounded" if precision in ("float32", "bf16") else "PASS"


@dataclass(frozen=True)
class Claim:
    """One result of the paper (or a related one) and the check that confirms it."""

    label: str
    title: str
    page: str
    statement: str
    check: Callable[[Context], Outcome]
    #: "symbolic", "numeric", "optimizer" or "model". "model" checks run a real transformer in the precision the
    #: context asks for (``verify`` runs them once per ``--precision``); a real-model check whose statement
    #: fixes its own arithmetic is "optimizer" or "numeric" and runs once
    kind: str

    def run(self, ctx: Context | None = None) -> Outcome:
        return self.check(ctx or Context())


REGISTRY: dict[str, Claim] = {}


def claim(label: str, *, title: str, page: str, statement: str, kind: str) -> Callable:
    """Register ``fn(ctx) -> Outcome`` as the check of claim ``label``."""

    def register(fn: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
        if label in REGISTRY and REGISTRY[label].check is not fn:
            raise RuntimeError(f"claim label {label!r} registered twice")
        REGISTRY[label] = Claim(label, title, page, statement, fn, kind)
        return fn

    return register


def all_claims() -> dict[str, Claim]:
    """Import every claim module and return the registry (label -> Claim) in the order of
    ``_MODULES`` (the paper's order), whatever order the modules were first imported in."""
    for name in _MODULES:
        importlib.import_module(name)
    rank = {name: k for k, name in enumerate(_MODULES)}
    order = sorted(REGISTRY.values(), key=lambda c: rank.get(c.check.__module__, len(rank)))
    return {c.label: c for c in order}


def run_claim(label: str, ctx: Context | None = None) -> Outcome:
    """Run one claim on one CPU thread (:mod:`~grpo_proofs.runtime.threads`); an exception inside the
    check is a failed outcome, not a crash.

    When ``GRPO_PROOFS_RECORD`` names a folder (the book build sets it), the outcome is also
    recorded there (:mod:`~grpo_proofs.checking.record`), so the claims index need not run it again.
    """
    from . import record
    from ..runtime.threads import one_thread

    c = all_claims()[label]
    ctx = ctx or Context()
    start = time.perf_counter()
    try:
        with one_thread(ctx.device):
            out = c.run(ctx)
    except Exception as exc:  # a failing check must be reported, never hidden
        out = Outcome(error=math.inf, tolerance=0.0, detail=f"{type(exc).__name__}: {exc}")
    directory = record.folder()
    if directory is not None:
        record.write(directory, label, ctx, out, time.perf_counter() - start)
    return out
