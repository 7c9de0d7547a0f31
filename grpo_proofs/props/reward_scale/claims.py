"""Propositions 5, 6 and 2 (arXiv 2601.05002, Sec. 5, App. C): reward scale and Adam, in SymPy.

* Prop 5: r -> phi r gives A -> phi A (centering is linear); for each registered variant the
  weighted advantage A_i alpha_{i,t} is multiplied by an exact factor k (:func:`advantage_scaling`):
  k = phi for centered methods, k = phi (sigma_r + c) / (|phi| sigma_r + c) when alpha holds
  1/sigma with sigma = std(r) + c. Only the constant c leaks (k = sign(phi) when c = 0).
* Prop 6: if g_t -> phi g_t for every t (m_0 = v_0 = 0) then m_t -> phi m_t, v_t -> phi^2 v_t and the
  same for m_hat_t, v_hat_t: proved by induction for a symbolic step t and symbolic beta_1, beta_2
  (:func:`moment_induction`).
* Prop 2: the scaled preconditioned step is the unscaled one times
  R = phi (sqrt(v_hat) + eps) / (|phi| sqrt(v_hat) + eps), = (1 + eps/sqrt(v_hat)) /
  (1 + eps/(phi sqrt(v_hat))) for phi > 0, which tends to 1 as eps/(phi sqrt(v_hat)) -> 0
  (:func:`step_ratio_derivation`).

Every symbolic identity is a zero difference after targeted simplification (``cancel``,
``expand``); the claims add a second, numeric path: ``torch.optim`` state and steps on the real
transformer policy (:mod:`grpo_proofs.props.reward_scale.model`).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ... import notation as n
from ...checking import tolerances
from ...runtime.adam import adam_step_ratio, noninvariant_threshold
from ...variants import REGISTRY
from ...weights import group_sigma
from ...checking import Context, Outcome, claim
from ...checking.coverage import covered
from ...checking.outcomes import of_comparison
from .api import moment_scaling_errors
from .derive import (ABS_PHI, advantage_scaling, centering_residuals, moment_induction, step_ratio_derivation,
                     symbolic_error)

__all__ = ["PAGE"]

PAGE = "reward_scale"


# ----------------------------------------------------------------------------------------------
@claim("prop5-advantage-scaling", page=PAGE, kind="symbolic",
       title="Prop 5: scaling rewards scales the centered advantage; only the sigma constant leaks",
       statement="r -> phi r gives A -> phi A. For every Table 1 variant A_i alpha_{i,t} -> k A_i alpha_{i,t} "
                 "with k = phi (centered) or k = phi (sigma_r + c)/(|phi| sigma_r + c) (1/sigma in alpha, "
                 "sigma = std + c); CPPO's pruning condition shifts by gamma c (|phi| - 1).")
def _prop5(ctx: Context) -> Outcome:
    from ...objective import group_numbers

    residuals = list(centering_residuals().values())
    ks = {}
    for name, v in REGISTRY.items():
        a = advantage_scaling(v)
        residuals.append(a["residual"])
        ks[name] = a["k"]
        if name == "cppo":  # the pruning condition moves by gamma c (|phi| - 1): zero when c = 0
            residuals += [sp.expand(s - n.gamma * n.c_sigma * (ABS_PHI - 1)) for s in a["condition_shifts"]]
        elif a["condition_shifts"]:
            residuals.append(sp.Symbol("unexpected_condition"))
    sym = symbolic_error(residuals)
    # numeric path: alpha_{i,t} A_i from the objective's own numbers, scaled vs unscaled rewards
    rng = np.random.default_rng(ctx.seed)
    errors, groups = [], 0
    for name, v in REGISTRY.items():
        for c in (0.0, 1e-4, 0.3):
            for phi in (1e-3, 0.5, 7.0, 1e3):
                G = int(rng.integers(2, 9))
                r = np.round(rng.normal(size=G), 3)
                L = rng.integers(1, 20, size=G)
                groups += 1
                vc = v.replace(sigma_eps=c)
                base, scaled = group_numbers(vc, r, L), group_numbers(vc, phi * r, L)
                sig_r = group_sigma(r)
                k = float(ks[name].subs({n.phi: phi, n.sigma_r: sig_r, n.c_sigma: c}))
                for i in range(G):
                    want = k * base.A[i] * base.alpha[i]
                    got = scaled.A[i] * scaled.alpha[i]
                    errors.append(float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)))
    c = covered(errors, 2 * groups, "completions")                  # G >= 2 completions in every group
    return of_comparison(c, tolerances.CLOSED_FORM, bad=[] if sym == 0 else ["a symbolic residual is nonzero"],
                         detail=f"{len(residuals)} symbolic residuals all 0; {c.compared} completions compared "
                                f"({groups} random groups: objective numbers at phi r vs k x at r), max rel err "
                                f"{c.error:.1e}",
                         data={"k": {k_: str(v_) for k_, v_ in ks.items()}, "numeric_rel_err": c.error,
                               "residuals": len(residuals)})


@claim("prop6-moment-scaling", page=PAGE, kind="optimizer",
       title="Prop 6: scaling every gradient scales Adam's moments by phi and phi^2",
       statement="If g_t -> phi g_t for all t, then m_t -> phi m_t, v_t -> phi^2 v_t, m_hat_t -> phi m_hat_t, "
                 "v_hat_t -> phi^2 v_hat_t (induction on t, symbolic beta_1, beta_2, t); torch.optim.Adam's "
                 "exp_avg / exp_avg_sq obey it.")
def _prop6(ctx: Context) -> Outcome:
    induction = moment_induction()
    sym = symbolic_error(induction.values())
    phis = (1e-3, 0.1, -3.0, 10.0, 1e3)
    c = covered(moment_scaling_errors(ctx.seed, steps=4 if ctx.quick else 20, phis=phis), 2 * 50 * len(phis),
                "moment entries")
    return of_comparison(c, tolerances.OPTIMIZER_FLOAT64, bad=[] if sym == 0 else ["an induction residual is nonzero"],
                         detail=f"{len(induction)} induction residuals all 0; torch state: {c.compared} moment entries "
                                f"compared (m and v, 50 coordinates, {len(phis)} phis), max rel err {c.error:.1e}",
                         data={"torch_state_rel_err": c.error})


@claim("prop2-adam-invariance", page=PAGE, kind="model",
       title="Prop 2: Adam/AdamW steps change by the exact factor (1 + eps/sqrt(v_hat))/(1 + eps/(phi sqrt(v_hat)))",
       statement="With beta = 0 and one phi for every gradient, the preconditioned Adam/AdamW step is multiplied "
                 "per coordinate by R = phi (sqrt(v_hat) + eps)/(|phi| sqrt(v_hat) + eps), -> 1 as "
                 "eps/(phi sqrt(v_hat)) -> 0; checked with torch.optim.Adam and AdamW (weight decay on) on a "
                 "real transformer policy, phi in {1e-3, 1e-1, 10, 1e3}.")
def _prop2(ctx: Context) -> Outcome:
    from .experiments import step_ratio_experiment

    d = step_ratio_derivation()
    tau = sp.Symbol("tau", positive=True)
    residuals = [d["R - paper (phi > 0)"], d["paper step (phi > 0)"], d["limit"] - 1,
                 sp.expand(d["first order"] - (1 + n.eps_adam / sp.sqrt(n.v_hat) * (1 - 1 / n.phi))),
                 d["eps = 0"] - n.phi / ABS_PHI]
    sym = symbolic_error(residuals)
    # the closed-form threshold of adam.noninvariant_threshold against SymPy's solve
    thr_err = 0.0
    for phi, eps, t in ((3.0, 1.0, 0.5), (1e3, 1e-8, 1e-3), (10.0, 1e-5, 1e-2)):
        want = float(d["threshold"].subs({n.phi: phi, n.eps_adam: eps, tau: t}))
        thr_err = max(thr_err, abs(noninvariant_threshold(phi, eps, t) - want) / want)
        s = want * (1 + 1e-9)  # just above the threshold: |R - 1| just below tau
        thr_err = max(thr_err, 0.0 if abs(adam_step_ratio(phi, eps, s * s) - 1) < t else math.inf)
    res = step_ratio_experiment(ctx)
    err = max(sym, thr_err, res["max_rel_err"])
    return Outcome(error=err, tolerance=tolerances.for_precision("optimizer", ctx.effective_precision),
                   detail=f"symbolic {'ok' if sym == 0 else 'FAILED'}; torch Adam/AdamW step ratio vs exact factor: "
                          f"max rel err {res['max_rel_err']:.1e} over {res['compared']} coordinate-steps compared "
                          f"(autograd runs: resolved coordinates whose premise holds, each at least "
                          f"{res['rows'][0]['floor']}; exact-premise runs: every coordinate)"
                          + (f"; FAILS, below the coverage floor: {'; '.join(res['below_floor'])}" if res["below_floor"] else ""),
                   data=res)
