"""The derived per-token gradient written branch by branch, with its conditions, for people to read.

SymPy's derivative of the clipped surrogate (:func:`grpo_proofs.gradient.generic_gradient`) is one
expression full of ``Heaviside``, ``Min`` and ``Max`` of exp(x). Its branches are read off it, not
typed: for each sign of the advantage and each range of the ratio s (below 1 - eps_low, inside the
band, above 1 + eps_up), every ``Heaviside`` is replaced by its value and every ``Min``/``Max`` by its
active argument at a point inside that range; equal branches are merged and their conditions
joined. At s exactly on a bound the (sub)gradient is a convention and is not listed.

:func:`plain` prints any expression of the project's symbols without SymPy's function names: an
indicator ``Piecewise((1, c), (0, True))`` as ``ind(c)``, ``Heaviside(z)`` as ``step(z)``.

>>> [(b["expr"], b["where"]) for b in gradient_branches("grpo")]
[('A_i*alpha*s', 'A_i > 0 and s < 1.2, or A_i < 0 and s > 0.8'), ('0', 'A_i > 0 and s > 1.2, or A_i < 0 and s < 0.8')]
>>> [(b["expr"], b["where"]) for b in gradient_branches("cispo")]
[('A_i*alpha*s', 's < 5, either sign of A_i'), ('5*A_i*alpha', 's > 5, either sign of A_i')]
>>> plain(sp.Piecewise((1, n.A_i > 0), (0, True)) / n.G)
'ind(A_i > 0)/G'
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from ... import notation as n
from ...gradient import generic_gradient
from ...variants import Ratio, Surrogate, get_variant

#: pi_old of the token in the branches of a term that reads pi_old itself (DPPO): the API's default
BRANCH_OLD_PROB = sp.Rational(1, 2)

__all__ = ["gradient_branches", "plain", "ratio_legend"]


class _Plain(StrPrinter):
    def _print_Piecewise(self, expr):
        pairs = expr.args
        if len(pairs) == 2 and pairs[0].expr == 1 and pairs[1].expr == 0 and pairs[1].cond == sp.true:
            return f"ind({self._print(pairs[0].cond)})"
        return "(" + "; ".join(f"{self._print(e)} if {self._print(c)}" if c != sp.true else f"{self._print(e)} otherwise"
                               for e, c in pairs) + ")"

    def _print_Heaviside(self, expr):
        return f"step({self._print(expr.args[0])})"

    def _print_Symbol(self, expr):
        return {"alphahat": "alpha_hat", "lambda": "lam", "epsilon_low": "eps_low", "epsilon_up": "eps_up"}.get(
            expr.name, expr.name)

    def _print(self, expr, **kwargs):
        if isinstance(expr, sp.Indexed):  # Indexed prints itself as A[i]; the project writes A_i
            return f"{expr.base.label}_{self._print(expr.indices[0])}"
        return super()._print(expr, **kwargs)

    def _print_Sum(self, expr):
        (i, a, b), = expr.limits
        return f"sum_({self._print(i)}={self._print(a)}..{self._print(b)}) {self.parenthesize(expr.function, 100)}"

    def _print_And(self, expr):
        return " and ".join(self._print(a) for a in expr.args)

    def _print_Or(self, expr):
        return " or ".join(f"({self._print(a)})" for a in expr.args)


def plain(expr) -> str:
    """``expr`` printed with the project's names, indicators as ``ind(...)`` and steps as ``step(...)``."""
    return _Plain().doprint(expr)


def _freeze(e: sp.Basic, point: dict) -> sp.Basic:
    """``e`` with every Heaviside / Min / Max replaced by its value / active argument at ``point``."""
    if not e.args:
        return e
    args = [_freeze(a, point) for a in e.args]
    if isinstance(e, sp.Heaviside):  # exact, with SymPy's Heaviside(0) = 1/2 (the band's own ties)
        val = args[0].xreplace(point)
        return sp.Integer(1) if val > 0 else sp.Integer(0) if val < 0 else sp.Rational(1, 2)
    if isinstance(e, (sp.Min, sp.Max)):
        vals = [a.xreplace(point) for a in args]
        pick = min if isinstance(e, sp.Min) else max
        return args[vals.index(pick(vals))]
    return e.func(*args)


def _ranges(v) -> list[tuple[float | None, float | None, float]]:
    """(lower, upper, a point inside) of the ratio ranges the clip separates, from low to high."""
    lo = None if v.eps_low is None else 1 - v.eps_low
    hi = None if v.eps_up is None else 1 + v.eps_up
    if v.surrogate is Surrogate.TV_MASK:  # p - p_old = p_old (s - 1) against +-delta_tv, p_old = 1/2
        d = v.phi_params["delta_tv"] / float(BRANCH_OLD_PROB)
        return [(None, 1 - d, (1 - d) / 2), (1 - d, 1 + d, 1.0), (1 + d, None, (1 + d) * 1.5)]
    if v.surrogate is Surrogate.TAPER:  # min(s_i, 1) of a negative completion
        return [(None, 1.0, 0.5), (1.0, None, 1.5)]
    if v.ratio is Ratio.LOGPROB or not v.clipped:
        return [(None, None, 1.0)]
    out = []
    if lo is not None:
        out.append((None, lo, lo / 2))
    out.append((lo, hi, ((lo or 0.0) + (hi if hi is not None else 2 * (lo or 1.0))) / 2))
    if hi is not None:
        out.append((hi, None, hi * 1.5))
    return out


