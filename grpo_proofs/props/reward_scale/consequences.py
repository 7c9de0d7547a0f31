"""Consequences of Props 5, 6, 2 on the real policy (arXiv 2601.05002, Sec. 5).

Every function returns a dict with ``error`` (to compare with the claim's tolerance) and the
figures behind it. Steps are read as in :func:`grpo_proofs.props.reward_scale.model.paired_run`;
errors are per coordinate relative to :func:`~grpo_proofs.props.reward_scale.experiments.step_scales`
on the coordinates :func:`~grpo_proofs.props.reward_scale.experiments.conditioned` keeps, plus the
normwise error of the gradient premise (which catches any asymmetry, e.g. PPO clipping under phi < 0).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ... import notation as n
from ...compile import to_numpy
from ...runtime.adam import TORCH_CLIP_GUARD, adam_step_ratio
from ...checking import Context
from ...checking.coverage import floor_fraction
from ...variants import REGISTRY
from ...weights import group_sigma
from .model import Config, make_batch, paired_run
from .experiments import (COVERAGE_BY, LR, PHIS, conditioned, effect_threshold, model_options, recurrence_steps, step_errors,
                          step_scales)

__all__ = ["premise_error", "compare", "std_invariance", "shift_invariance", "per_prompt_scaling",
           "negative_phi", "kl_inverse", "clip_coefficient", "grad_clip", "sigma_leak"]


def premise_error(grads, ref_grads, k=1.0) -> float:
    """max_t ||g_t - k_t g_ref,t|| / ||k_t g_ref,t|| (k a number or one per step)."""
    ks = k if np.ndim(k) else [k] * len(grads)
    out = 0.0
    for g, r, kk in zip(grads, ref_grads, ks):
        diff, size = np.linalg.norm(g - kk * r), np.linalg.norm(kk * r)
        out = max(out, float(diff / size) if size > 0 else (0.0 if diff == 0 else np.inf))
    return out


def compare(rec, ref, *, ratio, eps, grad_factor: float | None = 1.0, precision: str = "float64") -> dict:
    """rec's steps against ``ratio_t * ref's steps`` (ratio: a number or one array per step), given
    that rec's gradients are ``grad_factor`` x ref's (checked normwise; per coordinate it selects).
    ``grad_factor=None``: no premise (a measured deviation), resolved coordinates only. ``precision``:
    the arithmetic the runs used (selects :func:`conditioned`'s thresholds)."""
    R = ratio if isinstance(ratio, list) else [ratio] * len(ref.steps)
    pred = [np.asarray(r) * s for r, s in zip(R, ref.steps)]
    scales = [np.abs(r) * b for r, b in zip(R, step_scales(ref.grads, ref.v_hat, lr=LR, eps=eps))]
    if grad_factor is None:
        return step_errors(rec.steps, pred, scales, conditioned(ref.grads, precision=precision))
    keep = conditioned(ref.grads, rec.grads, grad_factor, precision=precision)
    out = step_errors(rec.steps, pred, scales, keep)
    out["premise_normwise"] = premise_error(rec.grads, ref.grads, grad_factor)
    out["error"] = max(out["per_coordinate"], out["premise_normwise"])
    return out


def std_invariance(ctx: Context, phis=None, eps: float = 1e-5) -> dict:
    """Std-normalised methods (sigma constant 0): steps at phi r equal steps at r, any eps, beta = registry's."""
    phis = phis or ((1e-3, 1e3) if ctx.quick else PHIS)
    rows, worst = [], 0.0
    for name, v in REGISTRY.items():
        if not v.std_normalised:
            continue
        batch = make_batch(v, quick=ctx.quick, seed=ctx.seed, device=ctx.device, **model_options(ctx))
        cfgs = {"r": Config(beta=v.beta)} | {str(p): Config(scales=p, beta=v.beta) for p in phis}
        recs = paired_run(batch, cfgs, driver="r", eps=eps, lr=LR, steps=2 if ctx.quick else 3)
        for p in phis:
            c = compare(recs[str(p)], recs["r"], ratio=1.0, eps=eps, precision=batch.precision)
            rows.append({"variant": name, "beta": v.beta, "phi": p, **c})
            worst = max(worst, c["error"])
    return {"error": worst, "eps": eps, "rows": rows}


def shift_invariance(ctx: Context, shifts=(0.1, -1 / 3), eps: float = 1e-8) -> dict:
    """r -> r + b: identical gradients and steps for every Table 1 method."""
    rows, worst = [], 0.0
    for name, v in REGISTRY.items():
        batch = make_batch(v, quick=ctx.quick, seed=ctx.seed, device=ctx.device, **model_options(ctx))
        cfgs = {"r": Config()} | {str(b): Config(shift=b) for b in shifts}
        recs = paired_run(batch, cfgs, driver="r", eps=eps, lr=LR, steps=1 if ctx.quick else 2)
        for b in shifts:
            c = compare(recs[str(b)], recs["r"], ratio=1.0, eps=eps, precision=batch.precision)
            rows.append({"variant": name, "shift": b, **c})
            worst = max(worst, c["error"])
    return {"error": worst, "rows": rows}


def per_prompt_scaling(ctx: Context, scales=(1.0, 10.0), eps: float = 1e-300) -> dict:
    """Two prompts scaled differently: Adam sees sum_p a_p g_p, not a multiple of sum_p g_p.

    Limit regime (eps -> 0), where one phi for both prompts is exactly invariant. Prediction: the
    hand-written recurrence on g_(a1, 0) + g_(0, a2) (each prompt's gradient alone).
    """
    a1, a2 = scales
    batch = make_batch("dr_grpo", quick=ctx.quick, seed=ctx.seed, device=ctx.device, n_prompts=2,
                       **model_options(ctx))
    cfgs = {"r": Config(), "uniform": Config(scales=(a2, a2)), "per-prompt": Config(scales=(a1, a2)),
            "first": Config(scales=(a1, 0.0)), "second": Config(scales=(0.0, a2))}
    recs = paired_run(batch, cfgs, driver="r", eps=eps, lr=LR, steps=2 if ctx.quick else 4)
    summed = [g1 + g2 for g1, g2 in zip(recs["first"].grads, recs["second"].grads)]
    pred = recurrence_steps(summed, lr=LR, eps=eps)
    pp = recs["per-prompt"]
    keep = conditioned(summed, pp.grads, 1.0, precision=batch.precision)
    scales_pp = step_scales(summed, [v for v in pp.v_hat], lr=LR, eps=eps)
    pred_err = step_errors(pp.steps, pred, scales_pp, keep)
    uni = compare(recs["uniform"], recs["r"], ratio=[adam_step_ratio(a2, eps, v) for v in recs["r"].v_hat],
                  eps=eps, grad_factor=a2, precision=batch.precision)
    base = step_scales(recs["r"].grads, recs["r"].v_hat, lr=LR, eps=eps)
    ok = conditioned(recs["r"].grads, precision=batch.precision)[-1]
    deviation = float(np.max(np.abs(pp.steps[-1] - recs["r"].steps[-1])[ok] / base[-1][ok]))
    err = max(pred_err["per_coordinate"], premise_error(pp.grads, summed), uni["error"])
    steps = len(pp.steps)
    return {"error": err if deviation > effect_threshold(1e-3, batch.precision) else np.inf, "prediction": pred_err,
            "uniform": uni, "per_prompt_deviation": deviation, "scales": scales, "eps": eps,
            "compared": pred_err["coordinate_steps"] + uni["coordinate_steps"],
            "floor": floor_fraction(2 * batch.n_recorded * steps, COVERAGE_BY[batch.precision])}


def negative_phi(ctx: Context, phis=(-1.0, -10.0), eps: float = 1e-8) -> dict:
    """phi < 0: the step is R(phi, eps, v_hat) x the step at r, R -> -1: the optimizer descends J(r).

    min(s A, clip(s) A) is odd in A only while s is inside the clip range, so for clipped methods the
    flip is exact at the first step from pi_old (s = 1; checked for Dr. GRPO and, with sigma constant 0,
    GRPO, where the gradient is exactly -g and R = -1) and for unclipped ones at every step (GPG,
    checked over T steps). Returned ``later_premise``: how far a clipped method's gradient at a later
    step is from phi g (ratios have left the clip range, the flip is no longer exact there).
    """
    rows, worst = [], 0.0
    T = 2 if ctx.quick else 4
    for name, steps in (("gpg", T), ("dr_grpo", T), ("grpo", 1)):
        batch = make_batch(name, quick=ctx.quick, seed=ctx.seed, device=ctx.device, n_prompts=2,
                           **model_options(ctx))
        cfgs = {"r": Config()} | {str(p): Config(scales=p) for p in phis}
        recs = paired_run(batch, cfgs, driver="r", eps=eps, lr=LR, steps=steps)
        u = recs["r"]
        for p in phis:
            k = -1.0 if batch.variant.std_normalised else p
            s = recs[str(p)]
            n_exact = steps if not batch.variant.clipped else 1
            first = type(u)(u.steps[:n_exact], u.v_hat[:n_exact], u.grads[:n_exact], u.grad_norms[:n_exact])
            mine = type(s)(s.steps[:n_exact], s.v_hat[:n_exact], s.grads[:n_exact], s.grad_norms[:n_exact])
            c = compare(mine, first, ratio=[adam_step_ratio(k, eps, v) for v in first.v_hat], eps=eps, grad_factor=k,
                        precision=batch.precision)
            cos = float(np.dot(s.steps[0], u.steps[0]) / (np.linalg.norm(s.steps[0]) * np.linalg.norm(u.steps[0])))
            later = premise_error(s.grads[n_exact:], u.grads[n_exact:], k) if steps > n_exact else None
            rows.append({"variant": name, "phi": p, "k": k, "exact_steps": n_exact, "cos_first_step": cos,
                         "later_premise": later, **c})
            worst = max(worst, c["error"], 0.0 if cos < -0.99 else np.inf)
    return {"error": worst, "eps": eps, "rows": rows}


def kl_inverse(ctx: Context, beta: float = 0.04, phis=None, eps: float = 1e-8) -> dict:
    """J(phi r; beta) = phi J(r; beta/phi): steps at (phi r, beta) = R(phi) x steps at (r, beta/phi)."""
    phis = phis or ((1e-1, 10.0) if ctx.quick else PHIS)
    batch = make_batch("dr_grpo", quick=ctx.quick, seed=ctx.seed, device=ctx.device, n_prompts=2,
                       **model_options(ctx))
    cfgs = {"r": Config(beta=beta)}
    for p in phis:
        cfgs[f"{p}"] = Config(scales=p, beta=beta)
        cfgs[f"{p} ref"] = Config(beta=beta / p)
    recs = paired_run(batch, cfgs, driver="r", eps=eps, lr=LR, steps=2 if ctx.quick else 3)
    rows, worst = [], 0.0
    for p in phis:
        ref = recs[f"{p} ref"]
        c = compare(recs[f"{p}"], ref, ratio=[adam_step_ratio(p, eps, v) for v in ref.v_hat], eps=eps, grad_factor=p,
                    precision=batch.precision)
        naive = compare(recs[f"{p}"], recs["r"], ratio=[adam_step_ratio(p, eps, v) for v in recs["r"].v_hat], eps=eps,
                        grad_factor=None, precision=batch.precision)
        rows.append({"phi": p, **c, "deviation_from_same_beta": naive["per_coordinate"]})
        differs = naive["per_coordinate"] > effect_threshold(1e-6, batch.precision)
        worst = max(worst, c["error"], 0.0 if differs else np.inf)
    return {"error": worst, "beta": beta, "rows": rows}


def clip_coefficient():
    """rho(phi, N, c, delta): the scaled run's clipped gradient = rho x the unscaled run's clipped one.

    ``clip_grad_norm_(max_norm=c)`` multiplies g by kappa(N) = min(1, c/(N + delta)) (delta = 1e-6 in
    torch); at rewards phi r the norm is |phi| N, so rho = phi kappa(|phi| N) / kappa(N). Returns
    (rho, cases): both runs clipped -> phi (N + delta)/(|phi| N + delta) (sign(phi) when delta = 0: the
    same gradient, whatever eps); neither -> phi (plain Adam invariance); only the scaled run ->
    phi c/(|phi| N + delta); only the unscaled run -> phi (N + delta)/c. In the last two rho depends
    on N, which changes from step to step, so Adam sees no single scale: invariance breaks.
    """
    phi, N, c, d = n.phi, n.grad_norm, n.max_norm, n.clip_delta
    def kappa(norm):
        return sp.Min(1, c / (norm + d))
    rho = phi * kappa(sp.Abs(phi) * N) / kappa(N)
    cases = {"both": phi * (N + d) / (sp.Abs(phi) * N + d), "neither": phi,
             "scaled only": phi * c / (sp.Abs(phi) * N + d), "unscaled only": phi * (N + d) / c}
    return rho, cases


def grad_clip(ctx: Context, max_norm: float = 1.0, phis=PHIS, eps: float = 1e-300) -> dict:
    """Global gradient-norm clipping: the scaled run sees rho_t x the unscaled clipped gradient.

    Limit regime (eps -> 0): without clipping every phi gives the same steps. With clipping, the
    prediction is the hand-written recurrence on rho_t g_t (rho from :func:`clip_coefficient`);
    invariance holds iff rho_t is the same at every step.
    """
    rho_expr, _ = clip_coefficient()
    rho_fn = to_numpy((n.phi, n.grad_norm, n.max_norm), rho_expr.subs(n.clip_delta, TORCH_CLIP_GUARD))
    batch = make_batch("dr_grpo", quick=ctx.quick, seed=ctx.seed, device=ctx.device, n_prompts=2,
                       **model_options(ctx))
    cfgs = {"r": Config(max_grad_norm=max_norm)} | {str(p): Config(scales=p, max_grad_norm=max_norm) for p in phis}
    recs = paired_run(batch, cfgs, driver="r", eps=eps, lr=LR, steps=2 if ctx.quick else 4)
    u, rows, worst = recs["r"], [], 0.0
    for p in phis:
        rho = [float(rho_fn(p, N, max_norm)) for N in u.grad_norms]
        fed = [r * g for r, g in zip(rho, u.grads)]
        pred = recurrence_steps(fed, lr=LR, eps=eps)
        s = recs[str(p)]
        keep = conditioned(fed, s.grads, 1.0, precision=batch.precision)
        e = step_errors(s.steps, pred, step_scales(fed, s.v_hat, lr=LR, eps=eps), keep)
        base = step_scales(u.grads, u.v_hat, lr=LR, eps=eps)
        ok = conditioned(u.grads, precision=batch.precision)[-1]
        if batch.precision != "float64":      # low precision: where the premise s.grads = rho g holds
            ok = ok & keep[-1]
        dev = float(np.max(np.abs(s.steps[-1] - u.steps[-1])[ok] / base[-1][ok]))
        act_u = [N + TORCH_CLIP_GUARD > max_norm for N in u.grad_norms]
        act_s = [abs(p) * N + TORCH_CLIP_GUARD > max_norm for N in u.grad_norms]
        mixed = act_u != act_s
        rows.append({"phi": p, "rho": rho, "active_unscaled": act_u, "active_scaled": act_s,
                     "prediction_per_coordinate": e["per_coordinate"], "premise_normwise": premise_error(s.grads, fed),
                     "deviation_from_unscaled": dev})
        # clipped in one run only: a visible break; clipped in both or neither: only the delta / eps leaks
        broken_ok = (dev > effect_threshold(1e-4, batch.precision) if mixed
                     else dev < effect_threshold(1e-6, batch.precision))
        worst = max(worst, e["per_coordinate"], rows[-1]["premise_normwise"], 0.0 if broken_ok else np.inf)
    return {"error": worst, "max_norm": max_norm, "eps": eps, "rows": rows}


def sigma_leak(ctx: Context, c_values=(1e-4, 0.1), phis=None, eps: float = 1e-8) -> dict:
    """GRPO with sigma = std(r) + c: the gradient scales by k = phi (sigma_r + c)/(phi sigma_r + c), so the
    step is R(k, eps, v_hat) x the unscaled step (one group, beta = 0); k from the SymPy derivation."""
    from .derive import advantage_scaling

    phis = phis or ((1e-3, 10.0) if ctx.quick else PHIS)
    k_expr = advantage_scaling("grpo")["k"]
    rows, worst = [], 0.0
    for c in c_values:
        v = REGISTRY["grpo"].replace(sigma_eps=c, beta=0.0)
        batch = make_batch(v, quick=ctx.quick, seed=ctx.seed, device=ctx.device, n_prompts=1,
                           **model_options(ctx))
        sig = group_sigma(batch.prompts[0].rewards, batch.sigma)
        cfgs = {"r": Config()} | {str(p): Config(scales=p) for p in phis}
        recs = paired_run(batch, cfgs, driver="r", eps=eps, lr=LR, steps=2 if ctx.quick else 3)
        u = recs["r"]
        for p in phis:
            k = float(k_expr.subs({n.phi: p, n.sigma_r: sig, n.c_sigma: c}))
            cmp = compare(recs[str(p)], u, ratio=[adam_step_ratio(k, eps, vh) for vh in u.v_hat], eps=eps,
                          grad_factor=k, precision=batch.precision)
            rows.append({"c": c, "phi": p, "sigma_r": sig, "k": k, "leak": k - 1, **cmp})
            worst = max(worst, cmp["error"])
    return {"error": worst, "eps": eps, "rows": rows}
