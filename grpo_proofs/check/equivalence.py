"""Which registered method a variant is, up to a constant factor (``grpo-proofs check``, section 6).

Two variants of the unified surrogate (arXiv 2601.05002, Eq. 1) with the same ratio kind and clip
bounds optimise the same objective up to a constant factor when their weights alpha_(i,t) differ by a
factor that is constant within a group. Here the ratio of the two weights is simplified by SymPy
(``cancel``) with the masks M, lam, delta at their default 1 and A_i taken nonzero (a completion with
A_i = 0 contributes nothing, whatever its weight); it counts as constant when its only symbols are
G and L_max (fixed for a group and a run). A factor involving sigma, L_i, L_sum or A_i is not constant.
"""

from __future__ import annotations

import sympy as sp

from .. import notation as n
from ..variants import VARIANTS, Variant, get_variant

__all__ = ["equivalents", "weight_at_defaults", "CONST_FACTOR"]

#: symbols a factor may contain and still be constant within a group
CONST_FACTOR = {n.G, n.L_max}


def weight_at_defaults(v: Variant) -> sp.Expr:
    """alpha with parameters and masks (M = lam = delta = chi = 1) substituted, A_i taken nonzero."""
    return v.alpha_with_params().subs(n.DEFAULT_MASKS).subs(n.A_i, n.A_nonzero)


def equivalents(variant, alpha: sp.Expr | None = None) -> dict:
    """Registered methods whose weight is the variant's up to a factor constant within a group.

    ``alpha`` replaces the variant's weight for the comparison (a trainer weight without its 1e-8
    guards). ``matches``: same ratio kind and clip bounds (the same surrogate up to a constant factor);
    ``same_weight``: weight equivalent but another ratio kind or clip, a negative factor, or a factor
    containing sigma (the same weight with another advantage normalisation).

    >>> equivalents(get_variant("dr_grpo").replace(name="mine", alpha=1 / (n.G * n.L_max)))["matches"][0]["factor"]
    '1/L_max'
    """
    v = get_variant(variant)
    mine = weight_at_defaults(v if alpha is None else v.replace(alpha=alpha))
    matches, same_weight = [], []
    for name, ref in VARIANTS.items():
        q = sp.cancel(sp.powsimp(mine / weight_at_defaults(ref)))
        if q.has(sp.Piecewise) or not q.free_symbols <= CONST_FACTOR | {n.sigma} or q == 0 or q.is_positive is None:
            continue
        std = n.sigma in q.free_symbols
        kind = ("identical" if q == 1 else "a constant" if not q.free_symbols else
                "constant within a group (G, L_max only)" if not std else "a power of sigma: another advantage normalisation")
        row = {"name": name, "factor": str(q), "factor_kind": kind,
               "differs": ([] if q.is_positive else ["sign (a negative factor reverses the objective)"])
               + (["advantage normalisation (the factor contains sigma)"] if std else []) + [f for f, a, b in (("regularizer", v.regularizer, ref.regularizer), ("beta", v.beta, ref.beta),
                                             ("sigma_eps", v.sigma_eps, ref.sigma_eps)) if a != b]}
        same_term = ref.surrogate is v.surrogate and dict(ref.phi_params) == dict(v.phi_params)
        if q.is_positive and not std and ref.ratio is v.ratio and (ref.eps_low, ref.eps_up) == (v.eps_low, v.eps_up) \
                and same_term:
            matches.append(row)
        else:
            row["differs"] = [f for f, ok in (("ratio", ref.ratio is v.ratio), ("term", same_term),
                                             ("clip", (ref.eps_low, ref.eps_up) == (v.eps_low, v.eps_up))) if not ok] + row["differs"]
            same_weight.append(row)
    return {"matches": matches, "same_weight": same_weight,
            "note": "a positive factor constant within a group rescales the advantage gradient: Adam undoes it up to "
                    "eps (Prop. 2), SGD sees a learning-rate change"}
