"""Related results, derived by SymPy (no numbers here: :mod:`.api` computes them, :mod:`.claims` compares).

* Dr. GRPO's two biases (Liu et al. 2025, arXiv 2503.20783). With binary rewards, k of G correct and
  p = k/G, the population std is sigma = sqrt(p(1-p)) and the per-token gradient coefficient at s = 1 is
  alpha_i A_i: GRPO sqrt((1-p)/p)/(G|o_i|) on a correct answer and -sqrt(p/(1-p))/(G|o_i|) on a wrong one
  (length bias), Dr. GRPO (1-p)/G and -p/G; GRPO over the same weight without the std is 1/sqrt(p(1-p))
  (difficulty bias).
* The token-gradient cancellation condition (Ding et al. 2026, arXiv 2604.13088): a token shared by the
  whole group in identical context gets W = sum_i A_i omega_i times grad log pi, and W vanishes for every
  reward vector iff omega_i is the same for every completion; its two fixes (min_j w_j, and w projected
  orthogonally to A, both under stop-gradient).
* The group-relative baseline is biased (Yang et al. 2026, arXiv 2601.08521): on groups with
  1 <= R <= G-1 successes, E[p_hat] = (p - p^G)/(1 - (1-p)^G - p^G).

A success rate 0 < p < 1 is written p = 1/(1 + t) with t > 0 (the odds of failure), so that
sqrt(p (1-p)) = sqrt(t)/(1 + t) needs no case split; every identity in t holds for every such p.
Each ``*_residues`` function returns derived-minus-stated differences that must be exactly 0.
"""

from __future__ import annotations

import sympy as sp

from ... import notation as n
from ...gradient import generic_gradient
from ...terms import exact
from ...variants import Variant, get_variant

__all__ = ["p", "t", "P", "k", "L", "in_p", "binary_variance", "token_coefficient", "LENGTH_STATED",
           "length_residues", "length_slopes", "DIFFICULTY_STATED", "difficulty_factor", "difficulty_residues",
           "difficulty_shape", "DIFFICULTY_SHAPE", "condition_residue", "exchangeable_solution", "omega", "regime_ratios",
           "derived_exchangeable", "RATIO_REGIMES", "LENGTH_REGIMES", "projection_by_lagrange", "PROJECTION_STATED",
           "fix_residues", "ADVANTAGE_STATED", "conditional_mean", "advantage_residues", "enumerated_mean",
           "advantage_bias_factor"]

#: success rate of a prompt (0 < p < 1) and its odds of failure t = (1-p)/p
p = sp.Symbol("p", positive=True)
t = sp.Symbol("t", positive=True)
#: p written through t: 0 < P < 1 for every t > 0
P = 1 / (1 + t)
#: correct answers in a group of G, and the completion length |o_i|
k = sp.Symbol("k", integer=True, positive=True)
L = n.L_i


def in_p(expr: sp.Expr) -> sp.Expr:
    """An expression in t rewritten in the success rate p (t = (1-p)/p), for display."""
    return sp.simplify(expr.subs(t, (1 - p) / p))


# ------------------------------------------------------------------ Dr. GRPO: length and difficulty


def binary_variance() -> sp.Expr:
    """Population variance of k ones and G - k zeros, derived from its definition: k(G-k)/G^2 = p(1-p)."""
    mean = k / n.G
    return sp.factor((k * (1 - mean) ** 2 + (n.G - k) * mean ** 2) / n.G)


def token_coefficient(variant: "str | Variant", correct: bool) -> sp.Expr:
    """dJ/d log pi of one token at s = 1, derived: SymPy's gradient of the variant's term
    (:func:`grpo_proofs.gradient.generic_gradient`) with its Table 1 weight, A = r - p and sigma the
    square root of :func:`binary_variance` at k = pG; an expression in t, G and L = |o_i|.

    >>> token_coefficient("grpo", True)
    sqrt(t)/(G*L_i)
    """
    v = get_variant(variant)
    d, _ = generic_gradient(v)
    sigma = sp.sqrt(sp.factor(binary_variance().subs(k, P * n.G)))
    alpha = v.alpha_with_params().subs(n.DEFAULT_MASKS).subs(n.sigma, sigma)
    A = (1 - P) if correct else -P                     # r - mean r, with r = 1 or 0
    return sp.simplify(d.xreplace({n.a: alpha, n.A_i: sp.factor(A), n.x: 0}))


