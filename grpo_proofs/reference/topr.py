"""TOPR: hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} tau_i A_i log pi_theta(y_{i,t}|x, y_{i,<t})
    tau_i = 1 if A_i >= 0 else sg[clamp(s_i, 0, 1)],   s_i = pi_theta(y_i)/pi_old(y_i) (full product)
    alpha_{i,t} = 1/(G |o_i|) (seq-mean-token-mean),   A_i centered

Source: Le Roux et al. 2025, "Tapered Off-Policy REINFORCE", arXiv 2503.14286: REINFORCE on positive
completions, a truncated (tapered) sequence ratio on negative ones. The loss is -J. A formulation
published after arXiv 2601.05002 (beyond its Table 1), written as that paper's Eq. 1 (beta = 0) with
another per-token term or weight.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss"]



def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (beta = 0) for TOPR.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std, no constant added; ``masks``: none for this method.

    At s = 1, tau_i = 1 and the gradient of the loss is -A_i/(G |o_i|) per token: each completion's
    total is -A_i/G (A = +-1/2, G = 4 below):
    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> [round(g, 12) + 0.0 for g in logp.grad.sum(1).tolist()]
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
    if masks:
        raise InputError(f"topr has no mask symbols; got masks {sorted(masks)}; pass masks=None")
    on = mask > 0  # t <= |o_i|: the token range of the sums
    G = logp.shape[0]  # G: completions in the group
    L = mask.sum(1)  # |o_i|: completion lengths
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (any 1/sigma sits in alpha)
    w = 1 / (G * L)  # TOPR: seq-mean-token-mean weight 1/(G |o_i|)
    alpha = torch.where(on, w[:, None], 0.0)  # alpha_{i,t} on real tokens, 0 on padding
    x = torch.where(on, logp - old_logp, 0.0)  # log pi_theta - log pi_old per token; padding junk dropped
    seq = torch.exp(x.sum(1))  # TOPR: s_i = pi_theta(y_i)/pi_old(y_i), the full sequence ratio
    tau = torch.where(A >= 0, torch.ones_like(seq), torch.clamp(seq, 0.0, 1.0)).detach()  # TOPR: tau_i, stop-gradient
    lp = torch.where(on, logp, 0.0)  # log pi_theta(y_{i,t}|...); padding junk never reaches the sum
    J = (alpha * tau[:, None] * A[:, None] * lp).sum()  # sum_i sum_t alpha tau_i A_i log pi_theta
    return -J  # the loss minimised: -J
