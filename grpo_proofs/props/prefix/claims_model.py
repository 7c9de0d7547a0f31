"""Proposition 1 on a real transformer (arXiv 2601.05002, Sec. 4): the identity and the training drift.

* ``prop1-real-model``: for every Table 1 method, the gradient that the shared-prefix positions of a
  real sampled group contribute to the method's loss (autograd through the whole model) equals
  sum_t W_t grad log pi(y_t | x, y_<t) from one copy of the prefix, at s = 1 and off-policy on every
  clip branch, for the whole group and a subset (:func:`grpo_proofs.props.prefix.model.confirm`).
  CPU: GPT-2 presets in float64, tolerance ``MODEL_FLOAT64``; with a precision (``Context.precision``,
  CUDA default float32; bf16 autocast) or a model preset: that preset (CUDA default: the Qwen2-0.5B
  shape), tolerance ``for_precision("prefix", precision)``.
* ``prop1-training-drift``: GRPO vs Dr. GRPO with AdamW on ``short_is_correct``; the drift of the
  prefix log-probability attributable to the prefix positions (full run minus a prefix-detached
  control) has the sign of the summed W under GRPO and vanishes to rounding under Dr. GRPO
  (:func:`grpo_proofs.props.prefix.drift.drift`; always the float64 GPT-2 on CPU).
"""

from __future__ import annotations

import math

from . import model as ex
from . import drift as dr
from ...checking.tolerances import MODEL_FLOAT64
from ...checking import Context, Outcome, claim

__all__ = ["PAGE", "confirmation_setups", "drift_setup", "drift_outcome", "DRIFT_STEP_FLOOR"]

PAGE = "prefix"


def confirmation_setups(ctx: Context) -> list[ex.Setup]:
    """The groups the identity is checked on (quick: one tiny GPT-2 group per case). With a model preset,
    a precision other than float64 or CUDA: one group per case on that preset (CUDA default: the
    Qwen2-0.5B shape, G = 16, up to 1024 new tokens) in the context's precision."""
    if ctx.model is not None or ctx.effective_precision != "float64" or ctx.device.startswith("cuda"):
        from ...runtime.precision import group_shape, master_dtype, resolve_model
        name = resolve_model(ctx.model, ctx.device, "tiny")
        G, new = group_shape(ctx.model, ctx.device, "tiny", 8 if ctx.quick else 12, 8)
        p = ctx.effective_precision
        return [ex.Setup(model=name, G=G, max_new_tokens=new, dtype=master_dtype(p), precision=p,
                         device=ctx.device, seed=ctx.seed)]
    if ctx.quick:
        return [ex.Setup(model="tiny", G=8, seed=ctx.seed)]
    return [ex.Setup(model="tiny", G=8, seed=ctx.seed), ex.Setup(model="small", G=12, seed=ctx.seed + 1),
            ex.Setup(model="small", G=16, prefix=(5, 7, 9, 11, 13), reward="answer_count_odd", seed=ctx.seed + 2)]


def drift_setup(ctx: Context) -> dr.DriftSetup:
    return dr.DriftSetup(steps=10 if ctx.quick else 30, G=12 if ctx.quick else 16, seed=ctx.seed)