#: Dr. GRPO's reading, typed: (correct, wrong) per-token coefficient at s = 1, population std
LENGTH_STATED = {
    "grpo": (sp.sqrt((1 - p) / p) / (n.G * L), -sp.sqrt(p / (1 - p)) / (n.G * L)),
    "dr_grpo": ((1 - p) / n.G, -p / n.G),
}


def length_residues(stated: dict = LENGTH_STATED) -> dict[str, sp.Expr]:
    """derived - stated per-token coefficient, for each method and answer kind (all 0 when the statement holds)."""
    out = {"variance": sp.cancel(binary_variance().subs(k, P * n.G) - P * (1 - P))}
    for name, pair in stated.items():
        for correct, form in zip((True, False), pair):
            key = f"{name} {'correct' if correct else 'wrong'}"
            out[key] = sp.simplify(token_coefficient(name, correct) - form.subs(p, P))
    return out


def length_slopes(variant: str) -> tuple[sp.Expr, sp.Expr]:
    """d/d|o_i| of the (correct, wrong) coefficients: GRPO's per-token update shrinks with the length on both
    sides (negative, positive), Dr. GRPO's does not move (0, 0)."""
    return tuple(sp.simplify(sp.diff(token_coefficient(variant, c), L)) for c in (True, False))


#: Dr. GRPO's reading, typed: GRPO's weight over the same weight without the std
DIFFICULTY_STATED = 1 / sp.sqrt(p * (1 - p))


def difficulty_factor() -> sp.Expr:
    """GRPO's per-token coefficient over GRPO (DeepSeek-V3.2)'s, alpha = 1/(G|o_i|): derived, the same on
    correct and wrong answers (checked by :func:`difficulty_residues`)."""
    return sp.simplify(token_coefficient("grpo", True) / token_coefficient("grpo_v32", True))


def difficulty_residues(stated: sp.Expr = DIFFICULTY_STATED) -> dict[str, sp.Expr]:
    """derived - stated factor on correct and on wrong answers (0 when the statement holds)."""
    f = stated.subs(p, P)
    return {"correct": sp.simplify(difficulty_factor() - f),
            "wrong": sp.simplify(token_coefficient("grpo", False) / token_coefficient("grpo_v32", False) - f)}


#: the shape of f(p) that the statement asserts, typed: one stationary point p = 1/2 where f = 2, f >= 2,
#: unbounded at both ends, symmetric under p -> 1 - p (see :func:`difficulty_shape`)
DIFFICULTY_SHAPE = {"stationary": [sp.Rational(1, 2)], "at_half": 2, "square_gap": 0, "limit_0": sp.oo,
                    "limit_1": sp.oo, "symmetry": 0}


def difficulty_shape(stated: sp.Expr = DIFFICULTY_STATED) -> dict[str, object]:
    """The factor f(p): its stationary points, f(1/2), f^2 - 4 - (1-2p)^2/(p(1-p)) (0: f >= 2 with equality
    only at p = 1/2), its limits at p -> 0+ (t -> oo) and p -> 1- (t -> 0+), and f(p) - f(1-p) in t
    (p -> 1-p is t -> 1/t)."""
    f_t = sp.simplify(stated.subs(p, P))
    return {"stationary": sp.solve(sp.diff(stated, p), p), "at_half": sp.nsimplify(stated.subs(p, sp.Rational(1, 2))),
            "square_gap": sp.simplify(stated ** 2 - 4 - (1 - 2 * p) ** 2 / (p * (1 - p))),
            "limit_0": sp.limit(f_t, t, sp.oo), "limit_1": sp.limit(f_t, t, 0, "+"),
            "symmetry": sp.simplify(f_t - f_t.subs(t, 1 / t))}


# ------------------------------------------------------------------ token-gradient cancellation

_j, _m = sp.Symbol("j", integer=True, positive=True), sp.Symbol("m", integer=True, positive=True)
_w, _r = sp.IndexedBase("w", real=True), sp.IndexedBase("r", real=True)


