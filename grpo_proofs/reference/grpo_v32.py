"""GRPO (DeepSeek-V3.2): hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} min(s_{i,t} A_i, clip(s_{i,t}, 1-eps_low, 1+eps_up) A_i)
    alpha_{i,t} = M_{i,t}/(G |o_i|),   s_{i,t} = I_{i,t} = pi_theta/pi_old (per token)

Source: arXiv 2601.05002, Eq. 1 with beta = 0 and Table 1 (row "GRPO (DeepSeek-V3.2)");
the method is DeepSeek-AI 2025, DeepSeek-V3.2. M is the off-policy sequence mask. The loss is -J.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss", "EPS_LOW", "EPS_UP"]

EPS_LOW = 0.2  # registry value for GRPO (DeepSeek-V3.2): the GRPO symmetric clip 0.2 (Table 1, GRPO notes)
EPS_UP = 0.2  # registry value for GRPO (DeepSeek-V3.2): the GRPO symmetric clip 0.2 (Table 1, GRPO notes)


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (Eq. 1, beta = 0) for GRPO (DeepSeek-V3.2).

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std (unused: this method is centered only); ``masks``:
    ``{"M": (G, T) tensor}``, the off-policy mask M_{i,t}, all ones when not given.

    At s = 1 the gradient of the loss is -alpha_{i,t} A_i, so each completion's total is
    -M A_i/G whatever its length (A = +-1/2, M = 1 below):

    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> logp.grad.sum(1).tolist()
    [-0.125, 0.125, -0.125, 0.125]
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
    if set(masks or {}) - {"M"}:
        raise InputError(f"grpo_v32 takes only the mask 'M'; got masks {sorted(masks)}")
    M = torch.as_tensor((masks or {}).get("M", torch.ones_like(mask)), dtype=logp.dtype)  # M_{i,t}, 1 unless given
    if M.shape != mask.shape:
        raise InputError(f"mask M must have the (G, T) shape {tuple(mask.shape)}, got {tuple(M.shape)}")
    on = mask > 0  # t <= |o_i|: the token range of the sum in Eq. 1
    G = logp.shape[0]  # G: completions in the group (Eq. 1)
    L = mask.sum(1)  # |o_i|: completion lengths (Eq. 1)
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (Sec. 1; this method has no 1/sigma)
    w = 1 / (G * L)  # Table 1, GRPO (DeepSeek-V3.2) alpha column: 1/(G |o_i|), times M below
    alpha = torch.where(on, M * w[:, None], 0.0)  # alpha_{i,t} = M_{i,t}/(G |o_i|) on real tokens, 0 on padding
    x = torch.where(on, logp - old_logp, 0.0)  # log I_{i,t}; padding junk never reaches exp
    s = torch.exp(x)  # Table 1 s column: s_{i,t} = I = pi_theta/pi_old per token
    unclipped = s * A[:, None]  # Eq. 1: s_{i,t} A_i
    clipped = torch.clamp(s, 1 - EPS_LOW, 1 + EPS_UP) * A[:, None]  # Eq. 1: clip(s, 1-eps_low, 1+eps_up) A_i
    J = (alpha * torch.minimum(unclipped, clipped)).sum()  # Eq. 1: sum_i sum_t alpha_{i,t} min(...), beta = 0
    return -J  # the loss minimised: -J
