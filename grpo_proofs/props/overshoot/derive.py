"""Props 3 and 7 (arXiv 2601.05002, Sec. 5, App. D): momentum overshoot past the clip boundary.

The derivation, in SymPy, from the canonical Adam recurrences (torch.optim.Adam semantics)

    m_t = beta1 m_{t-1} + (1 - beta1) g_t,   v_t = beta2 v_{t-1} + (1 - beta2) g_t^2,
    step_t = (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 - beta2^t)) + eps)

with g_t = 0 for t >= T (every contribution clipped, beta = 0, no weight decay):

* m_{T+k} = beta1^(k+1) m_{T-1}, v_{T+k} = beta2^(k+1) v_{T-1} (induction on k);
* step_{T+k} / step_{T-1} = C_{T,k} (eps = 0), compared as a zero difference with the paper's form;
* C_{T,k} -> rho^(k+1), rho = beta1/sqrt(beta2), as T -> oo; the eps factor; sum_k rho^(k+1) = rho/(1-rho);
* heavy-ball SGD (torch.optim.SGD, dampening 0): buf_{T+k} = mu^(k+1) buf_{T-1}.

The bias corrections 1 - beta^t are carried as positive functions c_1(t), c_2(t) (positive for
0 < beta < 1, t >= 1), so SymPy may split square roots; they are replaced by 1 - beta^t at the end.
Numeric claims evaluate the derived expression (mpmath, 40 digits), never :mod:`grpo_proofs.props.overshoot.api`.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ... import notation as n
from ...runtime.adam import first_moment, second_moment

__all__ = [
    "c1", "c2", "adam_m", "adam_v", "adam_step", "explicit", "theory_ratio", "moments_after_clip", "derived_ratio",
    "ratio_residues", "limit_ratio", "total_drift", "momentum_ratio", "b1", "b2", "T", "k", "m", "v", "eps", "rho", "mu",
]

b1, b2, T, k, m, v, eps, rho, mu = (n.beta1, n.beta2, n.T_clip, n.k_after, n.m_prev, n.v_prev,
                                     n.eps_adam, n.rho, n.momentum)
#: bias corrections c_1(t) = 1 - beta1^t, c_2(t) = 1 - beta2^t (positive for t >= 1)
c1 = sp.Function("c_1", positive=True)
c2 = sp.Function("c_2", positive=True)
_t = sp.Symbol("t", integer=True, positive=True)


def adam_m(m_prev: sp.Expr, g: sp.Expr) -> sp.Expr:
    """m_t = beta1 m_{t-1} + (1 - beta1) g_t (:func:`grpo_proofs.runtime.adam.first_moment`, on symbols)."""
    return first_moment(m_prev, g, b1)


def adam_v(v_prev: sp.Expr, g: sp.Expr) -> sp.Expr:
    """v_t = beta2 v_{t-1} + (1 - beta2) g_t^2 (:func:`grpo_proofs.runtime.adam.second_moment`, on symbols)."""
    return second_moment(v_prev, g, b2)


def adam_step(t: sp.Expr, m_t: sp.Expr, v_t: sp.Expr, e: sp.Expr = 0) -> sp.Expr:
    """Preconditioned step m_hat_t / (sqrt(v_hat_t) + eps) (the update is -lr times it)."""
    return (m_t / c1(t)) / (sp.sqrt(v_t / c2(t)) + e)


def explicit(expr: sp.Expr) -> sp.Expr:
    """Replace c_1(t), c_2(t) by 1 - beta1^t, 1 - beta2^t."""
    return expr.replace(c1, sp.Lambda(_t, 1 - b1**_t)).replace(c2, sp.Lambda(_t, 1 - b2**_t))


def theory_ratio(one_minus=None) -> sp.Expr:
    """paper App. D, typed by hand: C_{T,k} with one_minus(beta, t) = 1 - beta^t."""
    om = one_minus or (lambda beta, tt: (c1 if beta is b1 else c2)(tt))
    return (b1 ** (k + 1) * om(b1, T - 1) / om(b1, T + k)
            * sp.sqrt(om(b2, T + k) / (b2 ** (k + 1) * om(b2, T - 1))))


def moments_after_clip() -> tuple[sp.Expr, sp.Expr, list[sp.Expr]]:
    """(m_{T+k}, v_{T+k}) and the residues proving them by induction on k (all must be 0)."""
    m_k, v_k = b1 ** (k + 1) * m, b2 ** (k + 1) * v
    res = [
        adam_m(m, 0) - m_k.subs(k, 0),                              # base case k = 0: g_T = 0
        adam_v(v, 0) - v_k.subs(k, 0),
        sp.powsimp(adam_m(m_k, 0) - m_k.subs(k, k + 1)),            # k -> k + 1: g_{T+k+1} = 0
        sp.powsimp(adam_v(v_k, 0) - v_k.subs(k, k + 1)),
    ]
    mm, vv = m, v                                                   # literal unrolling, k = 0..5
    for kk in range(6):
        mm, vv = adam_m(mm, 0), adam_v(vv, 0)
        res += [sp.expand(mm - m_k.subs(k, kk)), sp.expand(vv - v_k.subs(k, kk))]
    return m_k, v_k, res


def derived_ratio(with_eps: bool = False) -> sp.Expr:
    """step_{T+k} / step_{T-1} from the recurrences (in c_1, c_2; see :func:`explicit`)."""
    m_k, v_k, _ = moments_after_clip()
    e = eps if with_eps else 0
    return adam_step(T + k, m_k, v_k, e) / adam_step(T - 1, m, v, e)


@lru_cache(maxsize=None)
def ratio_residues() -> dict[str, sp.Expr]:
    """Every identity of the derivation as a simplified difference (all zero when it holds)."""
    _, _, ind = moments_after_clip()
    out = {f"induction[{i}]": r for i, r in enumerate(ind)}
    C = theory_ratio()
    out["C_{T,k} derived - paper"] = sp.cancel(sp.powsimp(derived_ratio() - C))
    # eps kept: C_{T,k} (1 + eps/sqrt(vhat_{T-1})) / (1 + eps/sqrt(vhat_{T+k})), and the per-coordinate
    # form C (r + eps)/(r + q eps); b2 = w^2 (w > 0) makes every power of b2 an integer power of w
    w = sp.Symbol("w", positive=True)
    vh_prev, vh_k = v / c2(T - 1), b2 ** (k + 1) * v / c2(T + k)
    factor = (1 + eps / sp.sqrt(vh_prev)) / (1 + eps / sp.sqrt(vh_k))
    r, q = sp.sqrt(vh_prev), sp.sqrt(c2(T + k) / (b2 ** (k + 1) * c2(T - 1)))
    for name, diff in (("eps ratio - C * factor", derived_ratio(True) - C * factor),
                       ("eps factor - (r+eps)/(r+q eps)", factor - (r + eps) / (r + q * eps))):
        out[name] = sp.cancel(sp.powsimp(sp.together(diff.subs(b2, w**2))))
    out["eps -> 0"] = sp.cancel(derived_ratio(True).subs(eps, 0) - C)
    # T -> oo: beta^T -> 0 for 0 < beta < 1 and C is continuous there (denominators -> 1)
    lim = limit_ratio()
    out["lim C_{T,k} - rho^(k+1)"] = sp.powsimp(sp.expand_power_base(lim - (b1 / sp.sqrt(b2)) ** (k + 1)))
    num = {b1: sp.Rational(9, 10), b2: sp.Rational(19, 20), k: 4}
    out["sympy limit at (0.9, 0.95), k=4"] = sp.nsimplify(
        sp.limit(explicit(C).subs(num), T, sp.oo) - lim.subs(num))
    drift, cond = total_drift()
    out["sum rho^(k+1) - rho/(1-rho)"] = sp.cancel(drift - rho / (1 - rho))
    out["convergence condition rho < 1"] = sp.S.Zero if cond == (rho < 1) else sp.S.One
    # heavy-ball SGD, buf_t = mu buf_{t-1} + g_t with g = 0 from T on, against momentum_ratio() (the
    # formula the momentum claim runs): base case k = 0, the step k -> k + 1, and literal unrolling
    buf = sp.Symbol("b_{T-1}", real=True)
    ratio = momentum_ratio()
    out["momentum base case"] = sp.powsimp(mu * buf + 0 - ratio.subs(k, 0) * buf)
    out["momentum induction"] = sp.powsimp(mu * (ratio * buf) + 0 - ratio.subs(k, k + 1) * buf)
    bb = buf
    for kk in range(6):
        bb = mu * bb + 0
        out[f"momentum unrolled k={kk}"] = sp.expand(bb - ratio.subs(k, kk) * buf)
    return out


def limit_ratio() -> sp.Expr:
    """lim_{T->oo} C_{T,k}: substitute beta^T = x and let x -> 0 (continuous at x = 0)."""
    x1, x2 = sp.symbols("x_1 x_2", nonnegative=True)
    expr = sp.expand_power_exp(explicit(theory_ratio()))
    expr = expr.subs({b1**T: x1, b2**T: x2})
    if expr.has(T):
        raise RuntimeError("beta^T was not isolated")
    return sp.powsimp(expr.subs({x1: 0, x2: 0}))


def total_drift() -> tuple[sp.Expr, sp.Basic]:
    """sum_{k>=0} rho^(k+1) by SymPy, and the condition under which it converges."""
    pw = sp.piecewise_fold(sp.summation(rho ** (k + 1), (k, 0, sp.oo)))
    expr, cond = pw.args[0]
    return expr, cond


def momentum_ratio() -> sp.Expr:
    """Heavy-ball SGD: step_{T+k} / step_{T-1} = mu^(k+1) (torch.optim.SGD, dampening 0)."""
    return mu ** (k + 1)