def condition_residue() -> sp.Expr:
    """For a group of symbolic size G and rewards r_j, W = sum_j A_j w_j with A_j = r_j - mean r is linear in
    the rewards and dW/dr_m = w_m - mean_j w_j: returns derived - stated (0). So W = 0 for every reward
    vector iff every w_m equals their mean, i.e. iff the weights are the same for every completion."""
    mean = lambda f: sp.Sum(f, (_j, 1, n.G)) / n.G  # noqa: E731
    W = sp.Sum((_r[_j] - mean(_r[_j])) * _w[_j], (_j, 1, n.G))
    gap = sp.Symbol("d", integer=True, nonnegative=True)        # G = m + d: the index m lies in 1..G
    dW = sp.diff(W, _r[_m]).doit().subs(n.G, _m + gap)
    return sp.simplify(dW - (_w[_m] - mean(_w[_j]).subs(n.G, _m + gap)))


def exchangeable_solution(G: int) -> list[dict]:
    """Every weight vector w (G symbols) with dW/dr_m = 0 for all m, by ``sp.solve``: one family, all w equal."""
    r, w = sp.symbols(f"r1:{G + 1}", real=True), sp.symbols(f"w1:{G + 1}", real=True)
    W = sum((ri - sum(r) / G) * wi for ri, wi in zip(r, w))
    return sp.solve([sp.diff(W, ri) for ri in r], w, dict=True)


#: the ratio of the shared token, and whether the completions' lengths differ
RATIO_REGIMES = ("s = 1", "in the band", "above the band", "below the band")
LENGTH_REGIMES = ("equal lengths", "lengths differ")


def regime_ratios(v: Variant) -> dict[str, tuple[sp.Rational, sp.Rational]]:
    """Two completions' ratios per regime (exact): the shared token's common ratio for token kinds; the
    completions' own s_i for sequence kinds, which differ in the band. Open sides: eps = 1 above, 1/4 below."""
    up = exact(v.eps_up) if v.eps_up is not None else sp.Integer(1)
    low = exact(v.eps_low) if v.eps_low is not None else sp.Rational(1, 4)
    inside = 1 + up / 2
    out = {"s = 1": (sp.Integer(1),) * 2, "in the band": (inside, inside),
           "above the band": (1 + 2 * up,) * 2, "below the band": (1 - sp.Min(2 * low, (1 + low) / 2),) * 2}
    if v.sequence_level:
        out["in the band"] = (inside, 1 - low / 2)
    return out


def omega(v: Variant, length: sp.Expr, A: sp.Expr, s: sp.Expr) -> sp.Expr:
    """omega = (dJ/dx of one token)/A for a completion of length ``length``, advantage A != 0 and ratio s
    (the token's own for token kinds, the completion's s_i for sequence kinds), derived by SymPy."""
    d, _ = generic_gradient(v)
    alpha = v.alpha_with_params().subs(n.DEFAULT_MASKS).subs({n.L_i: length, n.A_i: A})
    if v.sequence_level:
        vals = {n.Omega: length * alpha, n.A_i: A, n.u: sp.log(s), n.L_i: length}
    else:
        vals = {n.a: alpha, n.A_i: A, n.x: sp.log(s)}
    return sp.cancel(d.xreplace(vals) / A)


def derived_exchangeable(variant: "str | Variant", ratio_regime: str, length_regime: str) -> bool:
    """True iff the derived omega is the same for two completions of the regime with either sign of advantage:
    (L_a, +-a, s_a) and (L_b, +-b, s_b) with a, b > 0 and L_b = L_a at equal lengths."""
    v = get_variant(variant)
    a, b = sp.symbols("a b", positive=True)
    La, Lb = sp.symbols("L_a L_b", positive=True)
    if length_regime == "equal lengths":
        Lb = La
    sa, sb = regime_ratios(v)[ratio_regime]
    first, *rest = [omega(v, La, A, sa) for A in (a, -a)] + [omega(v, Lb, A, sb) for A in (b, -b)]
    return all(sp.cancel(first - other) == 0 for other in rest)


# ------------------------------------------------------------------ the two fixes

#: the projection fix, typed: w - (A.w / |A|^2) A
def PROJECTION_STATED(A, w):  # noqa: N802 - a stated formula, named like the other statements
    return [wi - sum(x * y for x, y in zip(A, w)) / sum(x ** 2 for x in A) * Ai for Ai, wi in zip(A, w)]


