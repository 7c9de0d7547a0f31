"""What ``grpo-proofs scale`` reports: one reward scale on the real policy, predicted against measured.

For a variant, a reward scale phi, Adam's eps, a KL coefficient beta and an optional max gradient norm,
the measured scaled steps (real ``torch.optim``, gradients by autograd of the scaled loss, clipping by
``clip_grad_norm_``) are compared with a prediction assembled from the derivations only:

    g_phi = sum_p k_p g_{A,p} + g_R           (Prop 5: k_p = phi, or phi (sigma_p + c)/(|phi| sigma_p + c);
                                                the KL gradient g_R does not scale)
    g_phi <- g_phi min(1, c_clip/(||g_phi|| + 1e-6))   (global clipping, as torch does it)
    step_phi = Adam recurrence on g_phi       (:class:`grpo_proofs.runtime.adam.AdamRecurrence`, no torch)

where g_{A,p} is the advantage-part gradient of prompt p alone at rewards r and g_R the KL-part gradient,
each computed separately at the same parameters. With beta = 0, no clipping and one k this is
R(k, eps, v_hat) x the unscaled step (Prop 2). The reported error is the larger of the per-coordinate
step error (coordinates whose gradient is above rounding level and matches the prediction to 1e-12)
and the normwise error of the gradient itself (which exposes any failure of the premise, e.g. PPO
clipping under phi < 0 after the first step). Deviations and fractions are over resolved coordinates
(gradient above 1e-12 x its largest entry at every step).
"""

from __future__ import annotations

import numpy as np

from ... import notation as n
from ...runtime.adam import adam_step_ratio, clip_by_norm, noninvariant_threshold, preconditioned_steps
from ...errors import InputError
from ...variants import get_variant
from ...weights import group_sigma
from .inputs import check_scale_inputs
from .model import OPTIMIZERS, Config, make_batch, paired_run
from .experiments import LR, conditioned, step_errors, step_scales
from .consequences import premise_error

__all__ = ["scale_report", "check_scale_inputs"]


def scale_report(variant, phi: float, *, eps: float = 1e-8, beta: float = 0.0, max_grad_norm: float | None = None,
                 steps: int = 3, device: str = "cpu", optimizer: str = "adamw", quick: bool = True, seed: int = 0,
                 n_prompts: int = 2, tol: float = 1e-3, progress: bool = False) -> dict:
    """Predicted vs measured steps at rewards phi r against r (see the module docstring)."""
    from .derive import advantage_scaling

    check_scale_inputs(phi, eps, beta, max_grad_norm, steps, optimizer)
    v = get_variant(variant)
    batch = make_batch(v, quick=quick, seed=seed, device=device, n_prompts=n_prompts)
    k_expr = advantage_scaling(v)["k"]
    ks = [float(k_expr.subs({n.phi: phi, n.sigma_r: group_sigma(pr.rewards, batch.sigma), n.c_sigma: v.sigma_eps}))
          for pr in batch.prompts]
    P = len(batch.prompts)
    cfgs = {"r": Config(beta=beta, max_grad_norm=max_grad_norm),
            "phi": Config(scales=phi, beta=beta, max_grad_norm=max_grad_norm)}
    for p in range(P):
        cfgs[f"A{p}"] = Config(scales=tuple(1.0 if q == p else 0.0 for q in range(P)))
    if beta:
        cfgs["R"] = Config(advantage=False, beta=beta)
    recs = paired_run(batch, cfgs, driver="r", optimizer=optimizer, lr=LR, eps=eps, steps=steps, progress=progress)
    u, s = recs["r"], recs["phi"]
    fed = []
    for t in range(steps):
        g = sum(k * recs[f"A{p}"].grads[t] for p, k in enumerate(ks))
        if beta:
            g = g + recs["R"].grads[t]
        if max_grad_norm is not None:
            g = clip_by_norm(g, max_grad_norm)[0]
        fed.append(g)
    pred, pred_vhat = preconditioned_steps(fed, lr=LR, beta1=0.9, beta2=0.999, eps=eps)  # torch's default betas
    keep = conditioned(fed, s.grads, 1.0)
    err = step_errors(s.steps, pred, step_scales(fed, pred_vhat, lr=LR, eps=eps), keep)
    premise = premise_error(s.grads, fed)  # the measured gradient against the predicted one, normwise
    base = step_scales(u.grads, u.v_hat, lr=LR, eps=eps)
    ok = conditioned(u.grads)[-1] & (u.steps[-1] != 0)
    if not ok.any():
        raise InputError("no coordinate has a resolved gradient at every step (every token clipped?); use fewer --steps")
    with np.errstate(divide="ignore", invalid="ignore"):
        frac_meas = float(np.mean(np.abs(s.steps[-1] / u.steps[-1] - 1)[ok] > tol))
        frac_pred = float(np.mean(np.abs(pred[-1] / u.steps[-1] - 1)[ok] > tol))
    uniform = len(set(ks)) == 1 and not beta and max_grad_norm is None
    R = adam_step_ratio(ks[0], eps, u.v_hat[-1][ok]) if uniform else None
    cls, wd = OPTIMIZERS[optimizer]
    return {
        "variant": v.name, "phi": phi, "eps": eps, "beta": beta, "max_grad_norm": max_grad_norm, "steps": steps,
        "optimizer": f"{cls.__name__} (weight decay {wd})", "device": device, "n_params": batch.n_params,
        "model": "tiny GPT-2 (float64)" if quick else "small GPT-2 (float64)", "n_prompts": P,
        "gradient_scale_k": ks,
        "max_rel_err_predicted_vs_measured": max(err["per_coordinate"], premise),
        "step_rel_err_per_coordinate": err["per_coordinate"], "gradient_rel_err_normwise": premise,
        "excluded_coordinates": err["excluded"], "resolved_coordinates": int(ok.sum()),
        "deviation_measured": float(np.max(np.abs(s.steps[-1] - u.steps[-1])[ok] / base[-1][ok])),
        "deviation_predicted": float(np.max(np.abs(pred[-1] - u.steps[-1])[ok] / base[-1][ok])),
        "deviation_normwise": float(np.linalg.norm(s.steps[-1] - u.steps[-1]) / np.linalg.norm(u.steps[-1])),
        "noninvariant_fraction": frac_meas, "noninvariant_fraction_predicted": frac_pred, "tol": tol,
        "adam_factor_min": float(R.min()) if R is not None else None,
        "adam_factor_max": float(R.max()) if R is not None else None,
        "grad_norm_unscaled": u.grad_norms, "grad_norm_scaled": s.grad_norms,
        "threshold_abs_g_first_step": noninvariant_threshold(ks[0], eps, tol) if uniform else None,
        "abs_grad": np.abs(u.grads[0][u.grads[0] != 0]),
    }
