"""The objectives the reward-scale runs train on: the compiled surrogate J, the same J written with the derived
per-token coefficients held fixed, and the k3 KL penalty."""

from __future__ import annotations

import numpy as np
import torch

from ...variants import Variant

__all__ = ["surrogate_J", "coefficient_J", "k3_penalty"]


def surrogate_J(variant: Variant, logp, old_logp, rewards, mask, sigma: str = "pop") -> torch.Tensor:
    """J of Eq. 1 (advantage part, to maximise) for one group: the project's compiled surrogate
    (:func:`grpo_proofs.evaluate.torch_surrogate`, sigma = std + the variant's ``sigma_eps``)."""
    from ...evaluate import torch_surrogate

    return torch_surrogate(variant, logp, old_logp, np.asarray(rewards, dtype=np.float64), mask, sigma=sigma)


def coefficient_J(variant: Variant, logp, old_logp, rewards, mask, sigma: str = "pop") -> torch.Tensor:
    """sum_(i,t) c_(i,t) log pi_(i,t) with c = dJ/dlog pi from :func:`grpo_proofs.evaluate.token_gradient`
    (the compiled symbolic gradient, flat, no autograd of the surrogate) at the current log-ratios:
    its gradient in theta is the surrogate's, by the chain rule, through an independent path."""
    from ...evaluate import token_gradient

    real = mask > 0
    lengths = real.sum(1).cpu().numpy()
    x = (logp - old_logp).detach().cpu().numpy()
    keep = real.cpu().numpy()
    c = token_gradient(variant, np.asarray(rewards, dtype=np.float64), lengths,
                       log_ratios=[x[i, keep[i]] for i in range(len(lengths))], sigma=sigma)
    C = torch.zeros_like(logp)
    for i, ci in enumerate(c):
        C[i, real[i]] = torch.as_tensor(ci, dtype=logp.dtype, device=logp.device)
    return (C.detach() * torch.where(real, logp, torch.zeros((), dtype=logp.dtype, device=logp.device))).sum()


def k3_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """R = sum_i 1/(G |o_i|) sum_t (exp(d) - d - 1), d = log pi_ref - log pi (k3 estimator, GRPO weights)."""
    d = torch.where(mask > 0, ref_logp - logp, 0.0)
    k3 = torch.exp(d) - d - 1
    return ((k3 * mask).sum(1) / mask.sum(1)).sum() / mask.shape[0]
