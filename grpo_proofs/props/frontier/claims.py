"""CFPO against Prop. 3 as claims: each composes the SymPy derivation (:mod:`.derive`) with an independent
numeric path (:mod:`.api`: the Adam recurrence; :mod:`.model`: ``torch.optim.Adam`` and autograd of
hand-written losses) and states its coverage.

* ``frontier-cfpo-restoring`` -- CFPO's gradient vanishes at s* = 1 + sgn(A) eps and its slope there is
  kappa = |A| (1 +- eps)^2/eps (derived), against autograd of the hand-written reference loss
  (:mod:`grpo_proofs.reference.cfpo`) and of the toy's loss;
* ``frontier-cfpo-overshoot`` -- on the one-logit toy the Adam recurrence on the derived gradient equals
  ``torch.optim.Adam`` on the hand-written loss (PPO-clip and CFPO, 6 settings); CFPO's excursion past
  1 + eps is smaller than PPO-clip's in every setting; and the post-boundary excursion recurrence at
  zero stiffness is Prop. 7's sum of C_(T,k).

Every check takes the statement it checks as an argument where a planted wrong statement must FAIL.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch

from ...claims import Context, Outcome, claim
from ...tolerances import CLOSED_FORM, OPTIMIZER_FLOAT64

from ... import notation as n
from ...overshoot import overshoot_ratio, overshoot_total
from . import api, derive, model

__all__ = ["PAGE", "SETTINGS", "restoring_check", "overshoot_check"]

PAGE = "frontier"
#: (lr, betas) of the toy runs: two step sizes, three momentum settings
SETTINGS = [(lr, b) for lr in (0.05, 0.2) for b in ((0.9, 0.999), (0.9, 0.95), (0.5, 0.999))]


def _reference_slope(sign: int, s_star: float) -> tuple[float, float, float]:
    """(gradient at s*, its x-derivative, |alpha A|) by autograd (double backward) of reference.cfpo on a
    two-completion group with completion 0 at ratio s* and advantage sign ``sign``."""
    from ...reference import cfpo

    mask = torch.ones(2, 1, dtype=torch.float64)
    old = torch.full((2, 1), -1.0, dtype=torch.float64)
    logp = (old + torch.tensor([[math.log(s_star)], [0.0]], dtype=torch.float64)).requires_grad_(True)
    rewards = torch.tensor([1.0, 0.0] if sign > 0 else [0.0, 1.0], dtype=torch.float64)
    (g,) = torch.autograd.grad(cfpo.loss(logp, old, rewards, mask), logp, create_graph=True)
    (h,) = torch.autograd.grad(g[0, 0], logp)
    # alpha = 1/(G |o| sigma) = 1/(2 * 1 * 1/2) = 1, |A| = 1/2: the derived kappa is per unit |A| alpha
    return float(g[0, 0].detach()), float(h[0, 0]), 0.5


def restoring_check(ctx: Context, stated_kappa=None) -> Outcome:
    """Derived s*, kappa (both signs) and the toy's kappa_z against double-backward autograd."""
    A = sp.Symbol("A", positive=True)
    errs, rows = [], []
    for sign in (1, -1):
        rp = derive.restoring_point(sign)
        e = sp.Symbol("e", positive=True)
        general = derive.restoring_point(sign, e)  # the written form with a symbolic eps, at eps = 1/5
        errs.append(abs(float(sp.simplify(general["kappa"].subs(e, sp.Rational(1, 5)) - rp["kappa"]).subs(A, 1))))
        kappa = (stated_kappa or {}).get(sign, rp["kappa"])
        g, h, absA_alpha = _reference_slope(sign, float(rp["s_star"]))
        want = float(kappa.subs(A, absA_alpha))
        errs.append(abs(g) / absA_alpha)  # zero gradient at s*
        errs.append(abs(h - want) / abs(want))
        rows.append({"sign": sign, "s_star": str(rp["s_star"]), "kappa": str(rp["kappa"]), "autograd": h,
                     "derived": want})
    toy = derive.toy_gradient()
    for p in (0.3, 0.5, 0.7):
        zs = float(toy["z_star"].subs(derive.p_old, p))
        z = torch.tensor(zs, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(model.toy_loss("cfpo", z, p, 1.0), z, create_graph=True)
        (h,) = torch.autograd.grad(g, z)
        want = float(toy["kappa_z"].subs({derive.p_old: p, A: 1}))
        errs += [abs(float(g.detach())), abs(float(h) - want) / want]
        rows.append({"p_old": p, "kappa_z derived": want, "autograd": float(h)})
    return Outcome(max(errs), CLOSED_FORM, f"{len(errs)} comparisons: s* and kappa for A > 0 and A < 0 (eps = 0.2), "
                   "the toy's kappa_z at p_old = 0.3, 0.5, 0.7", data={"rows": rows})


def overshoot_check(ctx: Context, stated_smaller: bool = True) -> Outcome:
    """Toy trajectories (recurrence on the derived gradient vs torch.optim.Adam), CFPO's excursion against
    PPO-clip's, and the zero-stiffness excursion against Prop. 7's sum of C_(T,k)."""
    steps = 40 if ctx.quick else 80
    traj_err, order_err, rows = 0.0, 0.0, []
    for lr, betas in SETTINGS:
        exc = {}
        for name in ("grpo", "cfpo"):
            pred = api.toy_predicted(name, lr, betas, steps=steps)
            meas = model.toy_measured(name, lr, betas, steps=steps)
            span = max(abs(v) for v in meas)  # z0 = logit(1/2) = 0: the size of the path
            traj_err = max(traj_err, max(abs(a - b) for a, b in zip(pred, meas)) / span)
            exc[name] = api.toy_excursion(meas)
        smaller = exc["cfpo"]["peak_steps"] < exc["grpo"]["peak_steps"]
        # turned back: CFPO ends at most half as far past 1 + eps as its peak (PPO-clip never turns back)
        back = exc["cfpo"]["final_ratio"] - 1.2 <= 0.5 * (exc["cfpo"]["peak_ratio"] - 1.2)
        order_err = max(order_err, 0.0 if (smaller and back) == stated_smaller else math.inf)
        rows.append({"lr": lr, "betas": betas, "clip_excursion": exc["grpo"]["peak_steps"],
                     "cfpo_excursion": exc["cfpo"]["peak_steps"], "cfpo_final_ratio": exc["cfpo"]["final_ratio"],
                     "cfpo_peak_ratio": exc["cfpo"]["peak_ratio"], "clip_final_ratio": exc["grpo"]["final_ratio"],
                     "rho_over_1_minus_rho": overshoot_total(*betas)})
    T, K = 50, 400
    limit_err = 0.0
    for betas in ((0.9, 0.999), (0.9, 0.95)):
        e = api.post_boundary_excursion(*betas, stiffness=0.0, T=T, steps=K)
        want = sum(overshoot_ratio(T, k, *betas) for k in range(K))
        limit_err = max(limit_err, abs(e.peak - want) / want)
    err = max(traj_err, order_err, limit_err)
    return Outcome(err, OPTIMIZER_FLOAT64,
                   f"{len(SETTINGS)} settings x 2 losses x {steps} Adam steps: trajectory error {traj_err:.1e}; "
                   f"CFPO's excursion below PPO-clip's in {sum(r['cfpo_excursion'] < r['clip_excursion'] for r in rows)}"
                   f"/{len(rows)}; zero-stiffness limit vs sum C_(T,k): {limit_err:.1e}", data={"rows": rows})


@claim("frontier-cfpo-restoring", title="CFPO's restoring gradient past the bound", page=PAGE, kind="numeric",
       statement="CFPO's gradient s (A - |A| (s - 1)/eps) vanishes at s* = 1 + sgn(A) eps and has slope "
                 "|A| (1 + eps)^2/eps (A > 0) or |A| (1 - eps)^2/eps (A < 0) there, in the log-ratio; on the "
                 "one-logit toy the slope in the logit is kappa (1 - p_old (1 + eps))^2.")
def check_restoring(ctx: Context) -> Outcome:
    return restoring_check(ctx)


@claim("frontier-cfpo-overshoot", title="Prop. 3 under CFPO: a bounded, returning excursion", page=PAGE,
       kind="optimizer",
       statement="Under Adam, CFPO's restoring gradient turns the carried momentum back: on the one-logit toy "
                 "its excursion past 1 + eps, in units of the last step before it, is smaller than PPO-clip's "
                 "(which tends to rho/(1 - rho)), and the ratio turns back toward 1 + eps; the post-boundary recurrence "
                 "with zero restoring slope is Prop. 7's sum of C_(T,k).")
def check_overshoot(ctx: Context) -> Outcome:
    return overshoot_check(ctx)