def projection_by_lagrange(G: int) -> tuple[list[sp.Expr], list[sp.Expr], list[sp.Expr]]:
    """The weights w' closest to w (least squares) with A.w' = 0, solved by Lagrange for symbolic advantages
    A_1..A_G (any vector with |A| > 0) and weights: (A, w, w')."""
    A, w = sp.symbols(f"A1:{G + 1}", real=True), sp.symbols(f"w1:{G + 1}", real=True)
    z, lam = sp.symbols(f"z1:{G + 1}", real=True), sp.Symbol("lambda_L", real=True)
    lagrangian = sum((zi - wi) ** 2 for zi, wi in zip(z, w)) / 2 - lam * sum(Ai * zi for Ai, zi in zip(A, z))
    (sol,) = sp.solve([sp.diff(lagrangian, zi) for zi in z] + [sp.diff(lagrangian, lam)], [*z, lam], dict=True)
    return list(A), list(w), [sol[zi] for zi in z]


def fix_residues(G: int, stated=PROJECTION_STATED) -> dict[str, sp.Expr]:
    """Lagrange's w' minus the stated projection (0 per entry), A.w' (0) and, for the min fix, A.(m, ..., m)
    with centered advantages A_i = r_i - mean r and a common weight m (0)."""
    A, w, z = projection_by_lagrange(G)
    proj = stated(A, w)
    out = {f"projection {i + 1}": sp.cancel(zi - pi) for i, (zi, pi) in enumerate(zip(z, proj))}
    out["A . projected"] = sp.cancel(sum(Ai * pi for Ai, pi in zip(A, proj)))
    r, m = sp.symbols(f"r1:{G + 1}", real=True), sp.Symbol("m_w", real=True)
    out["A . min"] = sp.expand(sum((ri - sum(r) / G) * m for ri in r))
    return out


# ------------------------------------------------------------------ the group-relative baseline

#: Yang et al.'s formula, typed: E[p_hat | 1 <= R <= G - 1]
ADVANTAGE_STATED = (p - p ** n.G) / (1 - (1 - p) ** n.G - p ** n.G)


def conditional_mean() -> sp.Expr:
    """E[R/G | 1 <= R <= G-1] for R ~ Binomial(G, p), derived for a symbolic G from the generating function
    E[z^R] = (1 - p + p z)^G: E[R] = d/dz at z = 1; R = 0 adds nothing to E[R] and R = G adds G p^G."""
    z = sp.Symbol("z", positive=True)
    ER = sp.diff((1 - p + p * z) ** n.G, z).subs(z, 1)
    return sp.simplify((ER - n.G * p ** n.G) / n.G) / (1 - (1 - p) ** n.G - p ** n.G)


def enumerated_mean(G: int) -> sp.Expr:
    """The same for a concrete G as an explicit binomial sum over R = 1..G-1 (symbolic p)."""
    w = [sp.binomial(G, R) * p ** R * (1 - p) ** (G - R) for R in range(1, G)]
    return sp.Add(*[sp.Rational(R, G) * wR for R, wR in zip(range(1, G), w)]) / sp.Add(*w)


def advantage_bias_factor() -> sp.Expr:
    """E[p_hat | .] - p = p(1-p)((1-p)^(G-1) - p^(G-1)) / (1 - (1-p)^G - p^G), with symbolic G: the sign of
    1/2 - p, since the denominator (the probability of a non-degenerate group) is positive."""
    q = 1 - p
    return p * q * (q ** (n.G - 1) - p ** (n.G - 1)) / (1 - q ** n.G - p ** n.G)


def advantage_residues(G_values=range(2, 9), stated: sp.Expr = ADVANTAGE_STATED) -> dict[str, sp.Expr]:
    """derived - stated: the generating-function derivation (symbolic G), the bias factorisation (symbolic G)
    and the explicit sums for each concrete G (symbolic p)."""
    q = sp.Symbol("q", positive=True)                 # 1 - p, kept apart so that q^(G-1) = q^G / q splits
    gap = sp.cancel(sp.expand_power_exp((stated - p - advantage_bias_factor()).xreplace({1 - p: q})))
    out = {"symbolic G": sp.simplify(conditional_mean() - stated), "bias factor": sp.cancel(gap.subs(q, 1 - p))}
    for G in G_values:
        out[f"G = {G}"] = sp.cancel(enumerated_mean(G) - stated.subs(n.G, G))
    return out

