"""Everything the propositions of arXiv 2601.05002 say about one variant, derived symbolically.

Given a :class:`~grpo_proofs.variants.Variant`, :func:`derive` returns a :class:`Verdicts` record:

* **gradient** -- the per-token gradient SymPy derives from the unified surrogate (Eq. 13-15, 28;
  :func:`grpo_proofs.gradient.generic_gradient`) and the effective coefficient omega_{i,t}(s) of the
  unclipped branch, dJ/dlog pi = A_i omega_{i,t}, also derived (never typed);
* **prefix** (Prop. 1) -- W = sum_i A_i omega_i on a prefix shared by the group, whether it cancels for
  every group at the first inner step (omega constant within a group: no dependence on L_i, A_i or
  a mask), what happens off s = 1, and its exact value on the worked example of the prefix page;
* **loss** (Prop. 4) -- the meaning of J at s = 1: -beta R only (summed weight Omega_i constant), a
  length statistic (Omega_i proportional to L_i) or G Cov(A, Omega) in general;
* **reward_scale** (Props. 5, 6, 2) -- the degree d of A_i omega_i under r -> phi r (A -> phi A,
  sigma -> phi sigma): d = 0 invariant, d != 0 invariant up to Adam's eps (beta = 0) or not (beta > 0:
  phi^d acts as an inverse regulariser coefficient), no such d (e.g. a threshold on A_i) not invariant;
* **overshoot** (Props. 3, 7) -- whether a zero-gradient clipped region exists and C_{T,k};
* **equivalence** -- registered methods with the same ratio kind and clip whose weight differs by a
  factor that is constant within a group (free of L_i, A_i, sigma and masks; G, L_max allowed).

Symbols that are constant within a group: G, L_sum, L_max, sigma and the method parameters;
per completion: L_i, A_i, delta; per token: M, lam (decisions take the masks at their default 1
and say so when the weight contains one).

>>> d = derive("grpo")
>>> d.prefix["cancels"], d.prefix["worked"]["exact"], d.loss["regime"], d.reward_scale["verdict"]
(False, '1/96', 'zero', 'invariant')
>>> derive("dr_grpo").prefix["cancels"], derive("dr_grpo").reward_scale["verdict"]
(True, 'invariant up to eps')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sympy as sp

from .. import notation as n
from ..props.gradient.derive import gradient_branches, plain, ratio_legend
from ..props.prefix.derive import effective_coefficient, value_factor
from .equivalence import equivalents, weight_at_defaults as _alpha
from ..errors import InputError
from ..gradient import generic_gradient
from ..terms import exact
from ..props.overshoot.verdict import overshoot_verdict, reachable
from ..props.reward_scale.verdict import CARD_PHIS, reward_scale_verdict, scale_degree
from ..variants import Ratio, Surrogate, Variant, get_variant

__all__ = ["Verdicts", "derive", "scale_degree", "reachable", "WORKED", "worked_values",
           "CARD_PHIS"]

#: the worked example group of the derivation pages (G = 4, first inner step, whole group shares the prefix)
WORKED = {"rewards": (1, 0, 0, 1), "lengths": (10, 30, 20, 40)}
_PER_COMPLETION = {n.L_i, n.A_nonzero, n.A_i}


@dataclass(frozen=True)
class Verdicts:
    """The derived verdict card of one variant (plain data: strings, numbers, dicts)."""

    variant: str
    sigma: str
    gradient: dict
    prefix: dict
    loss: dict
    reward_scale: dict
    overshoot: dict
    equivalence: dict

    def to_dict(self) -> dict:
        return asdict(self)


_OFF = {
    Surrogate.QUADRATIC: ("the shared token has one ratio s for every completion, so W(s) = s [sum_i A_i alpha_i - "
                          "(s - 1) sum_i |A_i| alpha_i / eps_i]: the penalty part never cancels, so off s = 1 the "
                          "prefix is pulled back toward s = 1 in proportion to s - 1, whatever the weights"),
    Surrogate.TV_MASK: ("inside the band |p - p_old| <= delta_tv the shared token has one ratio s for every "
                        "completion, so W(s) = s W(1); past it only the completions of one advantage sign keep "
                        "their gradient, a restoring net push back toward the band, never zero"),
    Surrogate.UP: ("completions with A_i > 0 contribute alpha A_i at every s (REINFORCE), the others alpha A_i s "
                   "(clipped below 1 - eps): W(s) = sum_(A>0) alpha A + s sum_(A<0) alpha A, nonzero for s != 1 "
                   "even when it cancels at s = 1"),
    Surrogate.SIGMOID: ("the gate's slope 4 s sigmoid'(tau (s - 1)) depends on tau, which differs by the sign of "
                        "A_i: off s = 1, W = sum_i A_i alpha_i g_(tau_i)(s) does not cancel even with uniform weights"),
    Surrogate.TAPER: ("the stop-gradient weight min(s_i, 1) of a negative completion depends on its own sequence "
                      "ratio, so after the first inner step W = sum_i A_i alpha_i f(s_i) does not cancel even where "
                      "it does at s = 1"),
    Surrogate.GAMMA: ("the stop-gradient weight Phi(s_i) depends on the completion's own sequence ratio (and on "
                      "the sign of A_i through k and lambda), so after the first inner step W = sum_i A_i alpha_i "
                      "Phi_i does not cancel even where it does at s = 1"),
}


def _per_completion(expr: sp.Expr) -> set:
    return expr.free_symbols & _PER_COMPLETION


def _has_masks(v: Variant) -> bool:
    return bool(v.alpha.free_symbols & set(n.DEFAULT_MASKS))


def worked_values(v: Variant, sigma: str = "pop") -> dict:
    """Exact A_i, sigma and the substitution of the worked example group (SymPy numbers)."""
    r = [sp.Integer(x) for x in WORKED["rewards"]]
    G = len(r)
    mean = sp.Add(*r) / G
    A = [x - mean for x in r]
    ss = sp.Add(*[a ** 2 for a in A])
    std = sp.sqrt(ss / G) if sigma == "pop" else sp.sqrt(ss / (G - 1))
    return {"A": A, "L": [sp.Integer(L) for L in WORKED["lengths"]], "sigma": std + exact(v.sigma_eps),
            "common": {n.G: G, n.L_sum: sum(WORKED["lengths"]), n.L_max: max(WORKED["lengths"])}}


def _on_worked(expr: sp.Expr, wv: dict) -> list[sp.Expr]:
    base = expr.subs(wv["common"]).subs(n.sigma, wv["sigma"])
    return [base.subs({n.L_i: L, n.A_nonzero: A, n.A_i: A}) if A != 0 else sp.Integer(0)
            for A, L in zip(wv["A"], wv["L"])]


def _prefix(v: Variant, omega: sp.Expr, sigma: str) -> dict:
    c = sp.cancel(omega.subs(n.s, 1).subs(n.A_i, n.A_nonzero))
    cancels = not _per_completion(c)
    i = n.i_idx
    W = sp.Sum(n.A_idx[i] * c.subs({n.L_i: n.L_idx[i], n.A_nonzero: n.A_idx[i]}), (i, 1, n.G))
    wv = worked_values(v, sigma)
    terms = [A * w for A, w in zip(wv["A"], _on_worked(c, wv))]
    Wx = sp.simplify(sp.Add(*terms))
    if v.surrogate in _OFF:
        off = _OFF[v.surrogate]
    elif v.ratio in (Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT):
        off = ("after the first inner step the sequence ratios s_i differ across completions, so "
               "W = sum_i A_i omega_i(s_i) does not cancel even where it does at s = 1")
    elif v.ratio is Ratio.LOGPROB:
        off = "the surrogate has no ratio: W is the same at every inner step"
    elif v.ratio is Ratio.SG_WEIGHT:
        off = ("the shared token has one ratio s for every completion, so W(s) = clip(s) W(1): it cancels exactly "
               "when it does at s = 1; the clip caps a stop-gradient weight and never zeroes the gradient")
    else:
        off = ("inside the clip range the shared token has one ratio s for every completion, so W(s) = s W(1)"
               + ("; past a clip bound only the completions of one advantage sign keep their gradient, a restoring "
                  "net push back toward the bound, never zero" if v.clipped else ""))
    why = (f"omega_i = {plain(c)} is the same for every completion of a group, and sum_i A_i = 0" if cancels else
           f"omega_i = {plain(c)} varies with " + ", ".join(sorted(map(str, _per_completion(c))))
           + " within a group, so sum_i A_i omega_i != 0 in general: the shared prefix is pushed by the completions' "
           + ("lengths" if n.L_i in c.free_symbols else "advantages"))
    if _has_masks(v):
        why += " (masks M, lam, delta at their default 1; unequal masks within a group break any cancellation)"
    return {"omega": plain(c), "omega_latex": sp.latex(c), "W": plain(W), "W_latex": sp.latex(W),
            "cancels": cancels, "reason": why, "off_first_step": off,
            "subset": "for a prefix shared by a subset S only, W = |S| Cov_S(A, omega) + |S| mean_S(A) mean_S(omega): "
                      "nonzero in general even when omega is constant",
            "worked": {"rewards": list(WORKED["rewards"]), "lengths": list(WORKED["lengths"]), "sigma": sigma,
                       "exact": str(Wx), "value": float(Wx)}}


def _loss(v: Variant, sigma: str) -> dict:
    reg = "" if v.beta == 0 else f" - beta R (beta = {v.beta:g}, {v.regularizer.value})"
    if v.ratio in (Ratio.LOGPROB, Ratio.SG_WEIGHT, Ratio.SEQ_SG_WEIGHT):
        return {"regime": "log-likelihood", "J": "sum_i A_i sum_t alpha_(i,t) w_(i,t) log pi_theta(y_(i,t))" + reg,
                "meaning": "an advantage-weighted log-likelihood: its value is set by the log-probs (w = 1 or the "
                           "stop-gradient weight), not by how good the policy is; only its gradient matches the "
                           "ratio form at s = 1", "worked": None}
    Om = sp.cancel(n.L_i * _alpha(v) * value_factor(v))  # phi(1) = A_i value_factor (1 for Eq. 1)
    if not _per_completion(Om):
        regime, J = "zero", f"sum_i A_i Omega_i = ({plain(Om)}) sum_i A_i = 0"
        meaning = "the reward part is identically zero at the first inner step: the loss value is -beta R alone"
    elif not _per_completion(sp.cancel(Om / n.L_i)):
        regime, J = "length", f"({plain(sp.cancel(Om / n.L_i))}) sum_i A_i L_i"
        meaning = "a length statistic: the covariance of advantage and completion length, not a performance signal"
    else:
        regime, J = "covariance", "sum_i A_i Omega_i = G Cov_pop(A, Omega)"
        meaning = "proportional to the covariance of the advantages with the summed weights Omega_i"
    wv = worked_values(v, sigma)
    val = sp.simplify(sp.Add(*[A * o for A, o in zip(wv["A"], _on_worked(Om, wv))]))
    return {"regime": regime, "Omega": plain(Om), "J": J + reg, "meaning": f"Omega_i = sum_t alpha_(i,t) = {plain(Om)}: " + meaning +
            "; for s != 1 it mixes weighting artefacts with importance-sampling noise: a falling loss does not "
            "mean a better policy", "worked": {"exact": str(val), "value": float(val)}}


def derive(variant, sigma: str = "pop", *, T: int | None = None, k: int | None = None, beta1: float = 0.9,
           beta2: float = 0.999, mu: int | None = None, grad_clip: float | None = None,
           match_alpha: sp.Expr | None = None) -> Verdicts:
    """Every symbolic verdict for ``variant`` (a registry name or a Variant); see the module docstring.

    ``mu``: optimizer steps per sampled batch; the overshoot numbers then cover only the steps the
    optimizer takes (T >= 2, T + k <= mu; default T = 2, k = mu - 2; InputError for others; mu = 1:
    none). Without ``mu``: T = 5, k = 4 by default, unbounded. ``match_alpha``: the weight to
    compare with the registry, when it differs from the variant's own by numerical guards only (a
    trainer's 1e-8 added to |o_i|).
    """
    v = get_variant(variant)
    if sigma not in ("pop", "sample"):
        raise InputError(f"sigma must be 'pop' or 'sample', got {sigma!r}")
    if sp.cancel(v.alpha_with_params().subs(n.DEFAULT_MASKS)) == 0:
        raise InputError(f"variant {v.name!r}: the weight is identically zero; there is nothing to check")
    expr, args = generic_gradient(v)
    omega = effective_coefficient(v)
    grad = {"expr": str(expr), "latex": sp.latex(expr), "args": [str(a) for a in args],
            "branches": gradient_branches(v), "legend": ratio_legend(v),
            "omega": plain(omega), "omega_latex": sp.latex(omega), "alpha": plain(v.alpha), "alpha_latex": sp.latex(v.alpha)}
    return Verdicts(v.name, sigma, grad, _prefix(v, omega, sigma), _loss(v, sigma),
                    reward_scale_verdict(v, grad_clip, sigma, WORKED["rewards"]),
                    overshoot_verdict(v, T, k, beta1, beta2, mu), equivalents(v, match_alpha))
