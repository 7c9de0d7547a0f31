"""Numerical confirmation of a variant's verdicts on the real transformer policy.

Each function here recomputes one verdict of :mod:`grpo_proofs.verdict` by an independent path and
returns a :class:`Confirmation` (prediction, measurement, error, tolerance):

* :func:`~grpo_proofs.confirm.prefix.confirm_prefix` -- Prop. 1 and Prop. 4 on a sampled group with a
  forced shared prefix (tiny float64 GPT-2): the net coefficient W_t and the prefix's parameter
  gradient measured by autograd through the model, against the closed form, at s = 1 and after Adam
  steps; plus Prop. 1's own identity (:func:`grpo_proofs.experiments.prefix.confirm`) on every clip
  branch and for a subset S; the loss value at s = 1 (Prop. 4) against its closed form;
* :func:`~grpo_proofs.confirm.optim.confirm_reward_scale` -- Props. 5, 6, 2: real ``torch.optim`` Adam /
  AdamW steps under r -> phi r against :func:`grpo_proofs.adam.adam_step_ratio`, and global
  gradient-norm clipping (reported);
* :func:`~grpo_proofs.confirm.optim.confirm_overshoot` -- Props. 3, 7: the zero-gradient premise and
  Adam's steps after it against C_(T,k) (or, without a clipped region, a gradient that never
  vanishes), and the token ratios over mu inner steps (reported);
* :func:`~grpo_proofs.confirm.optim.confirm_adam_ratio` -- C_(T,k) against a real ``torch.optim.Adam``.

A confirmation with ``tolerance`` None is a reported figure, not an assertion.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

__all__ = ["Confirmation", "Options", "run_all", "STAGES"]


@dataclass(frozen=True)
class Options:
    """How the confirmations run (the CLI flags of ``grpo-proofs check``)."""

    device: str = "cpu"
    quick: bool = False
    seed: int = 0
    #: inner optimizer steps per sampled batch for the ratio trajectories
    mu: int = 8
    #: Adam settings of the overshoot verdict and of every optimizer run
    T: int = 5
    k: int = 4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    sigma: str = "pop"


@dataclass
class Confirmation:
    """One verdict confirmed (or not) numerically. ``passed`` is None for reported, unasserted figures."""

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
    def passed(self) -> bool | None:
        if self.error is None or self.tolerance is None:
            return None
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("plot")
        d["passed"] = self.passed
        return d


def run_all(spec, verdicts, opts: Options, progress=None) -> list[Confirmation]:
    """Every confirmation for ``spec`` (a :class:`grpo_proofs.spec.Spec`); ``progress`` is a tqdm bar."""
    from .optim import confirm_adam_ratio, confirm_overshoot, confirm_reward_scale
    from .prefix import confirm_prefix

    out = []
    for fn in (confirm_prefix, confirm_reward_scale, confirm_overshoot, confirm_adam_ratio):
        if progress is not None:
            progress.set_description(fn.__name__.replace("confirm_", ""))
        start = time.perf_counter()
        try:
            res = fn(spec, verdicts, opts)
        except Exception as exc:  # a confirmation that crashes is a failed confirmation, never hidden
            text = str(exc).splitlines()[0] if str(exc) else ""
            res = Confirmation(fn.__name__.replace("confirm_", ""), "crashed", "", math.inf, 0.0,
                               f"{type(exc).__name__}: {text}")
        res = res if isinstance(res, list) else [res]
        for c in res:
            c.data["stage_seconds"] = round(time.perf_counter() - start, 3)
        out.extend(res)
        if progress is not None:
            progress.update(1)
    return out


STAGES = 4
