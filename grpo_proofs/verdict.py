"""Everything the propositions of arXiv 2601.05002 say about one variant, derived symbolically.

Given a :class:`~grpo_proofs.variants.Variant`, :func:`derive` returns a :class:`Verdicts` record:

* **gradient** -- the per-token gradient SymPy derives from the unified surrogate (Eq. 13-15, 28;
  :func:`grpo_proofs.gradient.generic_gradient`) and the effective coefficient omega_{i,t}(s) of the
  unclipped branch, dJ/dlog pi = A_i omega_{i,t}, also derived (never typed);
* **prefix** (Prop. 1) -- W = sum_i A_i omega_i on a prefix shared by the group, whether it cancels for
  every group at the first inner step (omega constant within a group: no dependence on L_i, A_i or
  a mask), what happens off s = 1, and its exact value on the worked example of THEORY.md;
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

import math
from dataclasses import asdict, dataclass

import numpy as np
import sympy as sp
from sympy.core.relational import Relational

from . import notation as n
from .branches import gradient_branches, plain, ratio_legend
from .equivalence import MASKS as _MASKS, equivalents, weight_at_defaults as _alpha
from .errors import InputError
from .gradient import generic_gradient
from .objective import exact
from .overshoot import overshoot_ratio, overshoot_total
from .variants import Ratio, Variant, get_variant

__all__ = ["Verdicts", "derive", "effective_coefficient", "scale_degree", "reachable", "WORKED", "worked_values",
           "CARD_PHIS"]

#: the worked example group of THEORY.md Sec. 3 (G = 4, first inner step, whole group shares the prefix)
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


def effective_coefficient(variant) -> sp.Expr:
    """omega_{i,t}(s): the unclipped-branch gradient dJ/dlog pi divided by A_i, as a function of the ratio s.

    Derived from :func:`grpo_proofs.gradient.generic_gradient` of the variant without its clip
    (token and sequence ratios) or as is (GPG, CISPO, which never zero the gradient); the
    log-ratio is written log s and the summed weight Omega_i = L_i alpha (masks 1).

    >>> effective_coefficient("grpo"), effective_coefficient("gcpo"), effective_coefficient("cispo")
    (s/(G*L_i*sigma), L_i*s/(G*sigma), Min(5, s)/(L_sum*sigma))
    """
    v = get_variant(variant)
    u = v.replace(eps_low=None, eps_up=None) if v.ratio in (Ratio.TOKEN, Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT) else v
    d, args = generic_gradient(u)
    alpha = v.alpha_with_params().subs(_MASKS)
    sub = {n.a: alpha, n.Omega: n.L_i * alpha, n.x: sp.log(n.s), n.u: sp.log(n.s)}
    return sp.cancel(sp.powsimp(d.subs(sub) / n.A_i))


def _per_completion(expr: sp.Expr) -> set:
    return expr.free_symbols & _PER_COMPLETION


def _has_masks(v: Variant) -> bool:
    return bool(v.alpha.free_symbols & set(_MASKS))


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
    if v.ratio in (Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT):
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
    if v.ratio in (Ratio.LOGPROB, Ratio.SG_WEIGHT):
        return {"regime": "log-likelihood", "J": "sum_i A_i sum_t alpha_(i,t) w_(i,t) log pi_theta(y_(i,t))" + reg,
                "meaning": "an advantage-weighted log-likelihood: its value is set by the log-probs (w = 1 or the "
                           "stop-gradient weight), not by how good the policy is; only its gradient matches the "
                           "ratio form at s = 1", "worked": None}
    Om = sp.cancel(n.L_i * _alpha(v))
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


def scale_degree(variant) -> tuple[sp.Rational | None, str]:
    """(d, why): A_i omega_i -> phi^d A_i omega_i under A -> phi A, sigma -> phi sigma (phi > 0), or (None, why).

    Conditions (``ind``, ``Heaviside``) must be unchanged by the scale: their argument difference
    must be multiplied by a positive factor.

    >>> scale_degree("grpo")[0], scale_degree("dr_grpo")[0], scale_degree("cppo")[0]
    (0, 1, 0)
    """
    v = get_variant(variant)
    p = n.phi_pos
    f = n.A_i * v.alpha_with_params().subs(_MASKS)
    scale = {n.A_i: p * n.A_i, n.sigma: p * n.sigma}
    reps = {}
    for atom in f.atoms(Relational, sp.Heaviside):
        d0 = atom.lhs - atom.rhs if isinstance(atom, Relational) else atom.args[0]
        q = sp.simplify(d0.subs(scale, simultaneous=True) / d0) if d0 != 0 else sp.Integer(1)
        if not q.is_positive:
            return None, f"the condition {atom} changes with the reward scale"
        reps[atom] = sp.Dummy(positive=True) if isinstance(atom, sp.Heaviside) else sp.Dummy()
    fd = f.xreplace(reps)
    for pw in fd.atoms(sp.Piecewise):  # conditions are now scale-free; so is a branch free of A_i and sigma
        if all(not (e.free_symbols & {n.A_i, n.sigma}) for e, _ in pw.args):
            fd = fd.xreplace({pw: sp.Dummy(positive=True)})
    h = sp.simplify(fd.subs(scale, simultaneous=True) / fd)
    if h == 1:
        return 0, "A_i omega_i does not change: sigma scales with the rewards"
    if h == p:
        return 1, "A_i omega_i scales by phi: the advantage is only centered"
    if h.is_Pow and h.base == p and h.exp.is_Rational:
        return h.exp, f"A_i omega_i scales by phi^{h.exp}"
    return None, f"A_i omega_i changes by the factor {h}, not by a power of phi alone"


#: reward scales whose factor k the card lists for the worked example group
CARD_PHIS = (0.01, 0.1, 10.0, 100.0)


def _worked_sigma(v: Variant, sigma: str) -> float:
    """The std of the worked example's rewards (population or sample), without the constant."""
    r = np.asarray(WORKED["rewards"], dtype=np.float64)
    return float(np.std(r, ddof=0 if sigma == "pop" else 1))


