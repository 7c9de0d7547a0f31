"""UP: hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} phi_{i,t},   alpha_{i,t} = 1/(G |o_i| sigma(r))
    phi = A_i exp(log pi_theta - sg[log pi_theta])                        if A_i > 0  (REINFORCE)
    phi = min(s_{i,t} A_i, clip(s_{i,t}, 1 - eps, 1 + eps) A_i)           if A_i <= 0

Source: arXiv 2607.06987 (UP): no ratio and no clip for positive advantages, the clipped surrogate for
the others; GRPO's per-token weight and clip. The loss is -J. A formulation published after arXiv
2601.05002 (beyond its Table 1), written as that paper's Eq. 1 (beta = 0) with another per-token term or
weight.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss", "EPS_LOW", "EPS_UP"]

EPS_LOW = 0.2  # the clip of the negative side: GRPO's symmetric 0.2
EPS_UP = 0.2  # the clip of the negative side: GRPO's symmetric 0.2


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (beta = 0) for UP.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std, no constant added; ``masks``: none for this method.

    At s = 1 both sides give -alpha_{i,t} A_i: each completion's total is -A_i/(G sigma)
    (A = +-1/2, sigma = 1/2 below):
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
        raise InputError(f"up has no mask symbols; got masks {sorted(masks)}; pass masks=None")
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
    lp = torch.where(on, logp, 0.0)  # log pi_theta; padding junk never reaches exp
    reinforce = A[:, None] * torch.exp(lp - lp.detach())  # UP, A > 0: A exp(log pi - sg[log pi]) (value A, gradient A)
    clipped = torch.minimum(s * A[:, None], torch.clamp(s, 1 - EPS_LOW, 1 + EPS_UP) * A[:, None])  # UP, A <= 0: PPO clip
    phi = torch.where(A[:, None] > 0, reinforce, clipped)  # the side by the sign of A_i
    J = (alpha * phi).sum()  # sum_i sum_t alpha_{i,t} phi_{i,t}, beta = 0
    return -J  # the loss minimised: -J
