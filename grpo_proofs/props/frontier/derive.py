"""CFPO against Prop. 3, derived in SymPy (no numbers, no Torch).

CFPO (Cagatan et al. 2026, arXiv 2601.22801) replaces the clipped term by
phi = s A - |A| (s - 1)^2/(2 eps) (:func:`grpo_proofs.terms.phi_parts`). Its gradient in the
log-ratio x = log s vanishes at s* = 1 + sgn(A) eps and changes sign there: past the point where
PPO-clip's gradient is exactly zero (Prop. 3's premise), CFPO's pushes back with the slope kappa.

* :func:`loss_gradient_x` -- d(-phi)/dx, from the project's surrogate (SymPy differentiation);
* :func:`restoring_point` -- s* and kappa = d^2(-phi)/dx^2 at s*, for each sign of A;
* :func:`toy_gradient` -- the one-logit toy of the overshoot page (pi(1) = sigmoid(z), s = pi(1)/p_old):
  d(-phi)/dz and its slope kappa_z at the restoring point;
* :func:`linear_post_boundary` -- Adam after the boundary with v_hat frozen and the gradient kappa d
  (d the distance past the point): the 2x2 linear map of (m, d), its characteristic polynomial
  lambda^2 - (1 + beta1 - q) lambda + beta1 (q = lr (1 - beta1) kappa / sqrt(v_hat)), determinant beta1.
"""

from __future__ import annotations

import sympy as sp

from ... import notation as n
from ...terms import lold, phi_parts
from ...variants import get_variant

__all__ = ["loss_gradient_x", "written_gradient_x", "restoring_point", "toy_loss_gradient", "prefix_W_sign_weights",
           "sapo_gate_slope", "S_P", "c_w", "k_stare", "restoring_values", "toy_values", "prefix_values",
           "sapo_slope_value", "toy_gradient", "linear_post_boundary", "z", "p_old", "q_stiff",
           "kappa", "lam_root"]

#: the toy's logit, pi_old(1), the restoring slope, the stiffness q and an eigenvalue
z = sp.Symbol("z", real=True)
p_old = sp.Symbol("p_old", positive=True)
kappa = sp.Symbol("kappa", positive=True)
q_stiff = sp.Symbol("q", positive=True)
lam_root = sp.Symbol("lambda", complex=True)
_A = sp.Symbol("A", positive=True)  # |A|; the sign is chosen per case


def loss_gradient_x(sign: int = 1, eps: float = 0.2) -> sp.Expr:
    """d(-phi)/dx for CFPO (clip scale ``eps`` on both sides) with advantage sgn(A) |A|, |A| the positive
    symbol ``A``: SymPy's derivative of the project's surrogate term (:func:`grpo_proofs.terms.phi_parts`).

    >>> loss_gradient_x(1)
    5*A*exp(2*x) - 6*A*exp(x)
    """
    v = get_variant("cfpo").replace(eps_low=eps, eps_up=eps)
    term, stop = phi_parts(v, n.x, sign * _A, lold)
    return sp.expand(-sp.diff(term, n.x).subs(stop))


def written_gradient_x(sign: int, eps: sp.Expr) -> sp.Expr:
    """The same gradient with a symbolic ``eps``, written from the paper's term: -s (sgn A |A| - |A| (s - 1)/eps).
    (The claim checks it equals :func:`loss_gradient_x` at numeric eps.)"""
    s = sp.exp(n.x)
    return sp.expand(-s * (sign * _A - _A * (s - 1) / eps))


