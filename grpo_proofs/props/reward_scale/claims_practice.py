"""Prop. 2 in practice. Claim ``prop2-sgd-scales``: without Adam there is no reward-scale invariance (Prop. 2's
counterpart). Claim ``prop2-aggregation-in-practice``: a loss-scale change through a trainer's aggregation mode
under AdamW, gradient-norm clipping and bf16 (:mod:`.aggregation`).

prop2-sgd-scales:

On the real policy (tiny float64 GPT-2, :func:`.model.make_batch`, Dr. GRPO: no std normalisation, so the
reward scale phi reaches the gradient), one real ``torch.optim.SGD`` step and one real ``torch.optim.AdamW``
step are taken on the gradients of the objective with rewards r and phi r at the same parameters. SGD's
step is -lr g: the scaled step must be phi times the unscaled one (normwise, every coordinate); AdamW's
first step ratio must be Prop. 2's factor ``adam_step_ratio(phi, eps, v_hat)``, near 1, on every coordinate
where the scaled gradient is phi g to rounding (Prop. 2's premise; a floor of half the coordinates).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...checking import Context, Outcome, claim
from ...checking.coverage import compare, floor_fraction
from ...checking.tolerances import CLOSED_FORM, OPTIMIZER_FLOAT64
from ...runtime.adam import adam_step_ratio
from ...runtime.policy import clone_model, token_logprobs
from .claims import PAGE
from .model import Config, _gradient, make_batch, objective

__all__ = ["sgd_check", "aggregation_check", "PHI"]

#: the reward scale compared (a loss-scale change of 10, as a change of aggregation mode can make)
PHI = 10.0


def _step(opt_cls, g: torch.Tensor, **kw) -> np.ndarray:
    probe = torch.nn.Parameter(torch.zeros_like(g))
    opt = opt_cls([probe], **kw)
    probe.grad = g.clone()
    opt.step()
    return probe.detach().numpy().copy()


def sgd_check(ctx: Context, stated_sgd_factor: float | None = None) -> Outcome:
    """SGD's measured step ratio against phi (``stated_sgd_factor`` replaces it: a planted 1, the invariance
    SGD does not have, must fail) and AdamW's against Prop. 2's factor, at the same parameters."""
    batch = make_batch("dr_grpo", quick=True, seed=ctx.seed)
    model = clone_model(batch.model)
    params = list(model.parameters())
    logps = [token_logprobs(model, pr.group)[0] for pr in batch.prompts]
    g1, _ = _gradient(model, params, -objective(batch, Config(), logps), None)
    gphi, _ = _gradient(model, params, -objective(batch, Config(scales=PHI), logps), None, retain=False)
    lr, eps = 1e-3, 1e-8
    s1, sphi = _step(torch.optim.SGD, g1, lr=lr), _step(torch.optim.SGD, gphi, lr=lr)
    a1 = _step(torch.optim.AdamW, g1, lr=lr, eps=eps, weight_decay=0.1)
    aphi = _step(torch.optim.AdamW, gphi, lr=lr, eps=eps, weight_decay=0.1)
    factor = PHI if stated_sgd_factor is None else stated_sgd_factor
    sgd_err = float(np.linalg.norm(sphi - factor * s1) / np.linalg.norm(factor * s1))  # normwise: SGD is linear
    # Prop. 2's premise per coordinate: the scaled gradient is phi g to rounding (not where g cancels to ~0)
    g1n, gpn = g1.numpy(), gphi.numpy()
    keep = (g1n != 0) & (np.abs(gpn - PHI * g1n) <= 1e-12 * PHI * np.abs(g1n))
    floor = floor_fraction(int(keep.size), 0.5)
    v_hat = (1 - 0.999) * g1.numpy() ** 2 / (1 - 0.999)  # the unscaled run's bias-corrected v after one step
    pred = adam_step_ratio(PHI, eps, v_hat) * a1
    c_adam = compare([aphi], [pred], scale=[np.abs(pred)], keep=[keep], floor=floor, what="coordinates")
    ratio = np.median(np.abs(aphi[keep] / a1[keep]))
    err = max(sgd_err, c_adam.error)
    return Outcome(err if math.isfinite(err) else math.inf, CLOSED_FORM,
                   f"SGD step with 10 r vs {factor:g} x the step with r: normwise relative error {sgd_err:.1e} over "
                   f"{keep.size} coordinates; AdamW step ratio vs Prop. 2's factor where the gradient scales to "
                   f"rounding: {c_adam.message}; median AdamW ratio {ratio:.6f}",
                   data={"compared": c_adam.compared, "adam_median_ratio": float(ratio), "sgd_error": sgd_err})


# float64 by its statement, whatever --precision asks: runs once
@claim("prop2-sgd-scales", page=PAGE, kind="optimizer",
       title="Without Adam, no invariance: SGD's step scales with the rewards",
       statement="On the tiny float64 GPT-2 policy with Dr. GRPO (no std normalisation), at the same parameters, "
                 "a real torch.optim.SGD step on the objective with rewards 10 r is 10 times the step with r "
                 "(normwise, to 1e-12), while a real AdamW step changes only by Prop. 2's factor "
                 "(1 + eps/sqrt(v_hat))/(1 + eps/(10 sqrt(v_hat))).")
def _check_sgd(ctx: Context) -> Outcome:
    return sgd_check(ctx)


def aggregation_check(ctx: Context, kappa: float | None = None) -> Outcome:
    """The four settings of :mod:`.aggregation` (float64 and bf16, clipped or not); ``kappa`` replaces the
    derived factor in the predictions (a planted wrong factor must fail)."""
    from .aggregation import aggregation_setting

    steps = 3 if ctx.quick else 4
    rows = [aggregation_setting(prec, clip, seed=ctx.seed, steps=steps, kappa=kappa)
            for prec in ("float64", "bf16") for clip in (False, True)]
    exact = [s for s in rows if s.precision == "float64"]
    err = max(s.comparison.error for s in exact)
    if not all(s.passed for s in rows):
        err = math.inf
    by = {(s.precision, s.clip): s for s in rows}
    clip64, eps64, bf = by[("float64", True)], by[("float64", False)], by[("bf16", False)]

    def pattern(acts):
        return "".join("C" if a else "-" for a in acts)

    text = "; ".join(f"{s.precision}{', clipped at ' + format(s.max_norm, '.3g') if s.clip else ''}: step change "
                     f"predicted {s.predicted_change:.3e}, measured {s.measured_change:.3e}"
                     + (f", clip per step predicted {pattern(s.active_predicted)} measured "
                        f"{pattern(s.active_measured)}" if s.clip else "")
                     + f", {s.comparison.message} (error {s.comparison.error:.1e}, "
                     f"{'bounded by' if s.precision == 'bf16' else 'tolerance'} {s.tolerance:g})"
                     + ("; the normwise change includes the coordinates left out, whose gradients sit at bf16's "
                        "rounding level and follow no factor" if s.precision == "bf16" else "") for s in rows)
    return Outcome(err, OPTIMIZER_FLOAT64,
                   f"kappa = N/B = {clip64.kappa:g}; {text}. Mechanisms: clipping in one mode only moves the step by "
                   f"{clip64.measured_change:.1%}, eps by {eps64.measured_change:.2%}, bf16 rounding without clipping "
                   f"by {bf.measured_change:.1%}",
                   data={"kappa": clip64.kappa, "rows": [s.as_dict() for s in rows],
                         "compared": sum(s.comparison.compared for s in rows)})


# runs float64 and bf16 itself, whatever --precision asks: runs once
@claim("prop2-aggregation-in-practice", page=PAGE, kind="optimizer",
       title="A loss-scale change through verl's aggregation mode, under AdamW, clipping and bf16: what moves the step",
       statement="On the tiny GPT-2 policy, switching verl's loss_agg_mode from token-mean to seq-mean-token-sum "
                 "multiplies every gradient by the derived factor N/B. Real AdamW steps of the two modes, at the same "
                 "parameters, follow the Adam recurrence fed kappa g_t clipped by torch's rule, to 1e-10 per "
                 "coordinate in float64 (with and without global gradient-norm clipping, clip activity per step "
                 "predicted) and within the bf16 bound in bf16 autocast; clipping active in one mode only changes "
                 "the step by O(1), eps by Prop. 2's factor.")
def _check_aggregation(ctx: Context) -> Outcome:
    return aggregation_check(ctx)
