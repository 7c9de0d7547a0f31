"""Consequences of Props 5, 6, 2 (arXiv 2601.05002, Sec. 5, App. C), one claim each.

Each claim pairs a SymPy statement of the exact condition with a measurement on the real policy
and real ``torch.optim`` optimizers (:mod:`grpo_proofs.props.reward_scale.consequences`,
:mod:`grpo_proofs.props.reward_scale.experiments`) or with the 50-digit recurrence
(:mod:`grpo_proofs.props.reward_scale.mp`). Labels (page ``reward_scale``):
``prop2-trajectory-limit``, ``prop2-adam-invariance-50-digits``, ``prop2-std-normalised-invariance``,
``prop2-sigma-eps-leak``, ``prop2-shift-invariance``, ``prop2-per-prompt-scaling``,
``prop2-negative-phi-flip``, ``prop2-kl-inverse-coefficient``, ``prop2-grad-clip-breaks``,
``prop2-eps-noninvariant-fraction``.
"""

from __future__ import annotations

import sympy as sp

from ... import notation as n
from ...checking import tolerances
from ...variants import REGISTRY
from ...checking import Context, Outcome, claim
from ...checking.coverage import Comparison, covered
from ...checking.outcomes import of_comparison
from .claims import PAGE
from .derive import advantage_scaling, centering_residuals, step_ratio_derivation, symbolic_error

__all__: list[str] = []

_ABS = sp.Abs(n.phi)


def _X():
    """The experiments module (imported on use: it loads torch and transformers)."""
    from . import consequences as reward_scale_consequences

    return reward_scale_consequences


def _tol(ctx: Context) -> float:
    """The tolerance of predicted against measured optimizer steps in the context's arithmetic."""
    return tolerances.for_precision("optimizer", ctx.effective_precision)


def _outcome(sym: float, measured: float, tol: float, what: str, data: dict) -> Outcome:
    """A symbolic statement (``sym``: 0 when it holds) and a measurement over the compared cases of ``data``
    (``compared``, else one per row; at least ``floor``, default 1)."""
    rows = data.get("rows")
    compared = data.get("compared", len(rows) if isinstance(rows, list) else 0)
    c = Comparison(measured, int(compared), 0, int(data.get("floor", 1)), "cases")
    return of_comparison(c, tol, f"symbolic ok; {what} {measured:.1e} over {c.compared} compared cases",
                         bad=[] if sym == 0 else ["the symbolic statement does not hold"], data=data)


@claim("prop2-trajectory-limit", page=PAGE, kind="model",
       title="In the limit eps/(phi sqrt(v_hat)) -> 0, AdamW trajectories at r and phi r coincide",
       statement="Ordinary AdamW trainings (weight decay on) of the real policy at rewards r and phi r, "
                 "phi in {1e-3, 1e-1, 10, 1e3}, eps -> 0 (1e-300): parameters agree after T steps on every "
                 "coordinate whose gradient is resolved; at eps = 1e-8 they do not (shown in the detail as an illustration; not part of this claim's verdict).")
def _trajectory(ctx: Context) -> Outcome:
    from .experiments import trajectory_experiment

    sym = symbolic_error([step_ratio_derivation()["limit"] - 1])
    r = trajectory_experiment(ctx)
    return _outcome(sym, r["max_rel_dev_limit"], tolerances.for_precision("trajectory", ctx.effective_precision),
                    "max |theta_phi - theta_1|/(T lr), eps -> 0, resolved coordinates:", r)


@claim("prop2-adam-invariance-50-digits", page=PAGE, kind="numeric",
       title="Adam's reward-scale invariance at 50 digits: exact at eps = 0, the predicted deviation at eps = 1e-8",
       statement="On a softmax policy with 6 logits (mpmath, 50 digits): at eps = 0 trainings at r and phi r "
                 "coincide to the working precision; at eps = 1e-8 the scaled step equals "
                 "R(phi, eps, v_hat) x the unscaled step digit for digit.")
def _mp50(ctx: Context) -> Outcome:
    from .mp import mp_paired_steps, mp_trajectories

    phis = ("0.001", "1000") if ctx.quick else ("0.001", "0.1", "10", "1000")
    steps = 4 if ctx.quick else 10
    traj = [mp_trajectories(p, steps=steps, seed=ctx.seed) for p in phis]
    paired = [mp_paired_steps(p, "1e-8", steps=steps, seed=ctx.seed) for p in phis]
    c = covered([t["rel_diff"] for t in traj] + [p["rel_err"] for p in paired], 2 * len(phis), "runs")
    return of_comparison(c, tolerances.MPMATH_50,
                         detail=f"{c.compared} runs compared ({len(phis)} phis, eps = 0 and 1e-8); eps = 0 max rel "
                                f"diff {max(t['rel_diff'] for t in traj):.1e}; eps = 1e-8 step vs "
                                f"prediction {max(p['rel_err'] for p in paired):.1e}, deviation to "
                                f">= {min(p['deviation_digits'] for p in paired)} digits",
                         data={"eps0": traj, "eps1e-8": paired})


