"""The real-model experiments behind the reward-scale claims (arXiv 2601.05002, Props 5, 6, 2).

Each function runs :func:`grpo_proofs.experiments.reward_scale.paired_run` (every configuration's
real ``torch.optim`` step read at the same parameters) or ordinary trainings, and compares the
measured steps with an independent prediction: the exact factor
:func:`grpo_proofs.adam.adam_step_ratio` applied to another run's step, or the hand-written
recurrence :class:`grpo_proofs.adam.AdamRecurrence` fed with separately computed gradients.

Resolved coordinates. Some coordinates have an exactly zero gradient in exact arithmetic that
autograd returns as rounding noise (GPT-2's key bias: softmax is invariant to adding the same
number to every score of a query). Their "gradient" is not a multiple of the reward scale, so
per-coordinate ratios are compared on the coordinates whose gradient is resolved,
|g_t| > ``RESOLVED`` max|g_t| at every step so far; the others are counted and covered by the
normwise error and by the exact-premise runs that feed phi g to the optimizer.
"""

from __future__ import annotations

import numpy as np

from ..adam import AdamRecurrence, adam_step_ratio
from ..claims import Context
from .reward_scale import Config, make_batch, paired_run, trajectory_run

__all__ = ["PHIS", "RESOLVED", "step_errors", "step_ratio_experiment", "trajectory_experiment",
           "recurrence_steps", "step_scales", "conditioned", "LR", "PREMISE"]

#: the reward scales of the issue
PHIS = (1e-3, 1e-1, 10.0, 1e3)
#: autograd gradients of the scaled loss must equal k g to this relative error for a per-coordinate comparison
PREMISE = 1e-12
#: Adam's learning rate in every experiment
LR = 1e-3
#: a gradient entry at most this fraction of the largest one is rounding level (see the docstring)
RESOLVED = 1e-12


def step_scales(grads, v_hat, *, lr, eps, betas=(0.9, 0.999)) -> list[np.ndarray]:
    """The size a coordinate's step would have without sign cancellation in the momentum.

    lr M_t / (sqrt(v_hat_t) + eps) with M_t the bias-corrected EMA of |g| (beta_1): equal to |step|
    when a coordinate's gradients keep one sign, larger when m_t is a difference of terms. Step errors
    are measured relative to it, the backward-stable way (a momentum that cancels to ~0 has a tiny step
    whose last digits no implementation can fix).
    """
    out, M = [], 0.0
    for t, (g, v) in enumerate(zip(grads, v_hat), start=1):
        M = betas[0] * M + (1 - betas[0]) * np.abs(g)
        out.append(lr * (M / (1 - betas[0] ** t)) / (np.sqrt(v) + eps))
    return out


def conditioned(grads, scaled_grads=None, k: float = 1.0) -> list[np.ndarray]:
    """Per step, the coordinates resolved at every step so far (|g_t| > RESOLVED max|g_t|) and, if
    ``scaled_grads`` is given, whose autograd gradient is k g_t to ``PREMISE`` relative at every step."""
    out, ok = [], None
    for t, g in enumerate(grads):
        a = np.abs(g)
        now = a > RESOLVED * a.max()
        if scaled_grads is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                now &= np.abs(scaled_grads[t] - k * g) <= PREMISE * np.abs(k * g)
        ok = now if ok is None else ok & now
        out.append(ok)
    return out


def step_errors(measured, predicted, scales, keep=None) -> dict:
    """max_t,j |measured - predicted| / scale over coordinates with scale > 0 (and ``keep``, per step).

    Where ``scale`` is 0 (no gradient yet) both steps must be exactly 0, else the error is inf.
    ``normwise`` (reported, not compared): max_t ||measured - predicted|| / ||predicted||.
    """
    per, norm, n = 0.0, 0.0, 0
    for t, (m, p, sc) in enumerate(zip(measured, predicted, scales)):
        k = np.ones(m.shape, bool) if keep is None else keep[t]
        zero = (sc == 0) & k
        if np.any(m[zero] != 0) or np.any(p[zero] != 0):
            return {"per_coordinate": np.inf, "normwise": np.inf, "excluded": 0, "coordinate_steps": 0}
        sel = k & (sc > 0)
        if sel.any():
            per = max(per, float(np.max(np.abs(m[sel] - p[sel]) / sc[sel])))
        n += int(sel.sum())
        norm = max(norm, float(np.linalg.norm(m - p) / np.linalg.norm(p)))
    excluded = 0 if keep is None else int((~keep[-1]).sum())
    return {"per_coordinate": per, "normwise": norm, "excluded": excluded, "coordinate_steps": n}


