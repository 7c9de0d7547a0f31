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
transformer policy (:mod:`grpo_proofs.experiments.reward_scale`).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from sympy.core.relational import Relational

from .. import notation as n
from .. import tolerances
from ..adam import adam_step_ratio, noninvariant_threshold
from ..variants import REGISTRY, Variant, get_variant
from . import Context, Outcome, claim

__all__ = [
    "PAGE", "centering_residuals", "advantage_scaling", "moment_induction", "step_ratio_derivation",
    "adam_step", "symbolic_error",
]

PAGE = "prop5-6-2"
_ABS_PHI = sp.Abs(n.phi)


def _split_abs(e: sp.Expr) -> sp.Expr:
    """|x y| -> |x| |y| (true for any factors), so a scale can be pulled out of a condition."""
    return e.replace(lambda z: isinstance(z, sp.Abs), lambda z: sp.Mul(*[sp.Abs(f) for f in sp.Mul.make_args(z.args[0])]))


def _sums_linear(e: sp.Expr) -> sp.Expr:
    """Pull constants out of every Sum and split sums of sums (targeted, no ``simplify``)."""
    e = e.replace(lambda x: isinstance(x, sp.Sum), lambda x: sp.factor_terms(x.expand()))
    return sp.expand(e.doit())


def centering_residuals() -> dict[str, sp.Expr]:
    """Residuals (all 0) of Prop 5 and of the shift invariance, for a symbolic group size G.

    A_i = r_i - (1/G) sum_j r_j and sigma^2 = (1/(G - d)) sum_j (r_j - mean r)^2 (d = 0 population,
    d = 1 sample): A(phi r) = phi A(r), sigma^2(phi r) = phi^2 sigma^2(r), A(r + b) = A(r),
    sigma^2(r + b) = sigma^2(r).

    >>> all(v == 0 for v in centering_residuals().values())
    True
    """
    r, j, G, phi, b = n.r_idx, n.j_idx, n.G, n.phi, n.shift
    i = sp.Symbol("i", integer=True, positive=True)

    def adv(f):
        return f(r[i]) - sp.Sum(f(r[j]), (j, 1, G)) / G

    def var(f, d):
        mean = sp.Sum(f(r[j]), (j, 1, G)) / G
        return sp.Sum(sp.expand((f(r[j]) - mean) ** 2), (j, 1, G)) / (G - d)

    ident, scaled, shifted = (lambda z: z), (lambda z: phi * z), (lambda z: z + b)
    out = {
        "A(phi r) - phi A(r)": _sums_linear(adv(scaled) - phi * adv(ident)),
        "A(r + b) - A(r)": _sums_linear(adv(shifted) - adv(ident)),
    }
    for d, name in ((0, "pop"), (1, "sample")):
        out[f"sigma_{name}^2(phi r) - phi^2 sigma_{name}^2(r)"] = _sums_linear(var(scaled, d) - phi**2 * var(ident, d))
        out[f"sigma_{name}^2(r + b) - sigma_{name}^2(r)"] = _sums_linear(var(shifted, d) - var(ident, d))
    return out