def restoring_point(sign: int = 1, eps: sp.Expr | float = 0.2) -> dict:
    """s* where CFPO's gradient vanishes (s != 0) and the slope kappa = d/dx of d(-phi)/dx there.

    A > 0: s* = 1 + eps, kappa = |A| (1 + eps)^2/eps; A < 0: s* = 1 - eps, kappa = |A| (1 - eps)^2/eps.
    A float ``eps`` differentiates the project's surrogate, a symbol the written form.

    >>> restoring_point(1)["kappa"], restoring_point(-1)["s_star"]
    (36*A/5, 4/5)
    """
    g = loss_gradient_x(sign, eps) if isinstance(eps, float) else written_gradient_x(sign, eps)
    s_sym = sp.Symbol("s", positive=True)
    roots = [r for r in sp.solve(sp.Eq(g.subs(sp.exp(n.x), s_sym).subs(sp.exp(2 * n.x), s_sym ** 2), 0), s_sym) if r != 0]
    (star,) = roots
    slope = sp.diff(g, n.x).subs(n.x, sp.log(star))
    return {"s_star": sp.simplify(star), "kappa": sp.factor(sp.simplify(slope)), "gradient_x": g}


def toy_gradient(eps: sp.Expr = sp.Rational(1, 5)) -> dict:
    """The one-logit toy under CFPO (A > 0): d(-phi)/dz with s = sigmoid(z)/p_old, the logit z* of the
    restoring point and the slope kappa_z there (= kappa_x (1 - p_old (1 + eps))^2: the chain rule's
    second term carries the zero gradient).

    >>> toy_gradient()["kappa_z"]
    36*A*(6*p_old - 5)**2/125
    """
    sig = 1 / (1 + sp.exp(-z))
    x_of_z = sp.log(sig) - sp.log(p_old)
    g_z = sp.simplify(written_gradient_x(1, eps).subs(n.x, x_of_z) * sp.diff(x_of_z, z))
    z_star = sp.log(p_old * (1 + eps) / (1 - p_old * (1 + eps)))
    slope = sp.simplify(sp.diff(g_z, z).subs(z, z_star))
    return {"g_z": g_z, "z_star": z_star, "kappa_z": sp.factor(slope)}


def linear_post_boundary() -> dict:
    """Adam past the restoring point, v_hat frozen, bias correction done (large T), gradient kappa d:

        m_t = beta1 m_{t-1} + (1 - beta1) kappa d_{t-1},   d_t = d_{t-1} - h m_t,   h = lr / sqrt(v_hat)

    The map of (m, d) has trace 1 + beta1 - q and determinant beta1 (q = h (1 - beta1) kappa): its
    eigenvalues are complex (the excursion turns back and rings) when (1 + beta1 - q)^2 < 4 beta1, with
    modulus sqrt(beta1); with kappa = 0 (PPO-clip's zero gradient) they are 1 and beta1: the momentum
    decays by beta1 and d keeps growing, the drift of Prop. 7.

    >>> r = linear_post_boundary()
    >>> r["trace"], r["det"], r["roots_kappa0"]
    (beta_1 - q + 1, beta_1, [1, beta_1])
    """
    h = sp.Symbol("h", positive=True)
    b1 = n.beta1
    mat = sp.Matrix([[b1, (1 - b1) * kappa], [-h * b1, 1 - h * (1 - b1) * kappa]])
    mat_q = mat.subs(kappa, q_stiff / (h * (1 - b1)))
    det, tr = sp.simplify(mat_q.det()), sp.simplify(mat_q.trace())
    poly = sp.expand(lam_root ** 2 - tr * lam_root + det)
    return {"matrix": mat, "matrix_q": mat_q, "trace": tr, "det": det, "charpoly": poly,
            "ring_condition": (1 + b1 - q_stiff) ** 2 - 4 * b1 < 0,
            "roots_kappa0": sp.solve(poly.subs(q_stiff, 0), lam_root)}


def toy_loss_gradient(name: str, p: float = 0.5, advantage: float = 1.0) -> sp.Expr:
    """d loss/dz of the one-logit toy for a registered token-level variant (``"grpo"``: PPO-clip, ``"cfpo"``),
    loss = -phi(s, A) with s = sigmoid(z)/p_old: SymPy's derivative of the project's surrogate term.

    >>> toy_loss_gradient("cfpo").subs(z, 0)
    -1/2
    """
    v = get_variant(name)
    term, stop = phi_parts(v, n.x, sp.nsimplify(advantage), lold)
    x_of_z = sp.log(1 / (1 + sp.exp(-z))) - sp.log(sp.nsimplify(p))
    return -(sp.diff(term, n.x).subs(stop)).subs(n.x, x_of_z) * sp.diff(x_of_z, z)