@claim("prop2-std-normalised-invariance", page=PAGE, kind="model",
       title="Std-normalised methods are reward-scale invariant for any eps, even with a KL term",
       statement="With sigma = std(r) (no constant), A/sigma is unchanged by r -> phi r (phi > 0): the gradient "
                 "and every Adam step are the same for GRPO (k3 KL, beta = 0.04), GSPO, DAPO, CPPO, CISPO, GCPO, "
                 "also at eps = 1e-5 where centered methods are far from invariant.")
def _std(ctx: Context) -> Outcome:
    k = sp.cancel(advantage_scaling("grpo")["k"].subs(n.c_sigma, 0).subs(_ABS, n.phi))  # phi > 0
    sym = symbolic_error([k - 1])
    r = _X().std_invariance(ctx)
    return _outcome(sym, r["error"], _tol(ctx), "step_phi vs step_1 max rel err", r)


@claim("prop2-sigma-eps-leak", page=PAGE, kind="model",
       title="The constant added to sigma leaks the reward scale: k = phi (sigma + c)/(phi sigma + c)",
       statement="With sigma = std(r) + c the gradient of one group scales by k = phi (sigma_r + c)/(phi sigma_r + c), "
                 "k - 1 = c (phi - 1)/(phi sigma_r + c) (0 iff c = 0 or phi = 1), and the Adam step by "
                 "R(k, eps, v_hat); k depends on the group's sigma_r, so across prompts it is no single scale.")
def _leak(ctx: Context) -> Outcome:
    k = advantage_scaling("grpo")["k"].subs(_ABS, n.phi)
    want = n.c_sigma * (n.phi - 1) / (n.phi * n.sigma_r + n.c_sigma)
    sym = symbolic_error([sp.cancel(k - 1 - want)])
    r = _X().sigma_leak(ctx)
    return _outcome(sym, r["error"], _tol(ctx), "step vs R(k) x unscaled step max rel err", r)


@claim("prop2-shift-invariance", page=PAGE, kind="model",
       title="Adding a constant to every reward changes nothing, for every method",
       statement="r -> r + b leaves A_i = r_i - mean r and sigma unchanged (symbolic G), so every Table 1 "
                 "method has the same gradient and the same optimizer steps.")
def _shift(ctx: Context) -> Outcome:
    res = centering_residuals()
    sym = symbolic_error([v for k, v in res.items() if "+ b" in k])
    r = _X().shift_invariance(ctx)
    return _outcome(sym, r["error"], _tol(ctx), "steps at r + b vs r max rel err", r)


@claim("prop2-per-prompt-scaling", page=PAGE, kind="model",
       title="Invariance needs one phi for all prompts: per-prompt scaling changes the steps",
       statement="With prompts scaled by different a_p the batch gradient is sum_p a_p g_p, not a multiple of "
                 "sum_p g_p: in the eps -> 0 limit a common scale leaves the steps unchanged, different scales "
                 "change them by O(1); the steps equal Adam on sum_p a_p g_p.")
def _per_prompt(ctx: Context) -> Outcome:
    r = _X().per_prompt_scaling(ctx)
    c = Comparison(r["error"], r["compared"], 0, r["floor"], "coordinate-steps")
    return of_comparison(c, _tol(ctx), f"prediction {r['prediction']['per_coordinate']:.1e}, common scale "
                         f"{r['uniform']['error']:.1e} over {c.compared} coordinate-steps compared (floor {c.floor}), "
                         f"per-prompt deviation {r['per_prompt_deviation']:.2f} (must be > 1e-3)", data=r)


@claim("prop2-negative-phi-flip", page=PAGE, kind="model",
       title="phi < 0 flips the objective: the optimizer descends J",
       statement="For phi < 0 the step is phi (sqrt(v_hat) + eps)/(|phi| sqrt(v_hat) + eps) x the unscaled one "
                 "(-> -1): exact at every step without clipping (GPG) and at the first step from pi_old with "
                 "clipping (Dr. GRPO; GRPO, whose gradient is exactly -g); min(s A, clip(s) A) is odd in A only "
                 "inside the clip range.")