def recurrence_steps(grads, *, lr, eps, betas=(0.9, 0.999)) -> list[np.ndarray]:
    """Preconditioned steps of the hand-written Adam recurrence on a gradient list (no torch)."""
    opt = AdamRecurrence(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps)
    out = []
    for g in grads:
        _, pre = opt.step(np.zeros_like(g), g)
        out.append(pre)
    return out


def step_ratio_experiment(ctx: Context, variant: str = "dr_grpo", phis=PHIS, eps_values=None,
                          steps: int | None = None) -> dict:
    """Prop 2 on the real policy: scaled steps = R(phi, eps, v_hat) x unscaled steps, per coordinate.

    For each optimizer (Adam; AdamW with weight decay 0.1) and phi: (a) rewards scaled by phi,
    gradients by autograd; (b) the optimizer fed exactly phi x the unscaled gradient (Prop 6's
    premise, every coordinate). v_hat is read from the unscaled optimizer's state.
    """
    steps = steps or (2 if ctx.quick else 5)
    eps_values = eps_values or ((1e-8,) if ctx.quick else (1e-8, 1e-5))
    batch = make_batch(variant, quick=ctx.quick, seed=ctx.seed, device=ctx.device, n_prompts=2)
    rows, worst = [], 0.0
    for opt in ("adam", "adamw"):
        for eps in eps_values:
            cfgs = {"r": Config()}
            for phi in phis:
                cfgs[f"{phi}"] = Config(scales=phi)
                cfgs[f"{phi} exact"] = Config(grad_of=("r", phi))
            recs = paired_run(batch, cfgs, driver="r", optimizer=opt, lr=LR, eps=eps, steps=steps)
            u = recs["r"]
            base = step_scales(u.grads, u.v_hat, lr=LR, eps=eps)
            for phi in phis:
                R = [adam_step_ratio(phi, eps, v) for v in u.v_hat]
                pred = [r * s for r, s in zip(R, u.steps)]
                scales = [np.abs(r) * b for r, b in zip(R, base)]
                keep = conditioned(u.grads, recs[f"{phi}"].grads, phi)
                auto = step_errors(recs[f"{phi}"].steps, pred, scales, keep)
                exact = step_errors(recs[f"{phi} exact"].steps, pred, scales)
                grad = max(float(np.linalg.norm(gs - phi * gu) / np.linalg.norm(phi * gu))
                           for gs, gu in zip(recs[f"{phi}"].grads, u.grads))
                frac = float(np.mean(np.abs(adam_step_ratio(phi, eps, u.v_hat[-1]) - 1) > 1e-3))
                row = {"optimizer": opt, "eps": eps, "phi": phi, "autograd_per_coordinate": auto["per_coordinate"],
                       "autograd_normwise": auto["normwise"], "excluded": auto["excluded"],
                       "exact_premise_per_coordinate": exact["per_coordinate"], "gradient_normwise": grad,
                       "fraction_changed_1e-3": frac}
                rows.append(row)
                worst = max(worst, auto["per_coordinate"], exact["per_coordinate"], grad)
    return {"max_rel_err": worst, "rows": rows, "steps": steps, "n_params": batch.n_params,
            "coordinates": batch.n_params * steps * len(rows)}


def trajectory_experiment(ctx: Context, variant: str = "dr_grpo", phis=PHIS, steps: int | None = None,
                          lr: float = 1e-3) -> dict:
    """Ordinary AdamW trainings at scale 1 and phi: the parameter trajectories.

    Limit regime eps -> 0 (eps = 1e-300, below every resolved gradient): predicted deviation 0,
    measured max |theta_phi - theta_1| / (T lr) on resolved coordinates. Also reported at eps = 1e-8,
    where coordinates with |g| ~ eps/tolerance are not invariant.
    """
    steps = steps or (2 if ctx.quick else 4)
    batch = make_batch(variant, quick=ctx.quick, seed=ctx.seed, device=ctx.device, n_prompts=2)
    out, worst = [], 0.0
    for eps in (1e-300, 1e-8):
        base, grads = trajectory_run(batch, Config(), optimizer="adamw", eps=eps, lr=lr, steps=steps)
        ok = np.all([np.abs(g) > RESOLVED * np.abs(g).max() for g in grads], axis=0)
        for phi in phis:
            th, _ = trajectory_run(batch, Config(scales=phi), optimizer="adamw", eps=eps, lr=lr, steps=steps)
            dev = np.abs(th[-1] - base[-1]) / (steps * lr)
            row = {"eps": eps, "phi": phi, "max_dev_resolved": float(dev[ok].max()),
                   "max_dev_all": float(dev.max()), "unresolved": int((~ok).sum())}
            out.append(row)
            if eps == 1e-300:
                worst = max(worst, row["max_dev_resolved"])
    return {"max_rel_dev_limit": worst, "rows": out, "steps": steps, "n_params": batch.n_params}
