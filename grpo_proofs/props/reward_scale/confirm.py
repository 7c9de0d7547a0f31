"""Props 5, 6, 2 for a user's variant, measured: reward scale and global gradient-norm clipping.

The variant's objective on one sampled group of the real policy is stepped by a real
``torch.optim.AdamW`` (:func:`grpo_proofs.props.reward_scale.model.paired_run`: every configuration's
step read at the same parameters), at rewards r and phi r.

Prediction of the scaled step, per phi. The symbolic degree d of A_i omega_i under r -> phi r
(:func:`grpo_proofs.check.verdict.scale_degree`) gives the factor k of the advantage gradient: phi^d, or for a
std weight with a constant c added to sigma, k = phi (sigma + c)/(phi sigma + c) with the group's own
sigma. The regulariser (beta R, reward-free) is not scaled, so the scaled objective is k times the
objective with coefficient beta/k, and the scaled step is :func:`grpo_proofs.runtime.adam.adam_step_ratio`
(k, eps, v_hat) times the step of the run with beta/k (beta = 0 or k = 1: the unscaled run itself).
Without such a k (a condition that changes with the scale) the scaled gradient is predicted from the
derived per-token coefficients (:func:`grpo_proofs.props.reward_scale.losses.coefficient_J`). The
predicted change of the step, ||predicted - unscaled|| / ||unscaled||, is compared with the measured
one, and the steps coordinate by coordinate (the error). The regulariser of these runs is the k3 term
of :mod:`grpo_proofs.props.reward_scale.model` with the variant's beta, whatever regulariser the
variant names: any reward-free term scales the same way.

Clipping (``torch.nn.utils.clip_grad_norm_``, max norm c): the raw gradients of both runs are
predicted (the unscaled one measured unclipped, the scaled one k times the beta/k run's), so whether
the clip is active at each step in each run, g min(1, c/(||g|| + 1e-6)), is predicted, and the
clipped gradients are fed to the hand-written Adam recurrence (:class:`grpo_proofs.runtime.adam.AdamRecurrence`,
no torch) to predict both runs' steps; the max norm is chosen between the two runs' first gradient
norms, so the clip is active in one run only (where the runs' gradients coincide, in both).
"""

from __future__ import annotations

import numpy as np

from ...runtime.adam import adam_step_ratio, clip_by_norm, preconditioned_steps
from ...weights import group_sigma
from ...checking.coverage import Comparison, compare, floor_fraction, merge
from ...checking.tolerances import OPTIMIZER_FLOAT64
from .verdict import scale_degree, scale_factor
from ...checking.confirmation import Confirmation, Options

__all__ = ["confirm_reward_scale", "confirm_grad_clip", "scale_factor", "relative_change", "LR", "WEIGHT_DECAY",
           "COVERAGE_FLOOR"]

#: AdamW learning rate and weight decay of the reward-scale runs (paired_run's AdamW)
LR = 1e-3
WEIGHT_DECAY = 0.1
#: coverage floor of the step comparisons: at least this fraction of all coordinate-steps is compared.
#: The compared coordinates are those whose gradient is resolved in the reference run (|g| above 1e-12 of
#: its largest entry at every step so far), a selection made without the measured scaled run; the rest
#: have no gradient (unused embeddings) or one at rounding level. Measured on the quick float64 GPT-2 of
#: ``grpo-proofs check --quick`` (dr_grpo): 52608 of 56096 coordinate-steps compared per phi (93.8 %).
COVERAGE_FLOOR = 0.8


def relative_change(steps, ref) -> float:
    """max_t ||a_t - b_t|| / ||b_t|| over the steps where b_t != 0 (0 where both vanish, inf where only b does).

    >>> relative_change([np.array([1.0, 1.0])], [np.array([1.0, 0.0])])
    1.0
    """
    out = 0.0
    for a, b in zip(steps, ref):
        da, nb = float(np.linalg.norm(a - b)), float(np.linalg.norm(b))
        out = max(out, da / nb if nb > 0 else (0.0 if da == 0 else float("inf")))
    return out


def _plan(v, d, beta: float, phis, r, sigma_kind):
    """configs of the paired run and, per phi, (reference config or None, k)."""
    from .model import Config

    cfgs, plan = {"r": Config(beta=beta)}, {}
    for phi in phis:
        k = scale_factor(v, d, phi, r, sigma_kind)
        cfgs[f"{phi}"] = Config(scales=phi, beta=beta)
        if k is None:
            cfgs[f"{phi} coefficients"] = Config(scales=phi, beta=beta, coefficients=True)
            plan[phi] = (f"{phi} coefficients", None)
        elif beta and k != 1:
            cfgs[f"{phi} base"] = Config(beta=beta / k)
            plan[phi] = (f"{phi} base", k)
        else:
            plan[phi] = ("r", k)
    return cfgs, plan


