"""Propositions 5, 6 and 2 in SymPy: centering is linear, Adam's moments scale by phi and phi^2, and the
preconditioned step is multiplied by R(phi, eps, v_hat) (the derivations of ``derivations/reward_scale.md``).

Every identity is a zero difference after targeted simplification (``cancel``, ``expand``).
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.core.relational import Relational

from ... import notation as n
from ...runtime.adam import first_moment, second_moment
from ...variants import Variant, get_variant

__all__ = ["centering_residuals", "advantage_scaling", "moment_induction", "step_ratio_derivation", "adam_step",
           "symbolic_error", "aggregation_factor", "ABS_PHI"]


ABS_PHI = sp.Abs(n.phi)


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
    scaled_sub = {n.A_i: n.phi * n.A_i, n.sigma: ABS_PHI * n.sigma_r + n.c_sigma}
    fixed = alpha.xreplace(held)
    un = n.A_i * fixed.subs(unscaled_sub)
    sc = n.phi * n.A_i * fixed.subs(scaled_sub, simultaneous=True)
    if v.std_normalised:
        k = n.phi * (n.sigma_r + n.c_sigma) / (ABS_PHI * n.sigma_r + n.c_sigma)
    else:
        k = n.phi
    residual = sp.cancel(sp.piecewise_fold(sc - k * un))
    shifts = []
    for rel in rels:
        gap = rel.lhs - rel.rhs
        moved = _split_abs(gap.subs(scaled_sub, simultaneous=True)) - ABS_PHI * gap.subs(unscaled_sub)
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

    def m(prev, grad):  # the recurrences the numeric Adam runs (grpo_proofs.runtime.adam), on symbols
        return first_moment(prev, grad, b1)

    def v(prev, grad):
        return second_moment(prev, grad, b2)

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
    (thr,) = sp.solve(sp.Eq(R.subs(ABS_PHI, phi).subs(vh, s**2) - 1, tau), s)
    return {
        "R": R,
        "R - paper (phi > 0)": sp.cancel(R.subs(ABS_PHI, phi) - paper),
        "paper step (phi > 0)": sp.cancel((scaled_theta - n.theta - paper_step).subs(ABS_PHI, phi)),
        "limit": sp.limit(paper.subs(eps, x * phi * sp.sqrt(vh)), x, 0),
        "first order": sp.series(paper, eps, 0, 2).removeO(),
        "threshold": thr,
        "eps = 0": sp.cancel(R.subs(eps, 0)),
    }


def symbolic_error(residuals) -> float:
    """0.0 if every residual is exactly 0, else inf (a symbolic identity either holds or not)."""
    return 0.0 if all(sp.sympify(r) == 0 for r in residuals) else math.inf


def aggregation_factor(mode: str, base: str = "token-mean", trainer: str = "verl") -> sp.Expr:
    """The factor by which switching ``trainer``'s loss aggregation from ``base`` to ``mode`` multiplies
    every token's weight, derived from the per-token weights the trainer's config gives
    (:data:`grpo_proofs.trainers.config_terms.READERS`).

    A constant factor (no completion's length in it) is a loss scale, so Prop. 2 applies to it;
    otherwise the switch reweights the completions and :class:`ValueError` says so.

    >>> aggregation_factor("seq-mean-token-sum")
    N/B
    """
    from ...trainers import effective_config
    from ...trainers.config_terms import READERS

    key = {"verl": "loss_agg_mode"}.get(trainer)
    if key is None:
        raise ValueError(f"aggregation modes are modelled for verl only, not {trainer!r}")
    weight = {m: READERS[trainer](effective_config(trainer, {key: m}))["weight"] for m in (mode, base)}
    k = sp.cancel(weight[mode] / weight[base])
    if n.L_i in k.free_symbols:
        raise ValueError(f"{mode} against {base} weights completions by length ({k}), not by one factor")
    return k
