"""The input checks of the reward-scale report (``grpo-proofs scale``): importing this module loads no torch,
so bad input is refused before any model is built."""

from __future__ import annotations

import math

from ...errors import InputError
from ...runtime.choices import SCALE_OPTIMIZERS

__all__ = ["check_scale_inputs"]


def check_scale_inputs(phi, eps, beta, max_grad_norm, steps, optimizer) -> None:
    """One InputError line for each kind of bad input of :func:`scale_report`."""
    def finite(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    if not finite(phi) or phi == 0:
        raise InputError(f"--phi must be a finite nonzero number (phi = 0 removes the reward), got {phi!r}")
    if not finite(eps) or eps <= 0:
        raise InputError(f"--eps must be a finite number > 0 (torch.optim divides by sqrt(v_hat) + eps; the eps = 0 "
                         f"limit is checked at 50 digits by claim prop2-adam-invariance-50-digits), got {eps!r}")
    if not finite(beta) or beta < 0:
        raise InputError(f"--beta must be a finite number >= 0, got {beta!r}")
    if max_grad_norm is not None and (not finite(max_grad_norm) or max_grad_norm <= 0):
        raise InputError(f"--max-grad-norm must be a finite number > 0, got {max_grad_norm!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"--steps must be a whole number >= 1, got {steps!r}")
    if optimizer not in SCALE_OPTIMIZERS:
        raise InputError(f"--optimizer must be one of {', '.join(SCALE_OPTIMIZERS)}, got {optimizer!r}")
