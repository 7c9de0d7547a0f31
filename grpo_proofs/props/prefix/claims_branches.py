"""Proposition 1 (arXiv 2601.05002, Sec. 4, App. B.2): clip branches and sequence ratios on a shared prefix.

* ``prop1-restoring-gradient``: a shared token has one ratio s in every completion of S, but the clip
  branch depends on sign(A_i); W derived past each bound (at a symbolic distance d > 0) equals the
  restoring form s sum_{A_i of one sign} A_i alpha_i and has the restoring sign.
* ``prop1-sequence-ratio-noncancellation``: with sequence ratios (GSPO, GCPO, a GMPO-style geometric
  mean) the derived W equals G Cov_pop(A, omega) with omega depending on s_i, so uniform weights do
  not cancel; exact nonzero witnesses at equal lengths.

Derived and stated sides as in :mod:`grpo_proofs.props.prefix.claims`.
"""

from __future__ import annotations

import sympy as sp

from ... import notation as n
from ...terms import exact
from ...checking.tolerances import EXACT
from ...variants import REGISTRY, Ratio, Variant
from ...checking import Context, Outcome, claim
from ...checking.outcomes import of_identities
from .claims import EX_LENGTHS, EX_REWARDS, LENGTHS, PAGE, band_ratios, centered, fail, symbolic_rewards
from .derive import alpha_of, derived_W, is_zero

__all__ = ["uniform_weight", "gmpo_W"]


@claim(
    "prop1-restoring-gradient",
    title="A shared token past a clip bound gets a restoring gradient (Prop. 1)",
    page=PAGE,
    statement=(
        "A shared token has one ratio s in every completion, but the clip branch depends on sign(A_i): "
        "past 1+eps_up only A_i < 0 completions contribute, W = s sum_{A_i<0} A_i alpha_i < 0; below 1-eps_low "
        "only A_i > 0 ones, W > 0. Clipping does not zero the prefix gradient, it pushes s back to the band "
        "(even for Dr. GRPO and DAPO, whose W is 0 inside the band)."
    ),
    kind="symbolic",
)
def check_restoring(ctx: Context) -> Outcome:
    d = n.d_past
    bad, rows = [], 0
    groups = [(EX_REWARDS, EX_LENGTHS), ((2, 0, 1, 0, 3), (3, 1, 4, 1, 5))]
    for name, v in REGISTRY.items():
        if v.ratio is not Ratio.TOKEN or not v.clipped:
            continue
        for rewards, lengths in groups:
            A = centered(rewards)
            for S in (tuple(range(len(A))), (0, 1, 3)):
                up = 1 + exact(v.eps_up) + d                     # any ratio past the upper bound
                low = (1 - exact(v.eps_low)) / (1 + d)           # any ratio below the lower bound
                for s, side in ((up, -1), (low, 1)):
                    W = derived_W(v, lengths, S, A, [s] * len(A))
                    keep = [i for i in S if A[i] * side > 0]     # only A_i of the restoring sign remain
                    stated = s * sp.Add(*[A[i] * alpha_of(v, lengths, i, A[i]) for i in keep])
                    sign_ok = (W.is_negative if side < 0 else W.is_positive) if keep else W == 0
                    if not (is_zero(W - stated) and sign_ok):
                        bad.append(f"{name} r={rewards} S={S} {'above' if side < 0 else 'below'}")
                    rows += 1
    # CISPO clips a stop-gradient weight, not a branch: W(s) = min(s, 1+eps_up) W(1), no restoring sign
    v = REGISTRY["cispo"]
    A = centered(EX_REWARDS)
    s = 1 + exact(v.eps_up) + d
    past, at_one = (derived_W(v, EX_LENGTHS, (0, 1, 3), A, [x] * 4) for x in (s, 1))
    if not is_zero(past - (1 + exact(v.eps_up)) * at_one):
        bad.append("cispo weight clip")
    detail = f"{rows} exact cases (symbolic distance d > 0 past each bound)"
    return Outcome(float("inf") if bad or not rows else 0.0, EXACT, fail(bad) if bad else detail, {"compared": rows})


