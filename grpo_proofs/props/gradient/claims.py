"""Claim ``eq15-gradient``: the SymPy-derived gradient equals autograd of the reference losses.

Three computations of dJ/d log pi_theta(y_{i,t}) that share nothing but their inputs:

1. the per-token gradient SymPy derives from the unified surrogate, compiled to Torch
   (:func:`grpo_proofs.evaluate.token_gradient`);
2. the whole-group gradient SymPy derives for a concrete group, evaluated numerically
   (:func:`grpo_proofs.gradient.group_gradient`, small groups only: it is exact but slow);
3. ``torch.autograd`` through the hand-written reference loss of each method
   (:mod:`grpo_proofs.reference`), negated because the reference returns the loss -J.

Random groups cover G = 2..16, lengths 1..64, tied and untied rewards, and ratios on every clip
branch, kept at least a tenth of eps away from each bound (where the subgradient is a
convention, see :mod:`grpo_proofs.compile`). Limits: at s = 1 the gradient is alpha A; with eps
-> infinity the clipped gradient equals the unclipped one.

The registered formulations beyond Table 1 are covered the same way: DPPO's TV mask with token
probabilities p_old in [0.3, 0.7] and p on each side of p_old +- delta_tv (at least a tenth of
delta_tv away from it), TOPR's and VESPO's sequence weights with the sequence ratio drawn like a
sequence-level ratio (both sides of 1).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ... import notation as n
from ...checking import tolerances
from ...evaluate import token_gradient
from ...gradient import group_gradient
from ...runtime.numerics import rel_err
from ...objective import group_numbers, surrogate
from ...variants import VARIANTS, Ratio, Variant
from ...checking import Context, Outcome, claim
from .api import random_group, random_old, reference_gradient, surrogate_autograd, without_clip

__all__ = ["symbolic_group_gradient", "check_variant"]


def symbolic_group_gradient(v: Variant, rewards, lengths, log_ratios, sigma: str = "pop", old=None) -> list[np.ndarray]:
    """The exact group gradient of SymPy, evaluated at the given numbers (``old``: log pi_old per
    token, for the terms that read it; default log pi_old = -2)."""
    grp = surrogate(v, lengths)
    num = group_numbers(v, rewards, lengths, sigma=sigma)
    subs = {sym: sp.Float(a, 30) for sym, a in zip(grp.A, num.A)}
    subs.update(n.DEFAULT_MASKS)  # as in group_numbers
    if num.sigma is not None:
        subs[n.sigma] = sp.Float(num.sigma, 30)
    out = []
    for i, (xi, gi, lr) in enumerate(zip(grp.x, group_gradient(grp), log_ratios)):
        point = dict(subs)
        point.update({xs: sp.Float(val, 30) for xs, val in zip(xi, lr)})
        if grp.old:
            oi = old[i] if old is not None else np.full(len(xi), -2.0)
            point.update({os_: sp.Float(val, 30) for os_, val in zip(grp.old[i], oi)})
        out.append(np.array([float(expr.xreplace(point)) for expr in gi]))
    return out


def check_variant(v: Variant, rewards, lengths, log_ratios, sigma: str = "pop", symbolic: bool = False,
                  old=None) -> float:
    """Largest relative error between the derived gradient and the independent computations
    (reference autograd; the exact group gradient if ``symbolic``), and between the derived
    gradient and autograd of the compiled surrogate that real models are trained on. ``old``:
    log pi_old per token, given to every path (needed by terms that read pi_old itself)."""
    kw = {"old_logp": old} if v.needs_old_logp else {}
    derived = token_gradient(v, rewards, lengths, log_ratios, sigma=sigma, **kw)
    err = rel_err(derived, reference_gradient(v.name, rewards, lengths, log_ratios, sigma, old=old))
    err = max(err, rel_err(surrogate_autograd(v, rewards, lengths, log_ratios, sigma, old=old), derived))
    if symbolic:
        err = max(err, rel_err(derived, symbolic_group_gradient(v, rewards, lengths, log_ratios, sigma, old=old)))
    return err


@claim(
    "eq15-gradient",
    title="Gradient of the unified surrogate (Eq. 13-15, 28)",
    page="gradient",
    statement=(
        "For every Table 1 method, dJ/d log pi_theta(y_{i,t}) = alpha_{i,t} A_i s_{i,t} on the unclipped "
        "branch (with the method's ratio kind) and 0 on the clipped branch; the SymPy-derived gradient "
        "equals autograd of an independent reference loss. The same holds for the registered formulations "
        "beyond Table 1 (CFPO, DPPO-TV, UP, TOPR, LUSPO, SAPO, VESPO, STARE, WAPO), each with its own term."
    ),
    kind="numeric",
)
def check_eq15(ctx: Context) -> Outcome:
    rng = np.random.default_rng(ctx.seed)
    n_groups = 3 if ctx.quick else 12
    worst, where, compared = 0.0, "", 0
    for name, v in VARIANTS.items():
        for k in range(n_groups):
            compared += 1
            rewards, lengths, lr = random_group(rng, v, G=3 if k == 0 else None, max_len=8 if k == 0 else 64)
            old, lr = random_old(rng, v, lr)
            sigma = "sample" if k % 2 else "pop"
            err = check_variant(v, rewards, lengths, lr, sigma, symbolic=(k == 0), old=old)
            if err > worst:
                worst, where = err, f"{name} (G={len(lengths)})"
        # limits: s = 1 gives alpha A; eps -> infinity removes clipping
        rewards, lengths, lr = random_group(rng, v)
        num = group_numbers(v, rewards, lengths)
        at_one = token_gradient(v, rewards, lengths)
        per_token = [np.full_like(a, a.sum() * A) if v.ratio is Ratio.SEQ_PRODUCT else a * A for a, A in zip(num.alpha, num.A)]
        worst = max(worst, rel_err(at_one, per_token))
        if v.clipped:
            wide = v.replace(eps_low=1e18 if v.eps_low is not None else None, eps_up=1e18 if v.eps_up is not None else None)
            unclipped = without_clip(v)
            worst = max(worst, rel_err(token_gradient(wide, rewards, lengths, lr), token_gradient(unclipped, rewards, lengths, lr)))
    detail = f"{compared} random groups compared (derived vs reference autograd vs compiled surrogate)" + (
        f"; worst: {where}" if where else "")
    return Outcome(worst, tolerances.CLOSED_FORM, detail=detail,
                   data={"groups_per_variant": n_groups, "compared": compared, "variants": len(VARIANTS)})