@claim(
    "prop1-real-model",
    title="Shared-prefix gradient on a real transformer (Prop. 1)",
    page=PAGE,
    statement=(
        "On a real causal transformer and a real sampled group with a forced shared prefix, the gradient the "
        "prefix positions contribute to each method's loss equals sum_t W_t grad log pi(y_t|x,y_<t) computed "
        "from a single copy of the prefix; where the weights cancel it vanishes to rounding."
    ),
    kind="model",
)
def check_real_model(ctx: Context) -> Outcome:
    rows = [r for s in confirmation_setups(ctx) for r in ex.confirm(s)]
    tol = rows[0].tolerance                              # one precision per context
    worst = max(rows, key=lambda r: r.error)
    cancel = [r for r in rows if r.cancels]
    if not cancel or len(cancel) == len(rows):          # both kinds of check must have happened
        return Outcome(math.inf, tol, "expected both cancelling and non-cancelling cases")
    by = sorted({r.measured_by for r in rows})
    floor = len(ex.CASES) * len(ex.REGISTRY)          # every Table 1 method on every case, at least once
    if len(rows) < floor:
        return Outcome(math.inf, tol, f"FAILS: {len(rows)} checks, below the floor of {floor}")
    detail = (f"{len(rows)} checks (measured by the {', '.join(by)}); worst {worst.variant} ({worst.case}) {worst.error:.1e}; "
              f"cancelling: max |g|/|g_U| = {max(r.error for r in cancel):.1e}; "
              f"non-cancelling: max rel err = {max(r.error for r in rows if not r.cancels):.1e}")
    data = {"rows": [{"variant": r.variant, "case": r.case, "error": r.error, "cancels": r.cancels, "W": list(r.W),
                      "measured_by": r.measured_by} for r in rows], "compared": len(rows), "floor": floor}
    return Outcome(worst.error, tol, detail, data)


@claim(
    "prop1-training-drift",
    title="GRPO drifts the shared prefix, Dr. GRPO does not (Prop. 1)",
    page=PAGE,
    statement=(
        "Training with AdamW on a reward whose correct answers are shorter, the shared-prefix log-probability "
        "moves, through the prefix positions' own gradient, in the direction of W under GRPO (W > 0: up) and "
        "not at all under Dr. GRPO (W = 0)."
    ),
    kind="optimizer",
)
def check_training_drift(ctx: Context) -> Outcome:
    return drift_outcome(dr.drift(drift_setup(ctx)))


#: the least fraction of a run's steps that must have taken an optimizer step (a group with mixed rewards)
#: for the drift comparison to count; a run whose every step was skipped never moved and proves nothing
DRIFT_STEP_FLOOR = 0.5


def drift_outcome(res: dr.DriftResult) -> Outcome:
    """The training-drift verdict of a :class:`~grpo_proofs.props.prefix.drift.DriftResult`: GRPO's
    prefix-attributable drift has the sign of its summed W, Dr. GRPO's is rounding against GRPO's; every
    run (full and prefix-detached) must have taken at least :data:`DRIFT_STEP_FLOOR` of its steps."""
    floor = max(1, math.ceil(DRIFT_STEP_FLOOR * res.setup.steps))
    counted = {key: res.setup.steps - run.skipped for key, run in res.runs.items()}
    short = [f"{v}{' (prefix detached)' if d else ''}: {n}/{res.setup.steps}" for (v, d), n in counted.items()
             if n < floor]
    a_grpo, a_dr = res.attributable("grpo"), res.attributable("dr_grpo")
    w_grpo = res.predicted("grpo")
    detail = (f"GRPO: sum W = {w_grpo:+.3g}, drift {res.raw('grpo'):+.3g} nats (prefix part {a_grpo:+.3g}); "
              f"Dr. GRPO: drift {res.raw('dr_grpo'):+.3g} nats (prefix part {a_dr:+.1e})")
    data = {v: {"raw": res.raw(v), "attributable": res.attributable(v), "control": res.runs[(v, True)].drift,
                "predicted_sum_W": res.predicted(v), "skipped_steps": res.runs[(v, False)].skipped,
                "steps_taken": counted[(v, False)]}
            for v in res.setup.variants}
    data["compared"] = min(counted.values())
    data["floor"] = floor
    detail += f"; optimizer steps taken per run >= {min(counted.values())} of {res.setup.steps} (floor {floor})"
    if short:
        return Outcome(math.inf, MODEL_FLOAT64, "FAILS: too few optimizer steps taken (every other step had a "
                       f"group of equal rewards and was skipped): {'; '.join(short)}, floor {floor}", data)
    if not (w_grpo != 0 and math.copysign(1, a_grpo) == math.copysign(1, w_grpo) and abs(a_grpo) > 0):
        return Outcome(math.inf, MODEL_FLOAT64, "GRPO drift against the sign of W: " + detail, data)
    return Outcome(abs(a_dr) / abs(a_grpo), MODEL_FLOAT64, detail, data)
