"""The gradient of the unified surrogate (arXiv 2601.05002, App. B.1, Eq. 13-15 and 28).

Every gradient here is obtained by SymPy differentiation of the surrogate of
:mod:`grpo_proofs.objective`, never typed by hand:

* :func:`group_gradient` -- dJ/dx_{i,t} for every token of a concrete group (exact, symbolic);
* :func:`generic_gradient` -- the derivative of one generic token's (or sequence's) term,
  compiled once per variant to a batched Torch function by :mod:`grpo_proofs.compile` and
  evaluated by :func:`grpo_proofs.evaluate.token_gradient` (the public API).

Since log pi_old is a constant, d/d log pi_theta(y_{i,t}) = d/dx_{i,t}. On the unclipped branch
the result is alpha_{i,t} A_i s_{i,t} (Eq. 15), on the clipped branch 0 (Eq. 28).
"""

from __future__ import annotations

import sympy as sp

from . import notation as n


from .objective import SymbolicGroup, instantiator, token_term
from .terms import lold
from .variants import Ratio, Variant, get_variant

__all__ = ["group_gradient", "generic_gradient"]


def group_gradient(group: SymbolicGroup) -> tuple[tuple[sp.Expr, ...], ...]:
    """dJ/dx_{i,t} for every token of a concrete group, by SymPy differentiation.

    J = sum_j J_j and J_j contains only completion j's variables, so dJ/dx_{i,t} = dJ_i/dx_{i,t}.
    Token kinds: J_i = sum_t f_i(x_{i,t}) with f_i = alpha_i phi(exp(x), A_i) (or the log-prob
    forms), so SymPy differentiates the generic f = alpha phi(exp(x), A_i) once per variant
    (:func:`generic_gradient`, cached) and the result is instantiated at each completion's
    alpha_i, A_i and each token's x_{i,t}. Sequence kinds: J_i = F_i(S_i) with S_i = sum_t x_{i,t};
    SymPy differentiates F_i with respect to S_i and S_i with respect to x_{i,t} (the chain rule).
    Stop-gradient placeholders are substituted only after differentiating.

    >>> from grpo_proofs.objective import surrogate
    >>> group_gradient(surrogate("gpg", [1, 1]))
    ((A_1/2,), (A_2/2,))
    """
    v = group.variant
    out = []
    expr, _ = generic_gradient(v)
    if v.sequence_level:  # dJ_i/dS_i, the same for every token of completion i (dS_i/dx_{i,t} = 1)
        at = instantiator(expr, (n.Omega, n.A_i, n.u, n.L_i))
        for i, xi in enumerate(group.x):
            L = len(xi)
            S_i = sp.Add(*xi)
            u = S_i / L if v.ratio is Ratio.SEQ_GEOMEAN else S_i
            dF = at({n.Omega: L * group.alpha[i], n.A_i: group.A[i], n.u: u, n.L_i: sp.Integer(L)})
            out.append((dF,) * L)
        return tuple(out)
    at = instantiator(expr, (n.a, n.A_i, n.x, n.u, lold))
    uses_u = n.u in expr.free_symbols  # a sequence stop-gradient weight (TOPR, VESPO), in u = S_i
    for i, xi in enumerate(group.x):
        values = {n.a: group.alpha[i], n.A_i: group.A[i]}
        if uses_u:
            values[n.u] = sp.Add(*xi)
        per_completion = instantiator(at(values), (n.x, lold))
        old = group.old[i] if group.old else (lold,) * len(xi)
        out.append(tuple(per_completion({n.x: x, lold: o}) for x, o in zip(xi, old)))
    return tuple(out)


def generic_gradient(variant: "str | Variant") -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    """(dterm/dx, its arguments): the per-token gradient of a variant, derived by SymPy.

    Token kinds: a function of ``(alpha, A_i, x)``, or ``(alpha, A_i, x, lold)`` when the term
    uses log pi_old itself (DPPO's TV mask); sequence geometric mean: of ``(Omega, A_i, u, L_i)``
    with u the mean log-ratio of the completion; sequence product: of ``(Omega, A_i, u)`` with u
    the summed log-ratio; a sequence stop-gradient weight (TOPR, VESPO): of ``(alpha, A_i, u)``
    with u the summed log-ratio.

    >>> generic_gradient("gpg")
    (A_i*alpha, (alpha, A_i, x))
    """
    v = get_variant(variant)
    # the term depends on nothing else: one derivation per ratio, clip and term
    key = (v.ratio, v.eps_low, v.eps_up, v.surrogate, tuple(sorted(v.phi_params.items())))
    if key not in _BY_SHAPE:
        _BY_SHAPE[key] = _derive(v)
    return _BY_SHAPE[key]


_BY_SHAPE: dict = {}


def _derive(v: Variant) -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    term, extra = token_term(v)
    d = sp.diff(term, n.x)
    if v.ratio is Ratio.SEQ_GEOMEAN:  # s_i written through u, the mean log-ratio of the completion
        return d.subs(extra["rest"], n.L_i * n.u - n.x), (n.Omega, n.A_i, n.u, n.L_i)
    if v.ratio is Ratio.SEQ_PRODUCT:  # u is the summed log-ratio of the completion
        return d.subs(extra["rest"], n.u - n.x), (n.Omega, n.A_i, n.u)
    d = d.subs(extra)
    if v.ratio is Ratio.SEQ_SG_WEIGHT:
        return d, (n.a, n.A_i, n.u)
    if v.needs_old_logp:
        return d, (n.a, n.A_i, n.x, lold)
    return d, (n.a, n.A_i, n.x)