#: STARE's extra weight on selected tokens (1 + k for A > 0, 1 - k for A < 0)
k_stare = sp.Rational(1, 10)
#: sum of the positive advantages of a group, S_P = sum_(A_i > 0) A_i = -sum_(A_i < 0) A_i = sum_i |A_i| / 2
S_P = sp.Symbol("S_P", positive=True)
c_w = sp.Symbol("c", positive=True)


def prefix_W_sign_weights() -> dict:
    """W on a token shared by the whole group, first inner step, uniform base weight c, every token
    selected (STARE) -- sign-dependent weights break the cancellation although c is uniform:

    STARE: (1 + k) S_P + (1 - k)(-S_P) = 2 k S_P (times c);   WAPO: S_P (times c).

    >>> prefix_W_sign_weights()["stare"], prefix_W_sign_weights()["wapo"]
    (S_P*c/5, S_P*c)
    """
    pos, neg = S_P, -S_P  # sum over A > 0 and over A < 0 (they cancel: sum_i A_i = 0)
    return {"stare": sp.expand(c_w * ((1 + k_stare) * pos + (1 - k_stare) * neg)),
            "wapo": sp.expand(c_w * (1 * pos + 0 * neg)),
            "uniform": sp.expand(c_w * (pos + neg))}


def sapo_gate_slope() -> sp.Expr:
    """d/dx of SAPO's gate (4/tau) sigmoid(tau (exp(x) - 1)), per unit A, as a function of s = exp(x) and tau:
    4 s sigma(z) (1 - sigma(z)), z = tau (s - 1); equal to 1 at s = 1 for every tau.

    >>> sp.simplify(sapo_gate_slope().subs(sp.Symbol("s", positive=True), 1))
    1
    """
    tau, s = sp.Symbol("tau", positive=True), sp.Symbol("s", positive=True)
    d = sp.diff(4 / tau / (1 + sp.exp(-tau * (sp.exp(n.x) - 1))), n.x)
    return sp.simplify(d.subs(sp.exp(n.x), s))


# -- the derived values as plain numbers, for the claims (which import no SymPy) --------------------------


def restoring_values(sign: int, abs_A: float) -> dict:
    """s*, kappa at |A| = ``abs_A`` (eps = 0.2, the surrogate's derivative) and the written form's kappa at
    eps = 1/5 minus the surrogate's (0 exactly), as Python numbers."""
    rp = restoring_point(sign)
    e = sp.Symbol("e", positive=True)
    general = restoring_point(sign, e)
    diff = sp.simplify(general["kappa"].subs(e, sp.Rational(1, 5)) - rp["kappa"])
    return {"s_star": float(rp["s_star"]), "kappa": float(rp["kappa"].subs(_A, abs_A)), "written_minus": float(diff.subs(_A, 1)),
            "kappa_expr": str(rp["kappa"]), "s_star_expr": str(rp["s_star"])}


def toy_values(p: float, abs_A: float = 1.0) -> tuple[float, float]:
    """(z*, kappa_z) of the one-logit toy at p_old = ``p`` as numbers."""
    toy = toy_gradient()
    return float(toy["z_star"].subs(p_old, p)), float(toy["kappa_z"].subs({p_old: p, _A: abs_A}))


def prefix_values(c: float, s_pos: float) -> dict:
    """STARE's and WAPO's W of :func:`prefix_W_sign_weights` at base weight ``c`` and S_P = ``s_pos``."""
    return {k: float(v.subs({c_w: c, S_P: s_pos})) for k, v in prefix_W_sign_weights().items()}


def sapo_slope_value(tau: float, s: float) -> float:
    """SAPO's gate slope of :func:`sapo_gate_slope` at (tau, s) as a number."""
    return float(sapo_gate_slope().subs({sp.Symbol("tau", positive=True): tau, sp.Symbol("s", positive=True): s}))