def _reward_scale(v: Variant, grad_clip, sigma: str = "pop") -> dict:
    d, why = scale_degree(v)
    regularised = v.beta > 0 and v.regularizer.value != "none"
    c = v.sigma_eps
    factors = None
    if d == 0 and c > 0:
        s0 = _worked_sigma(v, sigma)
        factors = [{"phi": p, "k": p * (s0 + c) / (p * s0 + c)} for p in CARD_PHIS]
    if d == 0 and c == 0:
        verdict = "invariant"
        reason = f"{why}; the whole gradient, regulariser included, is unchanged for phi > 0 (Prop. 5)"
    elif d == 0 and not regularised:
        verdict = "invariant up to the sigma constant"
        reason = (f"{why} except for the constant c = {c:g} added to sigma: the advantage gradient is multiplied by "
                  "k = phi (sigma + c)/(phi sigma + c), the same factor for every token of a group, so Adam undoes it "
                  "up to eps (Prop. 2) within a group; k differs between groups of different sigma, and tends to 1 "
                  "when c << phi sigma")
    elif d == 0:
        verdict = "not invariant"
        reason = (f"{why} except for the constant c = {c:g} added to sigma: the advantage gradient is multiplied by "
                  f"k = phi (sigma + c)/(phi sigma + c) but the regulariser (beta = {v.beta:g}) is not, so training on "
                  "phi r equals training on r with beta/k (up to Adam's eps): the balance between reward and "
                  "regulariser moves by |k - 1| <= c |1 - phi|/(phi sigma + c); the resulting change of the AdamW "
                  "step on a real group is predicted from k, with the group's own sigma, and measured by the numerical "
                  "confirmation")
    elif d is not None and not regularised:
        f = "phi" if d == 1 else f"phi^{d}"
        verdict = "invariant up to eps"
        reason = (f"{why} and there is no regulariser: every gradient scales by {f}, so Adam's moments scale by {f} "
                  f"and its square (Prop. 6) and the step changes by (1 + eps/sqrt(v_hat))/(1 + eps/({f} sqrt(v_hat))) "
                  f"(Prop. 2): invariant where sqrt(v_hat) >> eps/{f}, not on coordinates with gradients near eps")
    elif d is not None:
        f = "phi" if d == 1 else f"phi^{d}"
        verdict = "not invariant"
        reason = (f"{why} but the regulariser (beta = {v.beta:g}) does not: training on phi r with beta equals training "
                  f"on r with beta/{f} (up to eps): the reward scale acts as an inverse KL coefficient")
    else:
        verdict, reason = "not invariant", why
    if factors is not None:
        reason += ("; k on the worked example group (sigma = " + f"{_worked_sigma(v, sigma):.4g}): "
                   + ", ".join(f"phi = {x['phi']:g}: k = {x['k']:.6g}" for x in factors))
    if d == 0 and c == 0:
        clip = "global gradient-norm clipping sees the same gradients for every phi here, so it keeps the invariance"
    elif d == 0 and not regularised:
        clip = ("global gradient-norm clipping multiplies g_t by min(1, c_max/||g_t||): the gradients differ by the "
                "factor k, so it breaks the invariance at a step where ||g_t|| lies between c_max/k and c_max (active "
                "in one run only)")
    else:
        clip = ("global gradient-norm clipping multiplies g_t by min(1, c_max/||g_t||), which depends on the scale: it "
                "breaks the invariance whenever it is active for one reward scale and not the other (active at every "
                "step for both, the clipped gradients c_max g_t/||g_t|| coincide again when the gradients are "
                "proportional)")
    if grad_clip:
        clip += f"; this config clips at max norm {grad_clip:g}"
    return {"verdict": verdict, "degree": None if d is None else str(d), "reason": reason, "grad_clip": clip,
            "factors_worked": factors,
            "also": "one phi for all prompts and steps (per-prompt scales are not covered); phi < 0 reverses the "
                    "objective; adding a constant to every reward changes nothing (centering)"}