def advantage_scaling(variant: "str | Variant") -> dict[str, sp.Expr]:
    """The exact factor k with A_i alpha_{i,t} -> k A_i alpha_{i,t} under r -> phi r (Prop 5).

    sigma in alpha is std(r) + c = sigma_r + c, so it becomes |phi| sigma_r + c. Returns ``k``,
    ``residual`` (scaled - k * unscaled with every clip/pruning condition held fixed: 0) and
    ``condition_shifts``: for each condition lhs > rhs of alpha (CPPO's |A_i| > gamma sigma), the
    change (lhs - rhs)(scaled) - |phi| (lhs - rhs)(unscaled); 0 means the condition is unchanged.

    >>> advantage_scaling("grpo")["k"]
    phi*(c_sigma + sigma_r)/(c_sigma + sigma_r*Abs(phi))
    >>> advantage_scaling("cppo")["condition_shifts"]
    [c_sigma*gamma*(Abs(phi) - 1)]
    """
    v = get_variant(variant)
    alpha = v.alpha
    rels = sorted(alpha.atoms(Relational), key=sp.default_sort_key)
    held = {rel: sp.Symbol(f"C_{k}") for k, rel in enumerate(rels)}  # conditions held fixed
    unscaled_sub = {n.sigma: n.sigma_r + n.c_sigma}
    scaled_sub = {n.A_i: n.phi * n.A_i, n.sigma: _ABS_PHI * n.sigma_r + n.c_sigma}
    fixed = alpha.xreplace(held)
    un = n.A_i * fixed.subs(unscaled_sub)
    sc = n.phi * n.A_i * fixed.subs(scaled_sub, simultaneous=True)
    if v.std_normalised:
        k = n.phi * (n.sigma_r + n.c_sigma) / (_ABS_PHI * n.sigma_r + n.c_sigma)
    else:
        k = n.phi
    residual = sp.cancel(sp.piecewise_fold(sc - k * un))
    shifts = []
    for rel in rels:
        gap = rel.lhs - rel.rhs
        moved = _split_abs(gap.subs(scaled_sub, simultaneous=True)) - _ABS_PHI * gap.subs(unscaled_sub)
        shifts.append(sp.factor(sp.expand(moved)))
    return {"k": k, "residual": residual, "condition_shifts": shifts}


def moment_induction() -> dict[str, sp.Expr]:
    """Prop 6 by induction on t: every residual is 0.

    Base: m_0 = v_0 = 0 are scaled trivially. Step: if m_{t-1} -> phi m_{t-1} and
    v_{t-1} -> phi^2 v_{t-1}, then m_t = beta_1 m_{t-1} + (1 - beta_1) g_t -> phi m_t and
    v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2 -> phi^2 v_t; the bias corrections m_hat_t = m_t/(1 - beta_1^t),
    v_hat_t = v_t/(1 - beta_2^t) divide both sides by the same gradient-free number, so they scale the same
    way (no separate identity). Also: the unrolled form m_t = (1 - beta_1) sum_k beta_1^(t-k) g_k agrees
    with the recurrence for t = 1..6.

    >>> set(moment_induction().values())
    {0}
    """
    b1, b2, phi, g = n.beta1, n.beta2, n.phi, n.g_t

    def m(prev, grad):
        return b1 * prev + (1 - b1) * grad

    def v(prev, grad):
        return b2 * prev + (1 - b2) * grad**2

    m_un, v_un = m(n.m_before, g), v(n.v_before, g)
    m_sc, v_sc = m(phi * n.m_before, phi * g), v(phi**2 * n.v_before, phi * g)
    out = {
        "m_t": sp.expand(m_sc - phi * m_un),
        "v_t": sp.expand(v_sc - phi**2 * v_un),
    }
    # The bias corrections divide both sides by the same 1 - beta^t, and sqrt(phi^2 X) = |phi| sqrt(X) is
    # SymPy's own rule: both follow from the two lines above and are not separate identities.
    gk, k = sp.IndexedBase("g", real=True), sp.Symbol("k", integer=True, positive=True)
    rec = 0
    for T in range(1, 7):
        rec = m(rec, gk[T])
        unrolled = (1 - b1) * sp.Sum(b1 ** (T - k) * gk[k], (k, 1, T)).doit()
        out[f"unrolled m_{T}"] = sp.expand(rec - unrolled)
    return out


def adam_step(m_hat: sp.Expr, v_hat: sp.Expr, theta: sp.Expr = n.theta) -> tuple[sp.Expr, sp.Expr]:
    """(theta_t, preconditioned step) of AdamW: theta (1 - eta lambda) - eta m_hat / (sqrt(v_hat) + eps)."""
    pre = -n.lr * m_hat / (sp.sqrt(v_hat) + n.eps_adam)
    return theta * (1 - n.lr * n.weight_decay) + pre, pre


