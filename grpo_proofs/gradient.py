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

from functools import lru_cache
import sympy as sp
from sympy.core.parameters import evaluate

from . import notation as n


from .objective import S_sum, SymbolicGroup, token_term
from .terms import lold
from .variants import Ratio, Variant, get_variant

__all__ = ["group_gradient", "generic_gradient"]


def group_gradient(group: SymbolicGroup) -> tuple[tuple[sp.Expr, ...], ...]:
    """dJ/dx_{i,t} for every token of a concrete group, by SymPy differentiation.

    J = sum_j J_j and J_j contains only completion j's variables, so dJ/dx_{i,t} = dJ_i/dx_{i,t}.
    Token kinds: J_i = sum_t f_i(x_{i,t}), so SymPy differentiates f_i once and the result is
    instantiated at each token. Sequence kinds: J_i = F_i(S_i) with S_i = sum_t x_{i,t}; SymPy
    differentiates F_i with respect to S_i and S_i with respect to x_{i,t} (the chain rule).
    Stop-gradient placeholders are substituted only after differentiating.

    >>> from grpo_proofs.objective import surrogate
    >>> group_gradient(surrogate("gpg", [1, 1]))
    ((A_1/2,), (A_2/2,))
    """
    v = group.variant
    out = []
    for i, xi in enumerate(group.x):
        if v.sequence_level:
            S_i = sp.Add(*xi)
            dF = sp.diff(group.template[i], S_sum).subs(S_sum, S_i)
            out.append(tuple(dF * sp.diff(S_i, x) for x in xi))
        else:
            df = sp.diff(group.template[i], n.x).subs(group.stop(i))
            with evaluate(False):
                out.append(tuple(df.xreplace(group.token_symbols(i, t)) for t in range(len(xi))))
    return tuple(out)


@lru_cache(maxsize=128)
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