def uniform_weight(v: Variant) -> Variant:
    """The same ratio kind with a uniform weight alpha = 1/G (centered advantages) and no clipping."""
    return v.replace(name=f"{v.name}_uniform", alpha=1 / n.G, advantage="centered", eps_low=None, eps_up=None)


def gmpo_W(lengths, S, A, s) -> sp.Expr:
    """GMPO-style (geometric mean of token ratios, uniform sequence weight 1/G, inside the log-space clip):
    J = sum_i (1/G) A_i exp(mean_t x_{i,t}); W = sum_{i in S} dJ/dx_{i,0} by SymPy."""
    G = len(lengths)
    xs = [[sp.Symbol(f"x_{i + 1}_{t + 1}", real=True) for t in range(L)] for i, L in enumerate(lengths)]
    J = sp.Add(*[A[i] * sp.exp(sp.Add(*xs[i]) / L) / G for i, L in enumerate(lengths)])
    point = {x: sp.log(s[i]) for i in range(G) for x in xs[i]}
    return sp.Add(*[sp.diff(J, xs[i][0]).xreplace(point) for i in S])


@claim(
    "prop1-sequence-ratio-noncancellation",
    title="Sequence-level ratios break the cancellation even with uniform alpha (Prop. 1)",
    page=PAGE,
    statement=(
        "With sequence ratios s_i the coefficient of a token depends on its whole completion: with a uniform "
        "weight c, GSPO gives omega_i = c s_i, GCPO c |o_i| s_i and a GMPO-style geometric mean c s_i/|o_i|, "
        "so W = G Cov_pop(A, omega) is nonzero even at equal lengths unless every s_i is equal."
    ),
    kind="symbolic",
)
def check_sequence(ctx: Context) -> Outcome:
    bad = []
    c = sp.Rational(1, len(LENGTHS))
    _, A = symbolic_rewards(len(LENGTHS))
    s = [n.s_idx[i] for i in range(1, len(LENGTHS) + 1)]
    gspo, gcpo = uniform_weight(REGISTRY["gspo"]), uniform_weight(REGISTRY["gcpo"])
    kinds = {   # (derived W, stated omega_i)
        "gspo": (lambda L, S, A_, s_: derived_W(gspo, L, S, A_, s_), lambda L, s_: [c * x for x in s_]),
        "gcpo": (lambda L, S, A_, s_: derived_W(gcpo, L, S, A_, s_), lambda L, s_: [c * l * x for l, x in zip(L, s_)]),
        "gmpo-style": (gmpo_W, lambda L, s_: [c * x / l for l, x in zip(L, s_)]),
    }
    witness = {}
    eq = (2, 2, 2, 2)
    checked = 4 * len(kinds) + 2             # per kind: two covariance forms, the cancellation, a witness
    for name, (W_of, omega_of) in kinds.items():
        for L in (LENGTHS, eq):
            W = W_of(L, range(4), A, s)
            om = omega_of(L, s)
            mean_w = sp.Add(*om) / 4
            if not is_zero(W - sp.Add(*[A[i] * (om[i] - mean_w) for i in range(4)])):   # G Cov_pop(A, omega)
                bad.append(f"{name} L={L}")
        Aex = centered(EX_REWARDS)
        if not is_zero(W_of(eq, range(4), Aex, [1] * 4)):
            bad.append(f"{name}: equal lengths, s_i = 1 should cancel")
        witness[name] = W_of(eq, range(4), Aex, [sp.Rational(21, 20), 1, sp.Rational(19, 20), 1])
        if is_zero(witness[name]):
            bad.append(f"{name}: no witness")
    for name in ("gspo", "gcpo"):            # the registered methods themselves, clipped, inside the band
        v = REGISTRY[name]
        ins = band_ratios(v)["inside"]
        W = derived_W(v, eq, range(4), centered(EX_REWARDS), [ins, 1, 2 - ins, 1])
        if is_zero(W):
            bad.append(f"{name} registered: no witness")
        witness[f"{name} (registered)"] = W
    detail = f"{checked} identities and witnesses checked; " + "; ".join(f"{k}: W = {sp.nsimplify(w)}"
                                                                       for k, w in witness.items())
    return of_identities(bad, checked, detail, tolerance=EXACT, data={k: str(w) for k, w in witness.items()})