def step_ratio_derivation() -> dict[str, sp.Expr]:
    """Prop 2: the exact step ratio, the paper's form, its limit and the non-invariance threshold.

    Keys: ``R`` (scaled / unscaled preconditioned step), ``R - paper (phi > 0)`` (0), ``paper step
    (phi > 0)`` (scaled AdamW step minus the paper's -eta m_hat/(sqrt(v_hat)(1 + eps/(phi sqrt(v_hat))))
    - eta lambda theta: 0), ``limit`` (R as x = eps/(phi sqrt(v_hat)) -> 0: 1), ``first order``
    (R = 1 + (eps/sqrt(v_hat))(1 - 1/phi) + O(eps^2)), ``threshold`` (the sqrt(v_hat) at which
    R - 1 = tau for phi > 1), ``eps = 0`` (R at eps = 0: sign(phi)).
    """
    phi, eps, vh, mh, x = n.phi, n.eps_adam, n.v_hat, n.m_hat, sp.Symbol("x", positive=True)
    scaled_theta, scaled_pre = adam_step(phi * mh, phi**2 * vh)
    _, pre = adam_step(mh, vh)
    R = sp.cancel(scaled_pre / pre)
    paper = (1 + eps / sp.sqrt(vh)) / (1 + eps / (phi * sp.sqrt(vh)))
    paper_step = -n.lr * mh / (sp.sqrt(vh) * (1 + eps / (phi * sp.sqrt(vh)))) - n.lr * n.weight_decay * n.theta
    tau, s = sp.Symbol("tau", positive=True), sp.Symbol("s", positive=True)
    (thr,) = sp.solve(sp.Eq(R.subs(_ABS_PHI, phi).subs(vh, s**2) - 1, tau), s)
    return {
        "R": R,
        "R - paper (phi > 0)": sp.cancel(R.subs(_ABS_PHI, phi) - paper),
        "paper step (phi > 0)": sp.cancel((scaled_theta - n.theta - paper_step).subs(_ABS_PHI, phi)),
        "limit": sp.limit(paper.subs(eps, x * phi * sp.sqrt(vh)), x, 0),
        "first order": sp.series(paper, eps, 0, 2).removeO(),
        "threshold": thr,
        "eps = 0": sp.cancel(R.subs(eps, 0)),
    }


def symbolic_error(residuals) -> float:
    """0.0 if every residual is exactly 0, else inf (a symbolic identity either holds or not)."""
    return 0.0 if all(sp.sympify(r) == 0 for r in residuals) else math.inf


# ----------------------------------------------------------------------------------------------
@claim("prop5-advantage-scaling", page=PAGE, kind="symbolic",
       title="Prop 5: scaling rewards scales the centered advantage; only the sigma constant leaks",
       statement="r -> phi r gives A -> phi A. For every Table 1 variant A_i alpha_{i,t} -> k A_i alpha_{i,t} "
                 "with k = phi (centered) or k = phi (sigma_r + c)/(|phi| sigma_r + c) (1/sigma in alpha, "
                 "sigma = std + c); CPPO's pruning condition shifts by gamma c (|phi| - 1).")
def _prop5(ctx: Context) -> Outcome:
    from ..objective import group_numbers

    residuals = list(centering_residuals().values())
    ks = {}
    for name, v in REGISTRY.items():
        a = advantage_scaling(v)
        residuals.append(a["residual"])
        ks[name] = a["k"]
        if name == "cppo":  # the pruning condition moves by gamma c (|phi| - 1): zero when c = 0
            residuals += [sp.expand(s - n.gamma * n.c_sigma * (_ABS_PHI - 1)) for s in a["condition_shifts"]]
        elif a["condition_shifts"]:
            residuals.append(sp.Symbol("unexpected_condition"))
    sym = symbolic_error(residuals)
    # numeric path: alpha_{i,t} A_i from the objective's own numbers, scaled vs unscaled rewards
    rng = np.random.default_rng(ctx.seed)
    worst = 0.0
    for name, v in REGISTRY.items():
        for c in (0.0, 1e-4, 0.3):
            for phi in (1e-3, 0.5, 7.0, 1e3):
                G = int(rng.integers(2, 9))
                r = np.round(rng.normal(size=G), 3)
                L = rng.integers(1, 20, size=G)
                vc = v.replace(sigma_eps=c)
                base, scaled = group_numbers(vc, r, L), group_numbers(vc, phi * r, L)
                sig_r = float(np.std(r))
                k = float(ks[name].subs({n.phi: phi, n.sigma_r: sig_r, n.c_sigma: c}))
                for i in range(G):
                    want = k * base.A[i] * base.alpha[i]
                    got = scaled.A[i] * scaled.alpha[i]
                    worst = max(worst, float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)))
    return Outcome(error=max(sym, worst), tolerance=tolerances.CLOSED_FORM,
                   detail=f"symbolic residuals {'all 0' if sym == 0 else 'NONZERO'}; numeric max rel err {worst:.1e}",
                   data={"k": {k_: str(v_) for k_, v_ in ks.items()}, "numeric_rel_err": worst})


