"""Adam / AdamW written out by hand, and the exact effect of a reward scale on their step.

The canonical recurrences (Kingma & Ba 2015; decoupled weight decay of Loshchilov & Hutter 2019,
the order ``torch.optim.AdamW`` uses), per coordinate, from m_0 = v_0 = 0::

    m_t = beta_1 m_{t-1} + (1 - beta_1) g_t          m_hat_t = m_t / (1 - beta_1^t)
    v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2        v_hat_t = v_t / (1 - beta_2^t)
    theta_t = theta_{t-1} (1 - eta lambda) - eta m_hat_t / (sqrt(v_hat_t) + eps)

The last term is the *preconditioned step*; the decay term -eta lambda theta_{t-1} does not depend
on the gradients. If every gradient is scaled, g_t -> phi g_t, then m -> phi m and
v -> phi^2 v (arXiv 2601.05002, Prop. 6), so the preconditioned step is multiplied by

    R(phi, eps, v_hat) = phi (sqrt(v_hat) + eps) / (|phi| sqrt(v_hat) + eps)

which for phi > 0 is the paper's factor (1 + eps/sqrt(v_hat)) / (1 + eps/(phi sqrt(v_hat)))
(Prop. 2, App. C) and tends to 1 as eps/(phi sqrt(v_hat)) -> 0. ``v_hat`` is the *unscaled*
run's bias-corrected second moment.

:class:`AdamRecurrence` works on float64 numpy arrays and, given ``sqrt=mp_sqrt``, on numpy
object arrays of ``mpmath.mpf`` (the 50-digit checks); it shares no code with ``torch.optim``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from ..errors import InputError

__all__ = ["adam_step_ratio", "noninvariant_threshold", "AdamRecurrence", "mp_sqrt", "first_moment", "second_moment",
           "second_moment_after", "preconditioned_steps", "clip_by_norm", "TORCH_CLIP_GUARD"]

#: ``torch.nn.utils.clip_grad_norm_`` divides the max norm by ||g|| + 1e-6
TORCH_CLIP_GUARD = 1e-6


def clip_by_norm(g: np.ndarray, max_norm: float) -> tuple[np.ndarray, bool]:
    """torch's ``clip_grad_norm_`` on one flat gradient: g min(1, c/(||g|| + 1e-6)), and whether it changed g.

    >>> clip_by_norm(np.array([3.0, 4.0]), 1.0)[1], clip_by_norm(np.array([0.3, 0.4]), 1.0)
    (True, (array([0.3, 0.4]), False))
    """
    coef = max_norm / (float(np.linalg.norm(g)) + TORCH_CLIP_GUARD)
    return (g * coef, True) if coef < 1.0 else (g, False)


def _check_phi_eps(phi: float, eps: float) -> tuple[float, float]:
    try:
        phi, eps = float(phi), float(eps)
    except (TypeError, ValueError):
        raise InputError("phi and eps must be numbers") from None
    if not math.isfinite(phi) or phi == 0.0:
        raise InputError(f"the reward scale phi must be a finite nonzero number, got {phi!r}")
    if not math.isfinite(eps) or eps < 0.0:
        raise InputError(f"Adam's eps must be finite and >= 0 (eps = 0 is the exact-invariance limit), got {eps!r}")
    return phi, eps


def adam_step_ratio(phi: float, eps: float, v_hat):
    """Exact ratio of the scaled to the unscaled preconditioned Adam step, per coordinate.

    R = phi (sqrt(v_hat) + eps) / (|phi| sqrt(v_hat) + eps); for phi > 0 this equals
    (1 + eps/sqrt(v_hat)) / (1 + eps/(phi sqrt(v_hat))) (arXiv 2601.05002, Prop. 2, App. C).

    Args:
        phi: the reward scale (finite, nonzero; phi < 0 gives the flipped step, R -> -1).
        eps: Adam's epsilon, >= 0. eps = 0 is the exact-invariance limit: R = sign(phi).
        v_hat: the unscaled run's bias-corrected second moment (scalar or array, >= 0).
            Where v_hat = 0 the value is the limit v_hat -> 0+: phi if eps > 0, sign(phi) if eps = 0.

    Returns:
        a float for a scalar ``v_hat``, else a float64 array of its shape.

    Raises:
        InputError: phi zero or not finite, eps negative or not finite, v_hat negative or not finite.

    >>> adam_step_ratio(3.0, 1.0, 1.0)    # 3 (1 + 1) / (3 + 1)
    1.5
    >>> adam_step_ratio(100.0, 0.0, 4.0), adam_step_ratio(-2.0, 0.0, 4.0)
    (1.0, -1.0)
    """
    phi, eps = _check_phi_eps(phi, eps)
    scalar = np.ndim(v_hat) == 0
    try:
        v = np.asarray(v_hat, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("v_hat must be a number or an array of numbers") from None
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise InputError("v_hat must be finite and >= 0 (it is a bias-corrected second moment)")
    s = np.sqrt(v)
    num, den = phi * (s + eps), abs(phi) * s + eps
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), math.copysign(1.0, phi) if eps == 0 else phi)
    return float(out) if scalar else out


def noninvariant_threshold(phi: float, eps: float, tol: float) -> float:
    """sqrt(v_hat) below which the step changes by more than ``tol`` relative: |R - 1| > tol.

    For phi > 0, R - 1 = eps (phi - 1) / (phi sqrt(v_hat) + eps), so |R - 1| > tol exactly when
    sqrt(v_hat) < eps (|phi - 1| - tol) / (tol phi) (0 if |phi - 1| <= tol). For phi < 0, R < 0 and
    |R - 1| > 1: every coordinate changes (``inf``); 0 < tol < 1. At step 1, sqrt(v_hat) = |g_1|.

    >>> noninvariant_threshold(3.0, 1.0, 0.5)   # 1 (2 - 0.5) / (0.5 * 3); R(3, 1, 1) - 1 = 0.5
    1.0
    """
    phi, eps = _check_phi_eps(phi, eps)
    if not (math.isfinite(tol) and 0 < tol < 1):
        raise InputError(f"the relative-change threshold must lie in (0, 1), got {tol!r}")
    if phi < 0:
        return math.inf
    return max(0.0, eps * (abs(phi - 1) - tol) / (tol * phi))


def first_moment(m_prev, g, beta1):
    """m_t = beta_1 m_{t-1} + (1 - beta_1) g_t: floats, arrays, ``mpf`` or SymPy expressions alike.

    >>> first_moment(0.0, 2.0, 0.5)
    1.0
    """
    return beta1 * m_prev + (1 - beta1) * g


def second_moment(v_prev, g, beta2):
    """v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2: floats, arrays, ``mpf`` or SymPy expressions alike.

    >>> second_moment(0.0, 2.0, 0.5)
    2.0
    """
    return beta2 * v_prev + (1 - beta2) * g**2


def second_moment_after(grads, beta2, *, corrected: bool = False):
    """v_t after the gradients g_1..g_t from v_0 = 0 (``corrected``: v_hat_t = v_t / (1 - beta_2^t)).

    Args:
        grads: the gradients in order, each a number or an array (all of one shape); t = len(grads) >= 1.
        beta2: Adam's beta_2; an ``mpf`` (with ``mpf`` gradients) runs the recurrence in mpmath.

    >>> second_moment_after([2.0, 2.0], 0.5, corrected=True)   # v_2 = 3, 1 - beta_2^2 = 3/4
    4.0
    """
    if len(grads) == 0:
        raise InputError("the second moment needs at least one gradient")
    v = second_moment(0, grads[0], beta2)
    for g in grads[1:]:
        v = second_moment(v, g, beta2)
    return v / (1 - beta2 ** len(grads)) if corrected else v


def mp_sqrt(x: np.ndarray) -> np.ndarray:
    """Elementwise ``mpmath.sqrt`` on a numpy object array of ``mpf`` (current ``mp.dps``)."""
    return np.array([mpmath.sqrt(e) for e in np.ravel(x)], dtype=object).reshape(np.shape(x))


class AdamRecurrence:
    """Adam (``weight_decay=0``) or AdamW, one coordinate array, by the textbook recurrence.

    ``step(theta, g)`` returns ``(theta_new, precond)`` with
    precond = -lr m_hat / (sqrt(v_hat) + eps) and theta_new = theta (1 - lr wd) + precond.
    After a step, ``m``, ``v``, ``m_hat``, ``v_hat`` and ``t`` hold the state.

    >>> opt = AdamRecurrence(lr=0.5, beta1=0.5, beta2=0.5, eps=0.0)
    >>> theta, step = opt.step(np.array([1.0]), np.array([-2.0]))  # m_hat = g, v_hat = g^2
    >>> theta.tolist(), step.tolist()
    ([1.5], [0.5])
    """

    def __init__(self, lr, beta1, beta2, eps, weight_decay=0, sqrt=np.sqrt) -> None:
        if not (0 <= float(beta1) < 1 and 0 <= float(beta2) < 1):
            raise InputError(f"Adam's betas must lie in [0, 1), got ({beta1}, {beta2})")
        if not float(eps) >= 0:
            raise InputError(f"Adam's eps must be >= 0, got {eps}")
        self.lr, self.beta1, self.beta2, self.eps, self.wd, self.sqrt = lr, beta1, beta2, eps, weight_decay, sqrt
        self.m = self.v = self.m_hat = self.v_hat = None
        self.t = 0

    def step(self, theta: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.m is None:
            self.m, self.v = g * 0, g * 0
        self.t += 1
        self.m = first_moment(self.m, g, self.beta1)
        self.v = second_moment(self.v, g, self.beta2)
        self.m_hat = self.m / (1 - self.beta1 ** self.t)
        self.v_hat = self.v / (1 - self.beta2 ** self.t)
        precond = -self.lr * self.m_hat / (self.sqrt(self.v_hat) + self.eps)
        return theta * (1 - self.lr * self.wd) + precond, precond


def preconditioned_steps(grads, *, lr, beta1, beta2, eps, weight_decay=0.0) -> tuple[list, list]:
    """The steps -lr m_hat/(sqrt(v_hat) + eps) of :class:`AdamRecurrence` fed ``grads`` in turn, and v_hat after
    each (taken at theta = 0, so AdamW's decay drops out: what the paired runs read from torch's optimizer)."""
    opt = AdamRecurrence(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
    steps, v_hat = [], []
    for g in grads:
        steps.append(opt.step(np.zeros_like(g), g)[1])
        v_hat.append(opt.v_hat)
    return steps, v_hat
