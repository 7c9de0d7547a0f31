"""Props 3 and 7 against real optimizers: the derived step ratio evaluated at numbers (mpmath, 40 digits, or
NumPy per coordinate) and compared with the steps torch.optim takes once every gradient vanishes.

The numbers come from :mod:`.derive` through the bridge (:mod:`grpo_proofs.compile`), never from
:mod:`.api`, so a slip in the hand-written closed form cannot cancel.
"""

from __future__ import annotations

from functools import lru_cache

import mpmath
import numpy as np
import torch

from ...compile import to_mpmath, to_numpy
from ...runtime.adam import second_moment_after
from .derive import b1, b2, derived_ratio, eps, explicit, k, T, v

__all__ = ["derived_value", "vhat_at", "relative_error", "premise_errors", "adam_zero_gradient_error",
           "adam_zero_gradient_errors"]


@lru_cache(maxsize=None)
def _derived_fn():
    expr = explicit(derived_ratio(with_eps=True))
    return to_mpmath((T, k, b1, b2, eps, v), expr)


def derived_value(T_: int, k_: int, beta1: float, beta2: float, eps_: float = 0.0, vhat_prev: float = 1.0) -> float:
    """The derived step_{T+k}/step_{T-1} at numbers (mpmath, 40 digits), with v_{T-1} given
    through v_hat_{T-1} = v_{T-1} / (1 - beta2^(T-1)); eps = 0 makes it C_{T,k}."""
    with mpmath.workdps(40):
        v_prev_ = mpmath.mpf(vhat_prev) * (1 - mpmath.mpf(beta2) ** (T_ - 1))
        return float(_derived_fn()(T_, k_, mpmath.mpf(beta1), mpmath.mpf(beta2), mpmath.mpf(eps_), v_prev_))


def vhat_at(grads, beta2: float, upto: int) -> float:
    """v_hat_{upto} from the recorded gradients by the canonical recurrence (mpmath, 40 digits)."""
    with mpmath.workdps(40):
        return float(second_moment_after([mpmath.mpf(g) for g in grads[:upto]], mpmath.mpf(beta2), corrected=True))


def relative_error(measured: float, predicted: float) -> float:
    return abs(measured - predicted) / abs(predicted)


@lru_cache(maxsize=None)
def _derived_np():
    return to_numpy((T, k, b1, b2, eps, v), explicit(derived_ratio(with_eps=True)))


def premise_errors(case: dict, T_: int) -> tuple[list[float], list[float]]:
    """Per k: max-norm relative error of the measured step T+k against the derived per-coordinate
    prediction ratio_k * step_{T-1} (eps kept; v_{T-1} from the recorded gradients by the canonical
    recurrence), and the same with eps neglected (C_{T,k} alone)."""
    b1_, b2_ = case["betas"]
    th = case["thetas"]
    steps = [th[t] - th[t - 1] for t in range(1, len(th))]
    vv = second_moment_after(case["grads"][:T_ - 1], b2_)
    last, with_eps, without = steps[T_ - 2], [], []
    for kk in range(len(steps) - T_ + 1):
        ratio = _derived_np()(T_, kk, b1_, b2_, case["eps"], vv)
        ratio = np.where(vv > 0, ratio, 0.0)          # coordinates never reached: m = v = 0, no step
        pred, pred0 = ratio * last, _derived_np()(T_, kk, b1_, b2_, 0.0, 1.0) * last
        meas = steps[T_ - 1 + kk]
        with_eps.append(float(np.abs(meas - pred).max() / np.abs(pred).max()))
        without.append(float(np.abs(meas - pred0).max() / np.abs(pred0).max()))
    return with_eps, without


def adam_zero_gradient_error(cases, K: int = 8, seed: int = 0) -> float:
    """Largest of :func:`adam_zero_gradient_errors`."""
    return max(adam_zero_gradient_errors(cases, K, seed))


def adam_zero_gradient_errors(cases, K: int = 8, seed: int = 0) -> list[float]:
    """Relative error of torch.optim.Adam's steps T-1+k (k < ``K``) against the derived ratio times its step T-1,
    one per coordinate and k, when every gradient is zero from step T on; ``cases``: (T, beta1, beta2), each with
    eps 0 and 1e-8, ten float64 coordinates with gradient scales 1e-9 .. 1 (2 x 10 x K errors per case)."""
    gen = torch.Generator().manual_seed(seed)
    errors = []
    for (T_, b1_, b2_) in cases:
        for e in (0.0, 1e-8):
            # coordinates with gradient scales 1e-9 .. 1: eps matters for the small ones
            scale = torch.logspace(-9, 0, 10, dtype=torch.float64)
            x = torch.zeros(10, dtype=torch.float64, requires_grad=True)
            opt = torch.optim.Adam([x], lr=1e-2, betas=(b1_, b2_), eps=e)
            grads, traj = [], [x.detach().clone()]
            for t in range(1, T_ + K + 1):
                g = (torch.randn(10, generator=gen, dtype=torch.float64) + 2.0) * scale if t < T_ else torch.zeros(10, dtype=torch.float64)
                grads.append(g)
                x.grad = g.clone()
                opt.step()
                traj.append(x.detach().clone())
            steps = [traj[t] - traj[t - 1] for t in range(1, len(traj))]   # steps[t-1] = step t
            for j in range(10):
                vh = vhat_at([float(g[j]) for g in grads], b2_, T_ - 1)
                for kk in range(K):
                    pred = derived_value(T_, kk, b1_, b2_, e, vh) * float(steps[T_ - 2][j])
                    errors.append(relative_error(float(steps[T_ - 1 + kk][j]), pred))
    return errors
