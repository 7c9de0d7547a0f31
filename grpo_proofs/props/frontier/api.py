"""CFPO against Prop. 3 in numbers: the exact Adam recurrence on the derived gradient (no SymPy, no autograd).

* :func:`post_boundary_excursion` -- Prop. 3's setting with CFPO's restoring gradient: T - 1 steps with a
  constant gradient -g0, then the gradient kappa (theta - theta*) from step T on (theta* where the first
  zero-gradient step of PPO-clip would start). The excursion past theta*, in units of the last step
  before it, as a function of (beta1, beta2, eps/g0, c = lr kappa/g0, T); c = 0 is PPO-clip's drift
  sum_k C_(T,k) (Prop. 7), which tends to rho/(1 - rho).
* :func:`toy_predicted` -- the one-logit toy: ``grpo_proofs.runtime.adam.AdamRecurrence`` on the toy's
  SymPy-derived gradient (compiled by :mod:`grpo_proofs.compile`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ...runtime.adam import AdamRecurrence
from ...compile import to_torch
from ...errors import InputError
from . import derive

__all__ = ["Excursion", "post_boundary_excursion", "toy_predicted", "toy_excursion", "STIFFNESS"]

#: dimensionless restoring stiffness c = lr kappa / g0 of the page's table
STIFFNESS = (0.0, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class Excursion:
    """The excursion past theta* (units: the last step before it), the step of its maximum (k after T)
    and where theta ends (units as above)."""

    peak: float
    k_peak: int
    final: float
    trajectory: tuple[float, ...]


def post_boundary_excursion(beta1: float, beta2: float, eps_over_g0: float = 0.0, stiffness: float = 0.0,
                            T: int = 200, steps: int = 2000) -> Excursion:
    """theta after each step from T on, in units of the last pre-boundary step, for g = c (theta - theta*)/lr
    (g0 = 1, lr = 1: only c = lr kappa/g0 and eps/g0 matter).

    >>> from grpo_proofs.props.overshoot.api import overshoot_ratio
    >>> e = post_boundary_excursion(0.9, 0.999, T=50, steps=400)
    >>> abs(e.peak - sum(overshoot_ratio(50, k, 0.9, 0.999) for k in range(400))) < 1e-9
    True
    """
    if not (T >= 2 and steps >= 1 and stiffness >= 0 and eps_over_g0 >= 0):
        raise InputError("need T >= 2, steps >= 1, stiffness >= 0 and eps/g0 >= 0")
    opt = AdamRecurrence(lr=1.0, beta1=beta1, beta2=beta2, eps=eps_over_g0)
    theta, last = np.zeros(1), 0.0
    for _ in range(T - 1):  # steps 1..T-1: the constant gradient -g0 (pushing theta up)
        new, step = opt.step(theta, np.array([-1.0]))
        theta, last = new, float(step[0])
    star, out = float(theta[0]), []
    for _ in range(steps):  # steps T, T+1, ...: the restoring gradient c (theta - theta*) (0: PPO-clip)
        theta, _ = opt.step(theta, np.array([stiffness * (float(theta[0]) - star)]))
        out.append((float(theta[0]) - star) / last)
    k = int(np.argmax(out))
    return Excursion(float(out[k]), k, float(out[-1]), tuple(out))


@lru_cache(maxsize=16)
def _toy_grad(name: str, p: float, advantage: float):
    return to_torch([derive.z], derive.toy_loss_gradient(name, p, advantage))


def toy_predicted(name: str, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, steps: int = 60, p_old: float = 0.5,
                  advantage: float = 1.0) -> list[float]:
    """The toy's logit z after each step: the Adam recurrence on the derived d loss/dz of ``name``."""
    grad = _toy_grad(name, float(p_old), float(advantage))
    opt = AdamRecurrence(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps)
    zv = np.array([math.log(p_old / (1 - p_old))])
    out = []
    for _ in range(steps):
        g = float(grad(torch.tensor(float(zv[0]), dtype=torch.float64)))
        zv, _ = opt.step(zv, np.array([g]))
        out.append(float(zv[0]))
    return out


def toy_excursion(zs, p_old: float = 0.5, bound: float = 1.2) -> dict:
    """Past the ratio ``bound`` (1 + eps): the first step that crosses it, the step just before, and the peak
    excursion in logit units of that last step (z* = logit(p_old bound))."""
    z_star = math.log(p_old * bound / (1 - p_old * bound))
    z0 = math.log(p_old / (1 - p_old))
    zs = [z0] + list(zs)
    cross = next((t for t, v in enumerate(zs) if v > z_star), None)
    if cross is None or cross < 2:
        raise InputError("the trajectory never crosses the bound after at least two steps; raise lr or steps")
    last = zs[cross - 1] - zs[cross - 2]
    peak = max(zs) - z_star
    return {"cross": cross, "last_step": last, "peak": peak, "peak_steps": peak / last,
            "peak_ratio": 1 / (1 + math.exp(-max(zs))) / p_old, "final_ratio": 1 / (1 + math.exp(-zs[-1])) / p_old}