def confirm_reward_scale(spec, verdicts, opts: Options) -> list[Confirmation]:
    from .model import make_batch, paired_run
    from .experiments import conditioned, step_scales

    v = spec.variant
    d = scale_degree(v)[0]
    beta = v.beta if v.regularizer.value != "none" else 0.0
    phis = (0.1, 10.0) if opts.quick else (0.01, 0.1, 10.0, 100.0)
    steps = 2 if opts.quick else 3
    batch = make_batch(v, quick=opts.quick, seed=opts.seed, device=opts.device, n_prompts=1, sigma=opts.sigma)
    r = batch.prompts[0].rewards
    sigma_g = group_sigma(r, opts.sigma)
    cfgs, plan = _plan(v, d, beta, phis, r, opts.sigma)
    betas = (opts.beta1, opts.beta2)
    recs = paired_run(batch, cfgs, driver="r", optimizer="adamw", lr=LR, eps=opts.eps, betas=betas, steps=steps)
    rows, errs, curves = [], [], []
    ref = recs["r"]
    for phi in phis:
        name, k = plan[phi]
        meas, u = recs[f"{phi}"], recs[name]
        if k is None:  # the coefficient run is itself the prediction of the scaled step
            pred = list(u.steps)
            scales = step_scales(u.grads, u.v_hat, lr=LR, eps=opts.eps, betas=betas)
            keep = conditioned(u.grads)
        else:
            R = [adam_step_ratio(k, opts.eps, vh) for vh in u.v_hat]
            pred = [rr * s for rr, s in zip(R, u.steps)]
            scales = [np.abs(rr) * b for rr, b in zip(R, step_scales(u.grads, u.v_hat, lr=LR, eps=opts.eps,
                                                                    betas=betas))]
            keep = conditioned(u.grads)
            ok = np.abs(u.steps[-1]) > 1e-3 * np.abs(u.steps[-1]).max()
            sel = np.flatnonzero(ok)[:: max(1, int(ok.sum()) // 1500)]
            curves.append({"phi": phi, "k": k, "sqrt_vhat": np.sqrt(u.v_hat[-1][sel]),
                           "ratio": meas.steps[-1][sel] / u.steps[-1][sel], "kl": bool(beta and k != 1)})
        e = compare(meas.steps, pred, scale=scales, keep=keep, what="coordinate-steps",
                    floor=floor_fraction(batch.n_recorded * steps, COVERAGE_FLOOR))
        predicted, measured = relative_change(pred, ref.steps), relative_change(meas.steps, ref.steps)
        rows.append({"phi": phi, "factor": k, "reference": name, "predicted_change": predicted,
                     "measured_change": measured, "relative_change_vs_unscaled": measured,
                     "error": e.error, "excluded": int((~keep[-1]).sum()), **e.as_dict()})
        errs.append(e.error)
    verdict = verdicts.reward_scale["verdict"]
    if d is None:
        what = "scaled step = step on the derived per-token coefficients at phi r (no single scale factor)"
    elif beta and any(row["factor"] not in (None, 1) for row in rows):
        what = ("scaled step = R(k, eps, v_hat) x the step with beta/k: the advantage gradient scales by k, the "
                "regulariser does not")
    else:
        what = "scaled step = R(k, eps, v_hat) x unscaled step (Prop. 2)"
    detail = "; ".join(_row_text(x) for x in rows)
    total = merge([Comparison(x["error"], x["compared"], x["dropped"], x["floor"], "coordinate-steps") for x in rows])
    main = Confirmation("reward_scale", f"Props. 5, 6, 2: reward scale under AdamW ({verdict})", what,
                        max(errs), OPTIMIZER_FLOAT64,
                        f"{batch.n_params} parameters, {steps} AdamW steps, eps = {opts.eps:g}, group sigma = "
                        f"{sigma_g:.4g}: " + detail + "; " + total.message,
                        plot={"curves": curves, "eps": opts.eps, "rows": rows},
                        data={"rows": rows, "compared": total.compared, "dropped": total.dropped, "floor": total.floor,
                              "beta": beta, "degree": None if d is None else str(d), "sigma": sigma_g,
                              "sigma_constant": v.sigma_eps})
    return [main, confirm_grad_clip(batch, v, d, beta, phis, r, opts, steps)]


def _row_text(x: dict) -> str:
    k = "" if x["factor"] is None else f"k = {x['factor']:.6g}, "
    return (f"phi = {x['phi']:g}: {k}step change predicted {x['predicted_change']:.3e}, measured "
            f"{x['measured_change']:.3e}")


def _adam_steps(grads, opts: Options) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Preconditioned AdamW steps of the hand-written recurrence (theta = 0: decay drops out), and v_hat."""
    return preconditioned_steps(grads, lr=LR, beta1=opts.beta1, beta2=opts.beta2, eps=opts.eps,
                                weight_decay=WEIGHT_DECAY)


def confirm_grad_clip(batch, v, d, beta: float, phis, r, opts: Options, steps: int) -> Confirmation:
    """Global gradient-norm clipping: when it is active in each run, and both runs' steps, predicted."""
    from .model import Config, paired_run
    from .experiments import conditioned, step_scales

    ks = {phi: scale_factor(v, d, phi, r, opts.sigma) for phi in phis}
    moving = [p for p in phis if ks[p] is not None and ks[p] != 1]
    if not moving:  # no factor (or k = 1 everywhere: the gradients coincide): clip both runs alike
        phi = max(phis)
    else:
        phi = max(moving, key=lambda p: abs(np.log(ks[p])))
    k = ks[phi]
    base = Config(beta=beta / k) if (k is not None and beta and k != 1) else Config(beta=beta)
    probe_cfgs = {"r raw": Config(beta=beta), "phi raw": Config(scales=phi, beta=beta)}
    first = paired_run(batch, probe_cfgs, driver="r raw", optimizer="adamw", lr=LR, eps=opts.eps,
                       betas=(opts.beta1, opts.beta2), steps=1)
    n_r, n_phi = first["r raw"].grad_norms[0], first["phi raw"].grad_norms[0]
    if n_r == 0 and n_phi == 0:
        return Confirmation("grad_clip", "Global gradient-norm clipping", "-", float("inf"), OPTIMIZER_FLOAT64,
                            "FAILS: every gradient of the group is zero, so nothing can be clipped or compared")
    if abs(n_phi - n_r) <= 1e-9 * max(n_r, n_phi):
        c, where = 0.5 * min(n_r, n_phi), "both runs (equal gradients)"
    else:
        c, where = float(np.sqrt(n_r * n_phi)), "the scaled run only" if n_phi > n_r else "the unscaled run only"
    cfgs = {"r": Config(beta=beta, max_grad_norm=c), "phi": Config(scales=phi, beta=beta, max_grad_norm=c),
            "r raw": Config(beta=beta), "phi raw": Config(scales=phi, beta=beta),
            "base raw": base if k is not None else Config(scales=phi, beta=beta, coefficients=True)}
    recs = paired_run(batch, cfgs, driver="r", optimizer="adamw", lr=LR, eps=opts.eps,
                      betas=(opts.beta1, opts.beta2), steps=max(steps, 3))
    raw_r = recs["r raw"].grads
    kk = k if k is not None else 1.0
    raw_phi = [kk * g for g in recs["base raw"].grads]
    pred_r, act_r = zip(*[clip_by_norm(g, c) for g in raw_r])
    pred_phi, act_phi = zip(*[clip_by_norm(g, c) for g in raw_phi])
    meas_act_r = [n > c for n in recs["r"].grad_norms]
    meas_act_phi = [n > c for n in recs["phi"].grad_norms]
    mismatch = sum(a != b for a, b in zip(act_r + act_phi, meas_act_r + meas_act_phi))
    (s_r, v_r), (s_phi, v_phi) = _adam_steps(list(pred_r), opts), _adam_steps(list(pred_phi), opts)
    betas = (opts.beta1, opts.beta2)
    # every coordinate whose gradient is resolved in the reference run (a selection made without looking at
    # the scaled run) is compared; below COVERAGE_FLOOR of all coordinate-steps the comparison fails
    floor = floor_fraction(batch.n_recorded * len(recs["r"].steps), COVERAGE_FLOOR)
    keep = conditioned(recs["base raw"].grads)
    e_r = compare(recs["r"].steps, list(s_r), scale=step_scales(list(pred_r), v_r, lr=LR, eps=opts.eps, betas=betas),
                  keep=conditioned(raw_r), floor=floor, what="coordinate-steps")
    e_phi = compare(recs["phi"].steps, list(s_phi),
                    scale=step_scales(list(pred_phi), v_phi, lr=LR, eps=opts.eps, betas=betas), keep=keep,
                    floor=floor, what="coordinate-steps")
    err = float("inf") if mismatch else max(e_r.error, e_phi.error)
    predicted, measured = relative_change(s_phi, s_r), relative_change(recs["phi"].steps, recs["r"].steps)

    def pattern(acts):
        return "".join("C" if a else "-" for a in acts)

    return Confirmation(
        "grad_clip", "Global gradient-norm clipping",
        f"max norm {c:.3g}, active in {where}: predicted per step from the raw gradient norms, steps from the "
        "clipped gradients through the Adam recurrence",
        err, OPTIMIZER_FLOAT64,
        f"phi = {phi:g}: clip active per step (C = clipped) unscaled {pattern(act_r)} / scaled {pattern(act_phi)} "
        f"predicted, {pattern(meas_act_r)} / {pattern(meas_act_phi)} measured; step change predicted "
        f"{predicted:.3e}, measured {measured:.3e}; unscaled run {e_r.message}; scaled run {e_phi.message}",
        data={"max_norm": c, "compared": e_r.compared + e_phi.compared, "dropped": e_r.dropped + e_phi.dropped,
              "floor": e_r.floor + e_phi.floor, "phi": phi, "factor": k, "active_predicted": {"unscaled": list(act_r), "scaled": list(act_phi)},
              "active_measured": {"unscaled": meas_act_r, "scaled": meas_act_phi}, "predicted_change": predicted,
              "measured_change": measured, "relative_change": measured, "activity_mismatches": mismatch,
              "excluded": int((~keep[-1]).sum())})