def _negative(ctx: Context) -> Outcome:
    from ...terms import phi_expr

    d = step_ratio_derivation()
    A = sp.Symbol("A", positive=True)
    v = REGISTRY["dr_grpo"]
    inside = [phi_expr(v, s, A) + phi_expr(v, s, -A) for s in (sp.Rational(9, 10), 1, sp.Rational(11, 10))]
    outside = phi_expr(v, sp.Rational(3, 2), A) + phi_expr(v, sp.Rational(3, 2), -A)  # != 0: not odd there
    sym = symbolic_error([d["eps = 0"].subs(n.phi, -2) + 1, *inside, 0 if outside != 0 else 1])
    r = _X().negative_phi(ctx)
    return _outcome(sym, r["error"], _tol(ctx), "flipped step vs R(phi) x step max rel err", r)


@claim("prop2-kl-inverse-coefficient", page=PAGE, kind="model",
       title="With a KL term, reward scale acts as an inverse KL coefficient",
       statement="J(phi r; beta) = phi J(r; beta/phi) for centered methods: the Adam step at (phi r, beta) is "
                 "R(phi, eps, v_hat) x the step at (r, beta/phi), and differs from the step at (r, beta).")
def _kl(ctx: Context) -> Outcome:
    JA, R = sp.symbols("J_A R_KL", real=True)
    sym = symbolic_error([sp.expand(n.phi * JA - n.beta * R - n.phi * (JA - n.beta / n.phi * R))])
    r = _X().kl_inverse(ctx)
    return _outcome(sym, r["error"], _tol(ctx), "step at (phi r, beta) vs R x step at (r, beta/phi)", r)


@claim("prop2-grad-clip-breaks", page=PAGE, kind="model",
       title="Global gradient-norm clipping breaks the invariance when it is active in one run only",
       statement="clip_grad_norm_(c) multiplies g by min(1, c/(N + delta)); the scaled run then sees rho_t x the "
                 "unscaled clipped gradient, rho = phi min(1, c/(|phi| N + delta))/min(1, c/(N + delta)). Clipped "
                 "in both runs: rho = phi (N + delta)/(|phi| N + delta) (-> 1, a delta-sized leak); clipped in one run "
                 "only: rho depends on N_t, which changes every step, and the steps change by O(1).")
def _clip(ctx: Context) -> Outcome:
    rho, cases = _X().clip_coefficient()
    c, d = sp.Integer(1), sp.Rational(1, 10**6)
    pts = {"both": (3, 2), "neither": (sp.Rational(1, 2), sp.Rational(1, 2)), "scaled only": (5, sp.Rational(1, 2)),
           "unscaled only": (sp.Rational(1, 10), 3)}  # (phi, N) in each regime, c = 1
    res = [(rho - cases[k]).subs({n.phi: p, n.grad_norm: N, n.max_norm: c, n.clip_delta: d}) for k, (p, N) in pts.items()]
    res.append(sp.limit(cases["both"].subs(_ABS, n.phi), n.clip_delta, 0) - 1)
    sym = symbolic_error([sp.nsimplify(x) for x in res])
    r = _X().grad_clip(ctx)
    return _outcome(sym, r["error"], _tol(ctx), "steps vs Adam on rho_t g_t max rel err", r)


@claim("prop2-eps-noninvariant-fraction", page=PAGE, kind="model",
       title="Coordinates with |g| small against eps are not invariant: the fraction on a real model",
       statement="At step 1 a coordinate's step changes by more than 1e-3 relative iff |g| < eps (|phi - 1| - 1e-3)/"
                 "(1e-3 phi); measured with torch.optim on the real policy for eps = 1e-8 and 1e-5 and phi in "
                 "{1e-3, 1e-1, 10, 1e3}: measured, predicted and threshold counts agree coordinate by coordinate.")
def _fraction(ctx: Context) -> Outcome:
    from .experiments import noninvariant_fraction

    r = noninvariant_fraction(ctx)
    r.pop("abs_grad")
    figs = ", ".join(f"eps={x['eps']:g} phi={x['phi']:g}: {100 * x['measured_fraction']:.2f}% "
                     f"({x['compared']}/{x['n_resolved']} compared)" for x in r["rows"])
    short = f"FAILS, below the coverage floor: {'; '.join(r['below_floor'])}; " if r["below_floor"] else ""
    return Outcome(error=r["error"], tolerance=tolerances.EXACT,
                   detail=f"{short}coordinates where measured/predicted/threshold disagree: {r['error']:.1e} over "
                          f"{r['compared']} compared (floor {r['floor']}); {figs}", data=r)
