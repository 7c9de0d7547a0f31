"""Props. 5, 6, 2 asked of one variant: the degree of A_i omega_i under r -> phi r, and the verdict.

Under r -> phi r (phi > 0) the centered advantage scales by phi and sigma by phi, so the advantage
gradient A_i omega_i scales by phi^d (:func:`scale_degree`): d = 0 is invariant, unless a constant c
is added to sigma, which leaves the factor k = phi (sigma + c)/(phi sigma + c); a regulariser
(beta R) does not scale at all, so with beta > 0 the reward scale acts as an inverse regulariser
coefficient (beta/k). Adam undoes a uniform factor up to eps (Prop. 2).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.core.relational import Relational

from ... import notation as n
from ...variants import Variant, get_variant
from ...weights import group_sigma

__all__ = ["scale_degree", "scale_factor", "reward_scale_verdict", "CARD_PHIS"]


def scale_degree(variant) -> tuple[sp.Rational | None, str]:
    """(d, why): A_i omega_i -> phi^d A_i omega_i under A -> phi A, sigma -> phi sigma (phi > 0), or (None, why).

    Conditions (``ind``, ``Heaviside``) must be unchanged by the scale: their argument difference
    must be multiplied by a positive factor.

    >>> scale_degree("grpo")[0], scale_degree("dr_grpo")[0], scale_degree("cppo")[0]
    (0, 1, 0)
    """
    v = get_variant(variant)
    p = n.phi_pos
    f = n.A_i * v.alpha_with_params().subs(n.DEFAULT_MASKS)
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


def scale_factor(v, d, phi: float, r: np.ndarray, sigma_kind: str) -> float | None:
    """k: the advantage gradient at phi r over the one at r (None: no single factor).

    d = 0 (a std weight): k = phi (sigma + c)/(|phi| sigma + c), with the group's sigma
    (:func:`grpo_proofs.weights.group_sigma`) and the constant c added to it (k = 1 when c = 0;
    the value of ``advantage_scaling(v)["k"]``); d != 0: k = phi^d.

    >>> from grpo_proofs.variants import get_variant
    >>> v = get_variant("grpo").replace(sigma_eps=0.5)
    >>> scale_factor(v, 0, 2.0, np.array([0.0, 1.0]), "pop")   # sigma = 0.5: 2 (0.5 + 0.5)/(1 + 0.5)
    1.3333333333333333
    """
    if d is None:
        return None
    if d == 0:
        c, s = v.sigma_eps, group_sigma(np.asarray(r, dtype=np.float64), sigma_kind)
        return phi * (s + c) / (abs(phi) * s + c)
    return float(phi ** float(d))


def reward_scale_verdict(v: Variant, grad_clip, sigma: str = "pop", worked_rewards=(1, 0, 0, 1)) -> dict:
    """Props. 5, 6, 2 for ``v``: the verdict, why, what gradient-norm clipping does, and (for a std
    weight with a constant c added to sigma) the factor k per phi on the group ``worked_rewards``."""
    d, why = scale_degree(v)
    regularised = v.beta > 0 and v.regularizer.value != "none"
    c = v.sigma_eps
    factors = None
    if d == 0 and c > 0:
        factors = [{"phi": p, "k": scale_factor(v, d, p, worked_rewards, sigma)} for p in CARD_PHIS]
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
        reason += ("; k on the worked example group (sigma = " + f"{group_sigma(np.asarray(worked_rewards, dtype=np.float64), sigma):.4g}): "
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
