"""Momentum overshoot past the clip boundary (arXiv 2601.05002, Props 3 and 7, App. D).

When every contribution to a coordinate's advantage gradient is clipped from inner step T on
(g_T = g_{T+1} = ... = 0, beta = 0, no weight decay), canonical Adam keeps moving:
m_{T+k} = beta1^(k+1) m_{T-1} and v_{T+k} = beta2^(k+1) v_{T-1}, so the preconditioned step
k steps after clipping is C_{T,k} times the last pre-clip step (eps neglected)::

    C_{T,k} = beta1^(k+1) (1 - beta1^(T-1)) / (1 - beta1^(T+k))
              * sqrt( (1 - beta2^(T+k)) / (beta2^(k+1) (1 - beta2^(T-1))) )

For large T, C_{T,k} ~ rho^(k+1) with rho = beta1 / sqrt(beta2), and the total drift after
clipping, in units of the last pre-clip step, is sum_k rho^(k+1) = rho / (1 - rho).
The SymPy derivation of these formulas is :mod:`grpo_proofs.props.overshoot.derive`; this module
holds their float evaluation and the canonical one-logit example :func:`clip_toy`.

>>> round(overshoot_ratio(5, 4, 0.9, 0.95), 6)      # C_{5,4}; the large-T value rho^5 is 0.67128
0.532063
>>> round(overshoot_total(0.9, 0.95), 4)            # rho/(1-rho), rho = 0.9/sqrt(0.95)
12.0515
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import InputError

__all__ = ["overshoot_ratio", "overshoot_ratio_eps", "overshoot_total", "clip_toy", "ToyRun", "run_clip_toy", "tv_toy"]


def _beta(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputError(f"{name} must be a number in (0, 1), got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and 0.0 < v < 1.0):
        raise InputError(f"{name} must lie strictly between 0 and 1 (e.g. 0.9), got {value!r}")
    return v


def _whole(value, name: str, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} must be a whole number >= {lowest}, got {value!r}")
    if value < lowest:
        raise InputError(f"{name} must be >= {lowest}, got {value}")
    return int(value)


def _one_minus_pow(b: float, n: int) -> float:
    """1 - b^n without cancellation for b close to 1."""
    return -math.expm1(n * math.log(b))


def _log_factors(T: int, k: int, b1: float, b2: float) -> tuple[float, float]:
    """(log first-moment factor, log q, q the sqrt second-moment factor); C_{T,k} = exp of their sum.

    In logs, so that beta^(k+1) underflowing for large k (0.95^20000) neither divides by zero nor
    loses the product, which is ~rho^(k+1).
    """
    first = (k + 1) * math.log(b1) + math.log(_one_minus_pow(b1, T - 1)) - math.log(_one_minus_pow(b1, T + k))
    q = 0.5 * (math.log(_one_minus_pow(b2, T + k)) - (k + 1) * math.log(b2) - math.log(_one_minus_pow(b2, T - 1)))
    return first, q


def overshoot_ratio(T: int, k: int, beta1: float, beta2: float) -> float:
    """C_{T,k}: Adam's step k steps after the gradient vanished, over the last pre-clip step.

    C_{T,k} = beta1^(k+1) (1-beta1^(T-1))/(1-beta1^(T+k)) * sqrt((1-beta2^(T+k))/(beta2^(k+1) (1-beta2^(T-1))))
    (arXiv 2601.05002, App. D, Prop. 7; eps neglected). The gradient is zero from inner step T
    on; T - 1 >= 1 is the last step with a gradient, so T >= 2. For T = 2, k = 0 it reduces to
    beta1/(1+beta1) * sqrt((1+beta2)/beta2): 2/3 at beta1 = 1/2, beta2 = 1/3.

    Args:
        T: first step with zero gradient (whole number >= 2).
        k: steps after T (whole number >= 0); k = 0 is the step at T itself.
        beta1, beta2: Adam's decay rates, each in (0, 1).

    >>> round(overshoot_ratio(2, 0, 0.5, 1 / 3), 12)
    0.666666666667
    """
    T = _whole(T, "T", 2)
    k = _whole(k, "k", 0)
    first, q = _log_factors(T, k, _beta(beta1, "beta1"), _beta(beta2, "beta2"))
    return math.exp(first + q)


def overshoot_ratio_eps(T: int, k: int, beta1: float, beta2: float, eps: float, sqrt_vhat):
    """C_{T,k} with Adam's eps kept: C_{T,k} (r + eps) / (r + q eps) per coordinate.

    The step is m_hat / (sqrt(v_hat) + eps). With r = sqrt(v_hat_{T-1}) and
    sqrt(v_hat_{T+k}) = r / q, where q = sqrt((1-beta2^(T+k))/(beta2^(k+1)(1-beta2^(T-1)))) is the
    second-moment factor of C_{T,k}, the exact ratio is
    C_{T,k} (1 + eps/sqrt(v_hat_{T-1})) / (1 + eps/sqrt(v_hat_{T+k})) = C_{T,k} (r + eps)/(r + q eps)
    (derived in :mod:`grpo_proofs.props.overshoot.derive`). Note: the factor
    (sqrt(v_hat_{T-1}) + eps)/(sqrt(v_hat_{T+k}) + eps) multiplies the first-moment factor of
    C_{T,k}, not C_{T,k} itself (that would give C_{T,k} q at eps = 0). ``sqrt_vhat`` may be an
    array (one value per coordinate); eps = 0 gives :func:`overshoot_ratio`.

    >>> round(float(overshoot_ratio_eps(2, 0, 0.5, 1 / 3, 0.0, 1.0)), 12)
    0.666666666667
    """
    T = _whole(T, "T", 2)
    k = _whole(k, "k", 0)
    eps = float(eps)
    if not (math.isfinite(eps) and eps >= 0):
        raise InputError(f"eps must be a finite number >= 0, got {eps!r}")
    log_first, log_q = _log_factors(T, k, _beta(beta1, "beta1"), _beta(beta2, "beta2"))
    r = np.asarray(sqrt_vhat, dtype=np.float64)
    if np.any(~np.isfinite(r)) or np.any(r < 0) or (eps == 0 and np.any(r == 0)):
        raise InputError("sqrt_vhat must be finite and >= 0 (and > 0 when eps = 0)")
    # C (r + eps)/(r + q eps) = first (r + eps)/(r/q + eps): finite even where q overflows
    return math.exp(log_first) * (r + eps) / (r * math.exp(-log_q) + eps)


def overshoot_total(beta1: float, beta2: float) -> float:
    """Total drift after clipping, in last pre-clip steps: sum_{k>=0} rho^(k+1) = rho/(1-rho).

    rho = beta1/sqrt(beta2) (large-T limit of C_{T,0}). The series diverges when
    rho >= 1 (beta1^2 >= beta2): the result is then ``inf``.

    >>> overshoot_total(0.25, 0.25)
    1.0
    """
    b1, b2 = _beta(beta1, "beta1"), _beta(beta2, "beta2")
    rho = b1 / math.sqrt(b2)
    return rho / (1.0 - rho) if rho < 1.0 else math.inf


@dataclass(frozen=True)
class ToyRun:
    """One run of :func:`clip_toy`: per step t = 1..steps, the logit z_t after the step, the
    ratio s_t = sigmoid(z_t)/p_old, and the autograd gradient d loss/dz at z_{t-1}."""

    z0: float
    z: list[float]
    s: list[float]
    grad: list[float]


def run_clip_toy(optimizer: str = "adam", lr: float = 0.1, betas=(0.9, 0.999), eps: float = 1e-8,
                 momentum: float = 0.0, steps: int = 16, clip: float = 0.2, p_old: float = 0.5,
                 advantage: float = 1.0) -> ToyRun:
    """:func:`clip_toy` with the logits and the gradients kept (same arguments)."""
    if optimizer not in ("adam", "sgd"):
        raise InputError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    steps = _whole(steps, "steps", 1)
    lr, eps, momentum, clip, p_old, advantage = (float(v) for v in (lr, eps, momentum, clip, p_old, advantage))
    if not (math.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be > 0, got {lr!r}")
    if not (math.isfinite(eps) and eps >= 0):
        raise InputError(f"eps must be >= 0, got {eps!r}")
    if not (0.0 <= momentum < 1.0):
        raise InputError(f"momentum must lie in [0, 1), got {momentum!r}")
    if not (0.0 < clip < 1.0):
        raise InputError(f"clip must lie in (0, 1), e.g. 0.2; got {clip!r}")
    if not (0.0 < p_old < 1.0):
        raise InputError(f"p_old must lie in (0, 1), got {p_old!r}")
    if not math.isfinite(advantage):
        raise InputError(f"advantage must be finite, got {advantage!r}")
    if optimizer == "adam" and (len(betas) != 2 or not all(0.0 <= float(b) < 1.0 for b in betas)):
        raise InputError(f"betas must be two numbers in [0, 1), got {betas!r}")

    import torch  # the toys only: the closed forms above run without it

    z = torch.tensor(math.log(p_old / (1.0 - p_old)), dtype=torch.float64, requires_grad=True)
    z0 = float(z.detach())
    if optimizer == "adam":
        opt = torch.optim.Adam([z], lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps)
    else:
        opt = torch.optim.SGD([z], lr=lr, momentum=momentum)
    log_old = math.log(p_old)
    zs, ss, gs = [], [], []
    for _ in range(steps):
        opt.zero_grad()
        s = torch.exp(torch.nn.functional.logsigmoid(z) - log_old)  # pi_theta(1) / pi_old(1)
        clipped = torch.clamp(s, 1.0 - clip, 1.0 + clip)
        loss = -torch.minimum(s * advantage, clipped * advantage)
        loss.backward()
        gs.append(float(z.grad))
        opt.step()
        with torch.no_grad():
            zs.append(float(z))
            ss.append(float(torch.exp(torch.nn.functional.logsigmoid(z) - log_old)))
    return ToyRun(z0, zs, ss, gs)


def tv_toy(lr: float = 0.1, betas=(0.9, 0.999), eps: float = 1e-8, steps: int = 30, p_old: float = 0.5,
           delta: float = 0.2, advantage: float = 1.0) -> dict:
    """DPPO's binary-TV mask on the one-logit toy, with ``torch.optim.Adam``: the loss -(1 - M) s A with
    M = 1 once p - p_old > delta (A > 0), a constant. Returns the logits after each step, the autograd
    gradients and the sqrt(v_hat) Adam holds after each step (read from the optimizer's state)."""
    import torch

    z = torch.tensor(math.log(p_old / (1 - p_old)), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([z], lr=lr, betas=betas, eps=eps)
    zs, gs, rv = [], [], []
    for t in range(1, steps + 1):
        opt.zero_grad()
        p = torch.sigmoid(z)
        keep = (~((advantage > 0) & (p - p_old > delta) | (advantage < 0) & (p - p_old < -delta))).to(z.dtype)
        (-(keep.detach() * p / p_old * advantage)).backward()  # DPPO: -(1 - M) s A, s = p / p_old
        gs.append(float(z.grad))
        opt.step()
        zs.append(float(z.detach()))
        st = opt.state[z]
        rv.append(math.sqrt(float(st["exp_avg_sq"]) / (1 - betas[1] ** t)))
    return {"z": zs, "grad": gs, "sqrt_vhat": rv, "z0": math.log(p_old / (1 - p_old))}


def clip_toy(optimizer: str = "adam", lr: float = 0.1, betas=(0.9, 0.999), eps: float = 1e-8,
             momentum: float = 0.0, steps: int = 16, clip: float = 0.2, p_old: float = 0.5,
             advantage: float = 1.0) -> list[float]:
    """The canonical one-logit example of Prop. 3: the ratio s after each optimizer step.

    A Bernoulli policy pi(1) = sigmoid(z) starts at z = logit(p_old); action 1 was sampled with
    advantage A; the loss is -min(s A, clip(s, 1-clip, 1+clip) A) with s = sigmoid(z)/p_old
    (arXiv 2601.05002, Eq. 1 for one token). A real ``torch.optim.Adam`` (``"adam"``: betas, eps)
    or ``torch.optim.SGD`` (``"sgd"``: momentum) takes ``steps`` steps on z in float64. Once
    s > 1+clip (A > 0) the gradient is exactly zero; SGD stops there, Adam keeps moving z by
    C_{T,k} times its last pre-clip step (see :func:`overshoot_ratio`).

    Returns:
        the ratio s_t after step t, for t = 1..steps.

    >>> s = clip_toy("sgd", lr=1.0, steps=8)
    >>> s[-1] == s[-2] > 1.2   # SGD stops at the first step past the bound
    True
    >>> clip_toy("adam", steps=16)[-1] > 1.4   # Adam drifts far past 1.2
    True
    """
    return run_clip_toy(optimizer, lr, betas, eps, momentum, steps, clip, p_old, advantage).s
