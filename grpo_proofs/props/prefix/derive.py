"""SymPy building blocks of the Proposition 1 and 4 claims (arXiv 2601.05002, Sec. 4, App. A, B.2).

Two independent sides meet in every claim:

* the *derived* side: dJ/dx_{i,t} (or J itself) of a concrete group, obtained by SymPy from the
  unified surrogate (:func:`grpo_proofs.gradient.group_gradient`, :func:`grpo_proofs.objective.surrogate`)
  or of one generic token (:func:`grpo_proofs.gradient.generic_gradient`, symbolic lengths);
* the *stated* side: the paper's formula written from Table 1 (:func:`table1_omega`:
  omega_{i,t} = alpha_{i,t} s_{i,t} on the unclipped branch, 0 on the clipped one), with alpha, the
  ratio kind and the clip bounds read from the hand-typed :data:`grpo_proofs.checking.table1.TABLE1`,
  never from the variant the derived side uses.

Sums over a group of symbolic size use ``Sum(f(j), (j, 1, G))``; :func:`expand_sums` brings such
linear expressions to a normal form (constants pulled out of sums), so identities are proved as a
zero difference.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import sympy as sp

from ... import notation as n
from ...checking.table1 import TABLE1, Row
from ...gradient import generic_gradient, group_gradient
from ...objective import surrogate
from ...terms import exact, lold, phi_parts
from ...variants import Ratio, Surrogate, Variant, get_variant

__all__ = ["effective_coefficient", "value_factor", "expand_sums", "is_zero", "alpha_of", "table1_omega", "clipped", "derived_W", "generic_coefficient",
           "group_point"]

#: masks at their defaults (the derivation pages: M, lambda, delta are 1 unless given)


def _split(s: sp.Sum) -> sp.Expr:
    var = s.limits[0][0]
    out = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(s.function)):
        const, dep = sp.factor_terms(term).as_independent(var, as_Add=False)
        out += const * sp.Sum(dep, *s.limits).doit()
    return out


def expand_sums(expr: sp.Expr) -> sp.Expr:
    """Expand every ``Sum`` over its summands and pull out the factors free of its index.

    >>> j, G, r = n.j_idx, n.G, n.r_idx
    >>> expand_sums(sp.Sum(r[j] - sp.Sum(r[j], (j, 1, G)) / G, (j, 1, G)))
    0
    """
    e = sp.expand(expr)
    for _ in range(8):
        new = sp.expand(e.replace(lambda x: isinstance(x, sp.Sum), _split))
        if new == e:
            break
        e = new
    return e


def is_zero(expr: sp.Expr) -> bool:
    """True iff ``expr`` simplifies to exactly 0 (cancel first, simplify only if needed)."""
    e = expand_sums(expr)
    if e.has(sp.Piecewise):
        e = sp.piecewise_fold(e)
    e = sp.cancel(e) if not e.has(sp.Piecewise) else e
    return e == 0 or sp.simplify(e) == 0


def _row(v: "Variant | Row") -> Row:
    """The hand-typed Table 1 row of a method (a :class:`Row` is taken as given)."""
    return v if isinstance(v, Row) else TABLE1[v.name]


def alpha_of(v: "Variant | Row", lengths: Sequence, i: int, A_i: sp.Expr) -> sp.Expr:
    """alpha_{i,t} of Table 1 (the hand-typed row of ``v``'s method) for completion i of a group with the
    given lengths (masks at 1; sigma the symbol ``sigma``; exact rationals)."""
    L = [sp.Integer(x) for x in lengths]
    return sp.sympify(_row(v).alpha(G=sp.Integer(len(L)), L_i=L[i], L_sum=sp.Add(*L), sigma=n.sigma, A_i=A_i))


def clipped(v: Variant, s, A) -> bool:
    """The clipped region: R_clip = {s > 1+eps_up and A > 0} or {s < 1-eps_low and A < 0} (numbers only)."""
    if v.ratio in (Ratio.LOGPROB, Ratio.SG_WEIGHT):
        return False                      # no clip region: GPG has no ratio, CISPO clips a weight
    return _past_bound(v.eps_low, v.eps_up, s, A)


def _past_bound(eps_low, eps_up, s, A) -> bool:
    """{s > 1+eps_up and A > 0} or {s < 1-eps_low and A < 0}, for the given bounds (None: no bound)."""
    above = eps_up is not None and s > 1 + exact(eps_up)
    below = eps_low is not None and s < 1 - exact(eps_low)
    if not (above or below):
        return False
    if not A.is_number:
        raise ValueError("the clip branch of a ratio outside the band needs a numeric advantage")
    return bool((above and A > 0) or (below and A < 0))


def table1_omega(v: "Variant | Row", lengths: Sequence, A: Sequence[sp.Expr], s: Sequence[sp.Expr]) -> list[sp.Expr]:
    """omega_{i,t} as the paper states it (typed from Table 1, not derived), one per completion.

    ``v``: a Table 1 method (its hand-typed row of :data:`~grpo_proofs.checking.table1.TABLE1` is used,
    never the variant's own fields) or a :class:`~grpo_proofs.checking.table1.Row`.
    ``s[i]`` is the token ratio of the prefix token (token kinds) or the sequence ratio s_i.
    Token and GSPO ratios: alpha_i s_i; GCPO's full product: |o_i| alpha_i s_i (d s_i/d x_{i,t} = s_i and
    all |o_i| terms of completion i carry s_i); GPG: alpha_i; CISPO: alpha_i min(s, 1+eps_up);
    0 on the clipped branch. Ratios outside the clip band need numeric advantages.
    """
    row, out = _row(v), []
    for i, (A_i, s_i) in enumerate(zip(A, s)):
        a = alpha_of(row, lengths, i, A_i)
        if row.ratio == "logprob":
            out.append(a)
        elif row.ratio == "sg-weight":
            out.append(a * (sp.Min(s_i, 1 + exact(row.eps_up)) if row.eps_up is not None else s_i))
        elif _row_clipped(row, s_i, A_i):
            out.append(sp.Integer(0))
        elif row.ratio == "sequence-product":
            out.append(lengths[i] * a * s_i)
        else:
            out.append(a * s_i)
    return out


def _row_clipped(row: Row, s, A) -> bool:
    """The clipped region of a Table 1 row, with the row's own (hand-typed) bounds."""
    return _past_bound(row.eps_low, row.eps_up, s, A)


@lru_cache(maxsize=256)
def _group(v: Variant, lengths: tuple[int, ...]):
    """The surrogate of a concrete group and its SymPy gradient (cached: both are pure functions)."""
    grp = surrogate(v, lengths)
    return grp, group_gradient(grp)


def group_point(v: Variant, lengths: Sequence[int], S: Sequence[int], s: Sequence[sp.Expr], t: int = 0) -> dict:
    """Values of every log-ratio symbol x_{i,t} that realise the ratios ``s`` (one per completion).

    Token kinds: x_{i,t} = log s_i at position t, 0 elsewhere (a shared token has one ratio, so
    callers pass the same s_i for every i in S). Sequence kinds: the shared token has x = 0 in every
    i in S and the other tokens carry the rest, so that the sequence ratio is s_i (needs |o_i| >= 2).
    """
    grp, _ = _group(v, tuple(lengths))
    point = {}
    for i, xi in enumerate(grp.x):
        L = len(xi)
        if not v.sequence_level:
            point.update({x: (sp.log(s[i]) if k == t else 0) for k, x in enumerate(xi)})
            continue
        total = L * sp.log(s[i]) if v.ratio is Ratio.SEQ_GEOMEAN else sp.log(s[i])
        if i in S and L >= 2:
            point.update({x: (0 if k == t else total / (L - 1)) for k, x in enumerate(xi)})
        else:
            point.update({x: total / L for x in xi})
    return point


def derived_W(v: Variant, lengths: Sequence[int], S: Sequence[int], A: Sequence[sp.Expr],
              s: Sequence[sp.Expr], t: int = 0) -> sp.Expr:
    """sum_{i in S} dJ/dx_{i,t}: the prefix coefficient derived by SymPy from the surrogate of the group.

    ``A`` are the centered advantages (numbers or expressions of symbolic rewards); sigma stays the
    symbol ``sigma``; masks are 1.
    """
    grp, grad = _group(v, tuple(lengths))
    point = group_point(v, lengths, S, s, t)
    point.update(dict(zip(grp.A, A)))
    point.update(n.DEFAULT_MASKS)
    for i, old in enumerate(grp.old):                   # log pi_old of GPG/CISPO: any constant
        point.update({sym: sp.Rational(-3, 2) for sym in old})
    return sp.Add(*(grad[i][t].xreplace(point) for i in S)).doit()


def generic_coefficient(v: Variant, A_i: sp.Expr, L_i: sp.Expr, G=None, L_sum=None) -> sp.Expr:
    """dJ/dx of one token at s = 1 for a completion of symbolic length ``L_i`` (derived, generic form).

    Token kinds: the derivative of alpha phi(e^x, A) at x = 0; sequence kinds: of Omega phi(s_i, A)
    at u = 0 with Omega_i = |o_i| alpha_i (alpha constant in t).
    """
    expr, args = generic_gradient(v)
    a = v.alpha_with_params().subs(n.DEFAULT_MASKS).subs({n.A_i: A_i, n.L_i: L_i})
    a = a.subs({k: val for k, val in ((n.G, G), (n.L_sum, L_sum)) if val is not None})
    if v.sequence_level:
        vals = {n.Omega: L_i * a, n.A_i: A_i, n.u: 0, n.L_i: L_i}
    else:
        vals = {n.a: a, n.A_i: A_i, n.x: 0}
    return sp.simplify(expr.xreplace(vals)) if expr.has(sp.Heaviside) else expr.xreplace(vals)


def effective_coefficient(variant) -> sp.Expr:
    """omega_{i,t}(s): the unclipped-branch gradient dJ/dlog pi divided by A_i, as a function of the ratio s.

    Derived from :func:`grpo_proofs.gradient.generic_gradient` of the variant without its clip
    (token and sequence ratios) or as is (GPG, CISPO, which never zero the gradient); the
    log-ratio is written log s and the summed weight Omega_i = L_i alpha (masks 1).

    >>> effective_coefficient("grpo"), effective_coefficient("gcpo"), effective_coefficient("cispo")
    (s/(G*L_i*sigma), L_i*s/(G*sigma), Min(5, s)/(L_sum*sigma))
    """
    v = get_variant(variant)
    plain_clip = v.ratio in (Ratio.TOKEN, Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT) and v.surrogate is Surrogate.CLIP
    u = v.replace(eps_low=None, eps_up=None) if plain_clip else v  # later terms: their gradient as derived
    d, args = generic_gradient(u)
    alpha = v.alpha_with_params().subs(n.DEFAULT_MASKS)
    sub = {n.a: alpha, n.Omega: n.L_i * alpha, n.x: sp.log(n.s), n.u: sp.log(n.s)}
    return sp.cancel(sp.powsimp(d.subs(sub) / n.A_i))


def value_factor(variant) -> sp.Expr:
    """phi(s = 1)/A_i of a token-level term (1 for Eq. 1's clip; SAPO: 2/tau(A_i)), derived from
    :func:`grpo_proofs.terms.phi_parts` with A_i nonzero; 1 for sequence ratios.

    >>> value_factor("sapo")  # 2/tau: 2 for A > 0 (tau = 1), 40/21 for A < 0 (tau = 1.05)
    -40/(Heaviside(A_i) - 21)
    """
    v = get_variant(variant)
    if v.ratio not in (Ratio.TOKEN,) or v.surrogate is Surrogate.CLIP:
        return sp.Integer(1)
    term, stop = phi_parts(v, n.x, n.A_nonzero, lold)
    one = term.subs(stop).subs(n.x, 0).subs(sp.Heaviside(-n.A_nonzero), 1 - sp.Heaviside(n.A_nonzero))
    return sp.cancel(sp.expand(one) / n.A_nonzero)  # H(A) + H(-A) = 1 for A != 0
