"""unsloth_zoo 2026.10.9 as an oracle: its own ``grpo_compute_loss``.

Unsloth's GRPO trainer patches TRL's and computes the policy loss in
``unsloth_zoo/rl_replacements.py::grpo_compute_loss`` (per-token log-probs in, the step's loss out;
TRL computes the advantages). The package's ``__init__`` needs a GPU and triton, so the one
function is compiled from the installed file by :func:`~.loading.release_function`, with the names
its body uses (``torch``, ``math``) bound; nothing is copied into this project.
"""

from __future__ import annotations

import math

import torch

from .loading import release_function

__all__ = ["VERSION", "grpo_compute_loss", "loss_and_grad"]

VERSION = "2026.10.9"


def grpo_compute_loss():
    """The release's ``grpo_compute_loss``, compiled from its installed file."""
    return release_function("unsloth_zoo", VERSION, "rl_replacements.py", "grpo_compute_loss",
                            {"torch": torch, "math": math})


def loss_and_grad(logp, old, advantages, mask, **kwargs) -> tuple[float, torch.Tensor]:
    """Unsloth's loss on one batch (beta = 0 unless given, no vLLM, TRL's default ``loss_type`` dapo with
    ``num_items_in_batch`` = the batch's completion tokens unless given) and d loss / d logp."""
    fn = grpo_compute_loss()
    new = torch.as_tensor(logp, dtype=torch.float64).clone().requires_grad_(True)
    mask = torch.as_tensor(mask, dtype=torch.float64)
    kwargs.setdefault("loss_type", "dapo")
    kwargs.setdefault("num_items_in_batch", mask.sum())
    beta = kwargs.pop("beta", 0.0)
    loss = fn(None, new, torch.as_tensor(old, dtype=torch.float64), None,
              torch.zeros(new.shape, dtype=torch.long), mask, beta, torch.as_tensor(advantages, dtype=torch.float64),
              **kwargs)[0]
    (grad,) = torch.autograd.grad(loss, new)
    return float(loss.detach()), grad
