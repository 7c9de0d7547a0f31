"""Propositions 5, 6 and 2 in numbers: torch.optim.Adam's own state under scaled gradients."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["moment_scaling_error", "moment_scaling_errors"]


def moment_scaling_error(seed: int = 0, steps: int = 20, phis=(1e-3, 0.1, -3.0, 10.0, 1e3)) -> float:
    """Largest of :func:`moment_scaling_errors`."""
    return float(np.max(moment_scaling_errors(seed, steps, phis)))


def moment_scaling_errors(seed: int = 0, steps: int = 20, phis=(1e-3, 0.1, -3.0, 10.0, 1e3)) -> np.ndarray:
    """Relative errors of torch.optim.Adam's ``exp_avg`` / ``exp_avg_sq`` after ``steps`` gradients scaled by phi
    against phi m_t and phi^2 v_t of the unscaled run (Prop. 6), one per coordinate, moment and phi of ``phis``
    (shape (2 len(phis) 50,)); 50 float64 coordinates with gradients spread over ten decades."""
    rng = np.random.default_rng(seed)
    errors = []
    for phi in phis:
        grads = rng.normal(size=(steps, 50)) * 10.0 ** rng.uniform(-9, 1, size=(steps, 50))
        states = []
        for scale in (1.0, phi):
            p = torch.nn.Parameter(torch.zeros(50, dtype=torch.float64))
            opt = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
            for g in grads:
                p.grad = torch.as_tensor(scale * g)
                opt.step()
            st = opt.state[p]
            states.append((st["exp_avg"].numpy().copy(), st["exp_avg_sq"].numpy().copy()))
        (m1, v1), (mp, vp) = states
        errors += [np.abs(mp - phi * m1) / np.abs(phi * m1), np.abs(vp - phi**2 * v1) / (phi**2 * v1)]
    return np.concatenate(errors)