def reachable(T: int, k: int, mu: int | None) -> bool:
    """Whether C_(T,k) describes a step the optimizer takes: 2 <= T and T + k <= mu inner steps per batch.

    The first inner step of a batch has s = 1 (nothing is clipped), so the gradient can vanish from
    step T >= 2 on; the steps T..T+k must lie within the batch's mu steps (the next batch resets the
    ratios). mu None: no bound.

    >>> reachable(5, 4, 8), reachable(2, 0, 2), reachable(2, 0, 1)
    (False, True, False)
    """
    return T >= 2 and (mu is None or T + k <= mu)


def _overshoot(v: Variant, T: int | None, k: int | None, beta1: float, beta2: float, mu: int | None) -> dict:
    rho = beta1 / math.sqrt(beta2)
    limit = overshoot_total(beta1, beta2)
    if mu is not None and mu < 2:
        T = k = None
        table, drift, later = [], 0.0, 0.0
    else:
        T = (2 if mu is not None else 5) if T is None else T
        k = ((mu - T) if mu is not None else 4) if k is None else k
        if not reachable(T, k, mu):
            raise InputError(f"T = {T}, k = {k}: step T + k = {T + k} lies past the mu = {mu} optimizer steps each "
                             f"batch is used for; choose T >= 2 and T + k <= {mu}")
        table = [{"k": j, "C_Tk": overshoot_ratio(T, j, beta1, beta2)} for j in range(k + 1)]
        n_after = (mu - T) if mu is not None else None
        drift = (sum(overshoot_ratio(T, j, beta1, beta2) for j in range(n_after + 1)) if n_after is not None
                 else limit)
        later = (sum(rho ** (j + 1) for j in range(n_after + 1)) if n_after is not None else limit)
    exposed = v.ratio in (Ratio.TOKEN, Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT) and v.clipped
    what = "s_i" if v.sequence_level else "s_(i,t)"
    sides = ([f"{what} > 1 + {v.eps_up:g} with A_i > 0"] if v.eps_up is not None else []) + \
            ([f"{what} < 1 - {v.eps_low:g} with A_i < 0"] if v.eps_low is not None else [])
    if exposed:
        reason = (f"the clipped branch has zero advantage gradient ({' or '.join(sides)}); once every contribution "
                  f"reaching a parameter is clipped, Adam keeps moving it: the step k updates later is C_(T,k) times "
                  f"the last pre-clip step (Prop. 7), about rho^(k+1), rho = beta1/sqrt(beta2) = {rho:.4f}")
        if len(sides) == 1:
            reason += ("; with a clip on one side only, the completions of the other advantage sign keep their "
                       "gradient, so a parameter they reach never sees a zero advantage gradient")
    elif v.ratio is Ratio.SG_WEIGHT:
        reason = "the clip acts on a stop-gradient weight sg[clip(I)]: the gradient alpha clip(I) A always flows"
    elif v.ratio is Ratio.LOGPROB:
        reason = "no ratio and no clip: the gradient alpha A never vanishes"
    else:
        reason = "no clip bound: no zero-gradient region (and nothing holds the ratio near 1 either)"
    if mu == 1:
        reason += "; with mu = 1 optimizer step per sampled batch the ratio is 1 at that step and clipping never acts"
    elif mu is not None and exposed:
        reason += (f"; with mu = {mu} optimizer steps per batch the first step has s = 1, so the gradient can vanish "
                   f"from inner step T = 2 on at the earliest: at most mu - 1 = {mu - 1} zero-gradient step(s) "
                   "(T..mu) before the next batch resets the ratios")
    return {"exposed": exposed, "region": sides if exposed else [], "reason": reason, "T": T, "k": k,
            "beta1": beta1, "beta2": beta2, "mu": mu, "C_Tk": table[-1]["C_Tk"] if table else None, "table": table,
            "rho": rho, "total_drift": drift, "later_batches_drift": later, "drift_unbounded_mu": limit,
            "formula": "C_(T,k) = b1^(k+1) (1 - b1^(T-1))/(1 - b1^(T+k)) sqrt((1 - b2^(T+k))/(b2^(k+1) (1 - b2^(T-1))))"}


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
    if sp.cancel(v.alpha_with_params().subs(_MASKS)) == 0:
        raise InputError(f"variant {v.name!r}: the weight is identically zero; there is nothing to check")
    expr, args = generic_gradient(v)
    omega = effective_coefficient(v)
    grad = {"expr": str(expr), "latex": sp.latex(expr), "args": [str(a) for a in args],
            "branches": gradient_branches(v), "legend": ratio_legend(v),
            "omega": plain(omega), "omega_latex": sp.latex(omega), "alpha": plain(v.alpha), "alpha_latex": sp.latex(v.alpha)}
    return Verdicts(v.name, sigma, grad, _prefix(v, omega, sigma), _loss(v, sigma), _reward_scale(v, grad_clip, sigma),
                    _overshoot(v, T, k, beta1, beta2, mu), equivalents(v, match_alpha))
