"""The per-token term phi(s, A) of the unified surrogate (arXiv 2601.05002, Eq. 1) and the later terms.

Eq. 1's term is ``min(s A, clip(s, 1 - eps_low, 1 + eps_up) A)`` (:func:`phi_expr`, :func:`clip_expr`;
:func:`past_clip` says where the clip zeroes the gradient). :func:`phi_parts` writes the term of any
variant in the log-ratio x and log pi_old, with its stop-gradient placeholders: GPG's A log pi,
CISPO's sg[clip(I)] A log pi, and the terms of :class:`~grpo_proofs.variants.Surrogate` published
after the paper (CFPO, DPPO's TV mask, UP, SAPO, TOPR's and VESPO's sequence weights).
:mod:`grpo_proofs.objective` builds the surrogate of a group from these terms.
"""

from __future__ import annotations

import math

import sympy as sp

from . import notation as n
from .variants import Ratio, Surrogate, Variant

__all__ = ["exact", "clip_expr", "past_clip", "phi_expr", "phi_parts", "seq_weight_expr", "lold", "w_sg", "m_sg",
           "z_sg"]


def exact(value: float) -> sp.Rational:
    """A float as the exact decimal it was written as (0.2 -> 1/5)."""
    return sp.Rational(repr(float(value)))


def clip_expr(v: Variant, s: sp.Expr) -> sp.Expr:
    """clip(s, 1 - eps_low, 1 + eps_up) with a missing side left open."""
    out = s
    if v.eps_low is not None:
        out = sp.Max(out, 1 - exact(v.eps_low))
    if v.eps_up is not None:
        out = sp.Min(out, 1 + exact(v.eps_up))
    return out


def past_clip(v: Variant, s, A):
    """The clipped branch, where the clip zeroes the gradient: s > 1 + eps_up with A > 0, or s < 1 - eps_low with
    A < 0 (a missing side never clips). ``s`` and ``A`` are NumPy arrays or Torch tensors that broadcast; the
    answer is a bool array of the same kind. Ratios of GPG and CISPO have no clip region: pass them only
    where the variant's ratio is clipped (:attr:`~grpo_proofs.variants.Variant.clipped`).

    >>> import numpy as np
    >>> from grpo_proofs.variants import get_variant
    >>> past_clip(get_variant("grpo"), np.array([1.5, 1.5, 0.5, 1.0]), np.array([1.0, -1.0, -1.0, 1.0])).tolist()
    [True, False, True, False]
    """
    never = s > float("inf")
    up = (s > 1 + v.eps_up) if v.eps_up is not None else never
    low = (s < 1 - v.eps_low) if v.eps_low is not None else never
    return ((A > 0) & up) | ((A < 0) & low)


def phi_expr(v: Variant, s: sp.Expr, A: sp.Expr) -> sp.Expr:
    """The per-token PPO term min(s A, clip(s) A) (plain s A without clipping)."""
    if not v.clipped:
        return s * A
    return sp.Min(s * A, clip_expr(v, s) * A)


#: log pi_old of one token (surrogates written on log pi itself: GPG, CISPO)
lold = sp.Symbol("lold", real=True)
#: stop-gradient placeholder sg[clip(I)] of one token (CISPO), sg[f(s_i)] of a sequence (TOPR, VESPO)
w_sg = sp.Symbol("w", positive=True)
#: stop-gradient placeholder sg[M] of DPPO's TV mask
m_sg = sp.Symbol("m", nonnegative=True)
#: stop-gradient placeholder sg[log pi] of UP's REINFORCE term exp(log pi - sg[log pi])
z_sg = sp.Symbol("z", real=True)


def _by_sign(A: sp.Expr, pos: float, neg: float) -> sp.Expr:
    """``pos`` where A > 0, ``neg`` where A < 0 (Heaviside form; every use multiplies by A, so A = 0 is moot)."""
    if pos == neg:
        return exact(pos)
    return exact(pos) * sp.Heaviside(A) + exact(neg) * sp.Heaviside(-A)


