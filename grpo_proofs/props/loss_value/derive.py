"""Proposition 4 in SymPy: the regime of a variant's weights and the loss value at s = 1, derived from the
surrogate and stated from Table 1 (the formulas of ``derivations/loss_value.md``)."""

from __future__ import annotations

import sympy as sp

from ... import notation as n
from ...checking.table1 import TABLE1
from ...objective import surrogate
from ...variants import Variant

__all__ = ["regime", "value_at_one", "stated_value"]


def regime(v: Variant) -> str:
    """Table 1 reading (the hand-typed row of :data:`grpo_proofs.checking.table1.TABLE1`): ``"log-prob"``
    (GPG, CISPO), ``"length-normalised"`` (Omega_i = |o_i| alpha_i free of |o_i|, A_i), ``"constant"``
    (alpha free of |o_i|, A_i) or ``"general"``."""
    row = TABLE1[v.name]
    if row.ratio in ("logprob", "sg-weight"):
        return "log-prob"
    probes = [(L, A) for L in (2, 5) for A in (0.5, -0.25, 0.0)]
    alpha = [row.alpha(G=4, L_i=L, L_sum=11, sigma=0.5, A_i=A) for L, A in probes]
    if len({round(L * a, 15) for (L, _), a in zip(probes, alpha)}) == 1:
        return "length-normalised"
    if len(set(alpha)) == 1:
        return "constant"
    return "general"


def value_at_one(v: Variant, lengths) -> tuple[sp.Expr, list[sp.Expr], dict]:
    """J of a concrete group at s = 1, derived from the surrogate: (J, A, old log-prob symbols by completion)."""
    grp = surrogate(v, lengths)
    r = [n.r_idx[j] for j in range(1, len(lengths) + 1)]
    A = [ri - sp.Add(*r) / len(r) for ri in r]
    point = dict(zip(grp.A, A))
    point.update(n.DEFAULT_MASKS)
    return sp.Add(*[grp.term_at_one(i).xreplace(point) for i in range(len(lengths))]).doit(), A, grp.old


def stated_value(v: Variant, lengths, A, old) -> sp.Expr:
    """The regime's formula (Sec. 4 of the loss-value page) with Table 1's alpha (the hand-typed row of
    :data:`~grpo_proofs.checking.table1.TABLE1`), for the same group."""
    G, Ls = len(lengths), sp.Add(*lengths)
    row = TABLE1[v.name]
    alpha = [sp.sympify(row.alpha(G=sp.Integer(G), L_i=sp.Integer(L), L_sum=Ls, sigma=n.sigma, A_i=A[i]))
             for i, L in enumerate(lengths)]
    kind = regime(v)
    if kind == "length-normalised":
        return sp.Integer(0)
    if kind == "constant":
        return alpha[0] * sp.Add(*[A[i] * L for i, L in enumerate(lengths)])       # C sum_i A_i |o_i|
    if kind == "log-prob":
        Om = [alpha[i] * sp.Add(*old[i]) for i in range(G)]                         # Lambda_i
    else:
        Om = [alpha[i] * L for i, L in enumerate(lengths)]                          # Omega_i
    mean = sp.Add(*Om) / G
    return G * sp.Add(*[A[i] * (Om[i] - mean) for i in range(G)]) / G               # G Cov_pop(A, Omega)