def _interval(lower, upper) -> str:
    if lower is None and upper is None:
        return "any s"
    if lower is None:
        return f"s < {upper:g}"
    if upper is None:
        return f"s > {lower:g}"
    return f"{lower:g} < s < {upper:g}"


def _condition(ranges, picked: list[int]) -> str:
    """The union of the picked ranges (indices into ``ranges``), adjacent ones merged."""
    runs, cur = [], [picked[0]]
    for i in picked[1:]:
        if i == cur[-1] + 1:
            cur.append(i)
        else:
            runs.append(cur)
            cur = [i]
    runs.append(cur)
    return " or ".join(_interval(ranges[r[0]][0], ranges[r[-1]][1]) for r in runs)


def gradient_branches(variant) -> list[dict]:
    """The branches of dJ/dlog pi_(i,t): [{"expr", "latex", "where"}], read off the derived expression.

    ``expr`` is in s (the token ratio, or the completion's sequence ratio s_i for sequence-level
    variants), A_i and the weight (alpha, or Omega = sum_t alpha_(i,t) with L_i for sequence ratios).
    """
    v = get_variant(variant)
    d, args = generic_gradient(v)
    var = n.x if v.ratio not in (Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT, Ratio.SEQ_SG_WEIGHT) else n.u
    if v.needs_old_logp:
        from ...terms import lold

        d = d.subs(lold, sp.log(BRANCH_OLD_PROB))
    d = sp.expand_power_exp(d).subs(sp.exp(var), n.s).subs(var, sp.log(n.s))
    ranges = _ranges(v)
    found: dict[sp.Basic, dict[str, list[int]]] = {}
    for sign, name in ((1, "A_i > 0"), (-1, "A_i < 0")):
        for idx, (_, _, s0) in enumerate(ranges):
            point = {n.A_i: sign, n.s: sp.Rational(repr(s0)), n.a: 1, n.Omega: 1, n.L_i: 1}
            br = sp.factor_terms(sp.expand(_freeze(d, point)))
            found.setdefault(br, {}).setdefault(name, []).append(idx)
    out = []
    for expr, sides in found.items():
        full = {name for name, picked in sides.items() if len(picked) == len(ranges)}
        if full == {"A_i > 0", "A_i < 0"}:
            where = "every A_i and s"
        elif len(sides) == 2 and len(set(map(tuple, sides.values()))) == 1:
            where = f"{_condition(ranges, next(iter(sides.values())))}, either sign of A_i"
        else:
            where = ", or ".join(name if name in full else f"{name} and {_condition(ranges, picked)}"
                                 for name, picked in sides.items())
        out.append({"expr": plain(expr), "latex": sp.latex(expr), "where": where})
    return out


def ratio_legend(variant) -> str:
    """What s and the weight symbol of :func:`gradient_branches` stand for."""
    v = get_variant(variant)
    if v.ratio is Ratio.SEQ_GEOMEAN:
        return ("s = s_i = (pi_theta(y_i)/pi_old(y_i))^(1/|o_i|), the completion's sequence ratio; "
                "Omega = sum_t alpha_(i,t); L_i = |o_i|")
    if v.ratio is Ratio.SEQ_PRODUCT:
        return "s = s_i = pi_theta(y_i)/pi_old(y_i), the completion's sequence ratio; Omega = sum_t alpha_(i,t)"
    if v.ratio is Ratio.SG_WEIGHT:
        return "s = pi_theta/pi_old of the token, inside a stop-gradient weight; alpha = alpha_(i,t)"
    if v.ratio is Ratio.SEQ_SG_WEIGHT:
        return ("s = s_i = pi_theta(y_i)/pi_old(y_i), the completion's sequence ratio, inside a stop-gradient "
                "weight; alpha = alpha_(i,t)")
    if v.needs_old_logp:
        return ("s = pi_theta/pi_old of the token, shown with pi_old = 1/2 (so p - p_old = (s - 1)/2 meets "
                "+-delta_tv at s = 1 +- 2 delta_tv); alpha = alpha_(i,t)")
    if v.ratio is Ratio.LOGPROB:
        return "no ratio: the surrogate is alpha_(i,t) A_i log pi_theta; alpha = alpha_(i,t)"
    return "s = pi_theta/pi_old of the token; alpha = alpha_(i,t)"