def seq_weight_expr(v: Variant, u: sp.Expr, A: sp.Expr) -> sp.Expr:
    """f(s_i, A) of a sequence stop-gradient weight, in u = log s_i = sum_t x_{i,t}.

    TOPR (arXiv 2503.14286): 1 for A >= 0, min(s_i, 1) for A < 0. VESPO (TRL 1.16.0
    ``get_gamma_weights``): exp(lam + k log w - lam w) with log w = clamp(u, log 1e-8, 20).

    >>> from grpo_proofs.variants import get_variant
    >>> seq_weight_expr(get_variant("vespo"), sp.Integer(0), sp.Integer(1))
    1
    """
    if v.surrogate is Surrogate.TAPER:
        return sp.Heaviside(A) + sp.Heaviside(-A) * sp.Min(sp.exp(u), 1)
    p = v.phi_params
    lw = sp.Min(sp.Max(u, exact(math.log(1e-8))), 20)  # TRL's clamp: math.log(1e-8) as written there
    k, lam = _by_sign(A, p["k_pos"], p["k_neg"]), _by_sign(A, p["lambda_pos"], p["lambda_neg"])
    return sp.exp(lam + k * lw - lam * sp.exp(lw))


def phi_parts(v: Variant, x: sp.Expr, A: sp.Expr, old: sp.Expr) -> tuple[sp.Expr, dict]:
    """The per-token term of J (maximised) in the log-ratio ``x`` and ``old`` = log pi_old, and its
    stop-gradient placeholders (substitute them only after differentiating).

    Eq. 1's clip, GPG's A log pi, CISPO's sg[clip(I)] A log pi, and the later terms of
    :class:`~grpo_proofs.variants.Surrogate`: CFPO s A - |A| (s - 1)^2/(2 eps); DPPO (1 - sg[M]) s A;
    UP A exp(x - sg[x]) for A > 0 and the clip otherwise; SAPO (4/tau) sigmoid(tau (s - 1)) A;
    TOPR, VESPO sg[f(s_i)] A log pi with f of :func:`seq_weight_expr` in the placeholder u.

    >>> from grpo_proofs.variants import get_variant
    >>> phi_parts(get_variant("cfpo"), n.x, n.A_i, lold)[0]
    A_i*exp(x) - 5*(exp(x) - 1)**2*Abs(A_i)/2
    """
    s = sp.exp(x)
    if v.ratio is Ratio.LOGPROB:
        return A * (x + old), {}
    if v.ratio is Ratio.SG_WEIGHT:
        return w_sg * A * (x + old), {w_sg: clip_expr(v, s)}
    if v.ratio is Ratio.SEQ_SG_WEIGHT:
        return w_sg * A * (x + old), {w_sg: seq_weight_expr(v, n.u, A)}
    kind = v.surrogate
    if kind is Surrogate.QUADRATIC:
        eps = _by_sign(A, v.eps_up, v.eps_low)
        return A * s - sp.Abs(A) * (s - 1) ** 2 / (2 * eps), {}
    if kind is Surrogate.TV_MASK:
        d = exact(v.phi_params["delta_tv"])
        p, p_old = sp.exp(x + old), sp.exp(old)
        mask = sp.Heaviside(A) * sp.Heaviside(p - p_old - d) + sp.Heaviside(-A) * sp.Heaviside(p_old - p - d)
        return (1 - m_sg) * s * A, {m_sg: mask}
    if kind is Surrogate.UP:
        return sp.Heaviside(A) * A * sp.exp(x - z_sg) + sp.Heaviside(-A) * phi_expr(v, s, A), {z_sg: x}
    if kind is Surrogate.SIGMOID:
        tau = _by_sign(A, v.phi_params["tau_pos"], v.phi_params["tau_neg"])
        return 4 / tau * A / (1 + sp.exp(-tau * (s - 1))), {}
    return phi_expr(v, s, A), {}
