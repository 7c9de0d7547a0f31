"""SAPO: hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} (4/tau_i) sigmoid(tau_i (s_{i,t} - 1)) A_i
    tau_i = tau_pos if A_i > 0 else tau_neg,   alpha_{i,t} = 1/(G |o_i| sigma(r))

Source: Gao et al. 2025, "Soft Adaptive Policy Optimization", arXiv 2511.20347, as TRL 1.16.0
implements it (``trl/trainer/grpo_trainer.py``, ``loss_type == "sapo"``:
``torch.sigmoid(temperatures * (coef_1 - 1)) * 4 / temperatures``, aggregated like ``"grpo"``).
The loss is -J. A formulation published after arXiv 2601.05002 (beyond its Table 1), written as
that paper's Eq. 1 (beta = 0) with another per-token term or weight.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss", "TAU_POS", "TAU_NEG"]

TAU_POS = 1.0  # TRL 1.16.0 GRPOConfig.sapo_temperature_pos default
TAU_NEG = 1.05  # TRL 1.16.0 GRPOConfig.sapo_temperature_neg default


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (beta = 0) for SAPO.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std, no constant added; ``masks``: none for this method.

    At s = 1 the gate's slope is (4/tau) tau / 4 = 1, so the gradient of the loss is GRPO's
    -alpha_{i,t} A_i: each completion's total is -A_i/(G sigma) (A = +-1/2, sigma = 1/2 below):
    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> [round(g, 12) + 0.0 for g in logp.grad.sum(1).tolist()]
    [-0.25, 0.25, -0.25, 0.25]
    >>> logp.grad[mask == 0].abs().max().item()
    0.0
    """
    r = torch.as_tensor(rewards, dtype=logp.dtype)  # r_i, the group's rewards
    if sigma not in ("pop", "sample"):
        raise InputError(f"sigma must be 'pop' or 'sample', got {sigma!r}")
    if not (logp.ndim == 2 and logp.shape == old_logp.shape == mask.shape and r.shape == logp.shape[:1]):
        raise InputError(f"need (G, T) logp/old_logp/mask and (G,) rewards; got {tuple(logp.shape)}, "
                         f"{tuple(old_logp.shape)}, {tuple(mask.shape)}, {tuple(r.shape)}")
    if logp.shape[0] < 2 or bool((mask.sum(1) < 1).any()):
        raise InputError("need G >= 2 completions, each with at least one real token (mask row sum >= 1)")
    if masks:
        raise InputError(f"sapo has no mask symbols; got masks {sorted(masks)}; pass masks=None")
    on = mask > 0  # t <= |o_i|: the token range of the sums
    G = logp.shape[0]  # G: completions in the group
    L = mask.sum(1)  # |o_i|: completion lengths
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (any 1/sigma sits in alpha)
    sd = r.std(correction=0 if sigma == "pop" else 1)  # sigma(r): population or sample std, no constant
    if sd == 0:
        raise InputError("all rewards are equal, so sigma(r) = 0 and alpha = 1/sigma is undefined")
    w = 1 / (G * L * sd)  # GRPO's weight alpha^S_i = 1/(G |o_i| sigma(r)) (arXiv 2601.05002, Table 1)
    alpha = torch.where(on, w[:, None], 0.0)  # alpha_{i,t} on real tokens, 0 on padding
    x = torch.where(on, logp - old_logp, 0.0)  # log s_{i,t}; padding junk never reaches exp
    s = torch.exp(x)  # s_{i,t} = pi_theta/pi_old per token
    tau = torch.where(A > 0, torch.full_like(A, TAU_POS), torch.full_like(A, TAU_NEG))[:, None]  # SAPO: tau by sign of A
    gate = torch.sigmoid(tau * (s - 1)) * 4 / tau  # SAPO: the soft gate (4/tau) sigmoid(tau (s - 1))
    J = (alpha * gate * A[:, None]).sum()  # sum_i sum_t alpha gate A_i, beta = 0
    return -J  # the loss minimised: -J
