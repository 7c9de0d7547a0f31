"""LUSPO: hand-written reference loss, no symbolic code.

    J = sum_i (|o_i|/(G sigma(r))) min(s_i A_i, clip(s_i, 1-eps_low, 1+eps_up) A_i)
      = sum_i sum_{t<=|o_i|} alpha_{i,t} min(...),   alpha_{i,t} = 1/(G sigma(r))
    s_i = (pi_theta(y_i)/pi_old(y_i))^(1/|y_i|)  (GSPO's sequence ratio)

Source: arXiv 2602.05261 (LUSPO, length-unbiased sequence policy optimization): GSPO's sequence term
multiplied by |o_i|, which removes GSPO's 1/|o_i| length weight; TRL 1.16.0 ``loss_type="luspo"``
(``(per_token_loss * mask).sum(-1).mean()``). GSPO's clip. The loss is -J. A formulation published after
arXiv 2601.05002 (beyond its Table 1), written as that paper's Eq. 1 (beta = 0) with another per-token
term or weight.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss", "EPS_LOW", "EPS_UP"]

EPS_LOW = 3e-4  # GSPO's sequence clip (Zheng et al. 2025, arXiv 2507.18071), kept by LUSPO
EPS_UP = 4e-4  # GSPO's sequence clip (Zheng et al. 2025, arXiv 2507.18071), kept by LUSPO


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (beta = 0) for LUSPO.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std, no constant added; ``masks``: none for this method.

    At s = 1 the gradient of the loss is -A_i/(G sigma) per token: each completion's total is
    -|o_i| A_i/(G sigma), proportional to its length (A = +-1/2, sigma = 1/2 below):
    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> [round(g, 12) + 0.0 for g in logp.grad.sum(1).tolist()]
    [-0.25, 0.25, -0.5, 1.0]
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
        raise InputError(f"luspo has no mask symbols; got masks {sorted(masks)}; pass masks=None")
    on = mask > 0  # t <= |o_i|: the token range of the sums
    G = logp.shape[0]  # G: completions in the group
    L = mask.sum(1)  # |o_i|: completion lengths
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (any 1/sigma sits in alpha)
    sd = r.std(correction=0 if sigma == "pop" else 1)  # sigma(r): population or sample std, no constant
    if sd == 0:
        raise InputError("all rewards are equal, so sigma(r) = 0 and alpha = 1/sigma is undefined")
    w = torch.ones_like(L) / (G * sd)  # LUSPO: |o_i| times GSPO's 1/(G |o_i| sigma) = 1/(G sigma) per token
    alpha = torch.where(on, w[:, None], 0.0)  # alpha_{i,t} on real tokens, 0 on padding
    x = torch.where(on, logp - old_logp, 0.0)  # log I_{i,t}; padding junk never reaches exp
    s = torch.exp(x.sum(1) / L)[:, None]  # GSPO's s_i = exp(mean_t log I), the same for every token of y_i
    unclipped = s * A[:, None]  # s_i A_i
    clipped = torch.clamp(s, 1 - EPS_LOW, 1 + EPS_UP) * A[:, None]  # clip(s_i, 1-eps_low, 1+eps_up) A_i
    J = (alpha * torch.minimum(unclipped, clipped)).sum()  # sum_i sum_t alpha min(...), beta = 0
    return -J  # the loss minimised: -J
