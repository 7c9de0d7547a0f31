"""CISPO: hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} sg[min(I_{i,t}, 1+eps_up)] A_i log pi_theta(y_{i,t}|x, y_{i,<t})
    alpha_{i,t} = M_{i,t}/(sigma(r) sum_j |o_j|),   I_{i,t} = pi_theta/pi_old, sg = stop-gradient

Source: arXiv 2601.05002, Eq. 1 with beta = 0 and Table 1 (row "CISPO"): the
clip acts on the stop-gradient weight, so the gradient always flows; the method is MiniMax 2025,
arXiv 2506.13585. The loss is -J.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss", "EPS_UP"]

EPS_UP = 4.0  # registry value for CISPO: the weight sg[I] is clipped at 1 + eps_up; no lower bound


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (Eq. 1, beta = 0) for CISPO.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std, no constant added; ``masks``: ``{"M": (G, T) tensor}``,
    the CISPO token mask M_{i,t}, all ones when not given.

    At s = 1 the gradient of the loss is -alpha_{i,t} A_i, so each completion's total is
    -M |o_i| A_i/(sigma sum_j |o_j|): it grows with the length (A = +-1/2, sigma = 1/2, M = 1 below):

    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> logp.grad.sum(1).tolist()
    [-0.125, 0.125, -0.25, 0.5]
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
        raise InputError(f"cispo takes only the mask 'M'; got masks {sorted(masks)}")
    M = torch.as_tensor((masks or {}).get("M", torch.ones_like(mask)), dtype=logp.dtype)  # M_{i,t}, 1 unless given
    if M.shape != mask.shape:
        raise InputError(f"mask M must have the (G, T) shape {tuple(mask.shape)}, got {tuple(M.shape)}")
    on = mask > 0  # t <= |o_i|: the token range of the sum in Eq. 1
    L = mask.sum(1)  # |o_i|: completion lengths (Eq. 1)
    L_sum = L.sum()  # sum_j |o_j|: tokens in the whole group (Table 1, CISPO row)
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (Sec. 1; 1/sigma sits in alpha)
    sd = r.std(correction=0 if sigma == "pop" else 1)  # sigma(r): population or sample std, no constant
    if sd == 0:
        raise InputError("all rewards are equal, so sigma(r) = 0 and alpha = 1/sigma is undefined")
    w = torch.ones_like(L) / (sd * L_sum)  # Table 1, CISPO alpha column: 1/(sigma(r) sum_j |o_j|), times M below
    alpha = torch.where(on, M * w[:, None], 0.0)  # alpha_{i,t} = M_{i,t}/(sigma sum_j |o_j|); 0 on padding
    x = torch.where(on, logp - old_logp, 0.0)  # log I_{i,t}; padding junk never reaches exp
    s = torch.exp(x)  # Table 1 s column: s_{i,t} = I = pi_theta/pi_old per token
    weight = torch.clamp(s, max=1 + EPS_UP).detach()  # Table 1 CISPO: sg[min(I, 1+eps_up)], no lower bound
    lp = torch.where(on, logp, 0.0)  # log pi_theta(y_{i,t}|...); padding junk never reaches the sum
    J = (alpha * weight * A[:, None] * lp).sum()  # sum_i sum_t alpha sg[.] A_i log pi_theta, beta = 0
    return -J  # the loss minimised: -J