@claim("prop6-moment-scaling", page=PAGE, kind="optimizer",
       title="Prop 6: scaling every gradient scales Adam's moments by phi and phi^2",
       statement="If g_t -> phi g_t for all t, then m_t -> phi m_t, v_t -> phi^2 v_t, m_hat_t -> phi m_hat_t, "
                 "v_hat_t -> phi^2 v_hat_t (induction on t, symbolic beta_1, beta_2, t); torch.optim.Adam's "
                 "exp_avg / exp_avg_sq obey it.")
def _prop6(ctx: Context) -> Outcome:
    import torch

    sym = symbolic_error(moment_induction().values())
    rng = np.random.default_rng(ctx.seed)
    worst = 0.0
    T = 4 if ctx.quick else 20
    for phi in (1e-3, 0.1, -3.0, 10.0, 1e3):
        grads = rng.normal(size=(T, 50)) * 10.0 ** rng.uniform(-9, 1, size=(T, 50))
        states = []
        for scale in (1.0, phi):
            p = torch.nn.Parameter(torch.zeros(50, dtype=torch.float64))
            opt = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
            for g in grads:
                p.grad = torch.as_tensor(scale * g)
                opt.step()
            st = opt.state[p]
            states.append((st["exp_avg"].numpy().copy(), st["exp_avg_sq"].numpy().copy()))
        (m1, v1), (mp, vp) = states
        worst = max(worst, float(np.max(np.abs(mp - phi * m1) / np.abs(phi * m1))),
                    float(np.max(np.abs(vp - phi**2 * v1) / (phi**2 * v1))))
    return Outcome(error=max(sym, worst), tolerance=tolerances.OPTIMIZER_FLOAT64,
                   detail=f"induction residuals {'all 0' if sym == 0 else 'NONZERO'}; torch state max rel err {worst:.1e}",
                   data={"torch_state_rel_err": worst})


@claim("prop2-adam-invariance", page=PAGE, kind="model",
       title="Prop 2: Adam/AdamW steps change by the exact factor (1 + eps/sqrt(v_hat))/(1 + eps/(phi sqrt(v_hat)))",
       statement="With beta = 0 and one phi for every gradient, the preconditioned Adam/AdamW step is multiplied "
                 "per coordinate by R = phi (sqrt(v_hat) + eps)/(|phi| sqrt(v_hat) + eps), -> 1 as "
                 "eps/(phi sqrt(v_hat)) -> 0; checked with torch.optim.Adam and AdamW (weight decay on) on a "
                 "real transformer policy, phi in {1e-3, 1e-1, 10, 1e3}.")
def _prop2(ctx: Context) -> Outcome:
    from ..experiments.reward_scale_checks import step_ratio_experiment

    d = step_ratio_derivation()
    tau = sp.Symbol("tau", positive=True)
    residuals = [d["R - paper (phi > 0)"], d["paper step (phi > 0)"], d["limit"] - 1,
                 sp.expand(d["first order"] - (1 + n.eps_adam / sp.sqrt(n.v_hat) * (1 - 1 / n.phi))),
                 d["eps = 0"] - n.phi / _ABS_PHI]
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
