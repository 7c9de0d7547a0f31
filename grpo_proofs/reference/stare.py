"""STARE: hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} omega_{i,t} min(s_{i,t} A_i, clip(s_{i,t}, 1-eps_low, 1+eps_up) A_i)
    omega_{i,t} = 1 + 0.1 chi_{i,t} (A_i > 0),  1 - 0.1 chi_{i,t} (A_i < 0);  chi_{i,t} = 1 on a selected
    (top-surprisal) token, 0 elsewhere;   alpha_{i,t} = 1/(sigma(r) sum_j |o_j|) (DAPO's token mean)

Source: arXiv 2606.19236 (STARE): the policy-gradient loss times 1.1 on selected top-surprisal tokens of
positive completions and 0.9 on those of negative ones (the selection is gated on the batch entropy; a
closed gate is chi = 0). DAPO's token-level weight and clip as the base. The loss is -J. A formulation
published after arXiv 2601.05002 (beyond its Table 1), written as that paper's Eq. 1 (beta = 0) with
another per-token term or weight.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss", "EPS_LOW", "EPS_UP", "UP_WEIGHT", "DOWN_WEIGHT"]

EPS_LOW = 0.2  # the base clip: DAPO's clip-higher 0.2/0.28 (Yu et al. 2025)
EPS_UP = 0.28  # the base clip: DAPO's clip-higher 0.2/0.28 (Yu et al. 2025)
UP_WEIGHT, DOWN_WEIGHT = 1.1, 0.9  # STARE: weights of selected tokens with A > 0 and A < 0


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (beta = 0) for STARE.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std, no constant added; ``masks``: ``{"chi": (G, T) tensor}``, the selection chi_{i,t}, all ones
    (every token selected) when not given.

    At s = 1 with every token selected the gradient of the loss is -1.1 alpha A_i on positive and
    -0.9 alpha A_i on negative completions (A = +-1/2, sigma = 1/2, sum_j |o_j| = 8 below):
    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> [round(g, 12) + 0.0 for g in logp.grad.sum(1).tolist()]
    [-0.1375, 0.1125, -0.275, 0.45]
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
    if set(masks or {}) - {"chi"}:
        raise InputError(f"stare takes only the mask 'chi'; got masks {sorted(masks)}")
    chi = torch.as_tensor((masks or {}).get("chi", torch.ones_like(mask)), dtype=logp.dtype)  # chi_{i,t}, 1 unless given
    if chi.shape != mask.shape:
        raise InputError(f"mask chi must have the (G, T) shape {tuple(mask.shape)}, got {tuple(chi.shape)}")
    on = mask > 0  # t <= |o_i|: the token range of the sums
    G = logp.shape[0]  # G: completions in the group
    L = mask.sum(1)  # |o_i|: completion lengths
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (any 1/sigma sits in alpha)
    sd = r.std(correction=0 if sigma == "pop" else 1)  # sigma(r): population or sample std, no constant
    if sd == 0:
        raise InputError("all rewards are equal, so sigma(r) = 0 and alpha = 1/sigma is undefined")
    w = torch.ones_like(L) / (sd * L.sum())  # token-level mean 1/(sigma(r) sum_j |o_j|) (DAPO's weight, Table 1)
    alpha = torch.where(on, w[:, None], 0.0)  # alpha_{i,t} on real tokens, 0 on padding
    x = torch.where(on, logp - old_logp, 0.0)  # log s_{i,t}; padding junk never reaches exp
    s = torch.exp(x)  # s_{i,t} = pi_theta/pi_old per token
    by_sign = torch.where(A < 0, torch.full_like(A, DOWN_WEIGHT), torch.ones_like(A))  # STARE: 0.9 where A_i < 0
    by_sign = torch.where(A > 0, torch.full_like(A, UP_WEIGHT), by_sign)  # STARE: 1.1 where A_i > 0 (1 at A_i = 0)
    omega = 1 + (by_sign - 1)[:, None] * chi  # STARE: omega_{i,t} = 1.1 / 0.9 on selected tokens, 1 elsewhere
    unclipped = s * A[:, None]  # s_{i,t} A_i
    clipped = torch.clamp(s, 1 - EPS_LOW, 1 + EPS_UP) * A[:, None]  # clip(s, 1-eps_low, 1+eps_up) A_i
    J = (alpha * omega * torch.minimum(unclipped, clipped)).sum()  # sum_i sum_t alpha omega min(...), beta = 0
    return -J  # the loss minimised: -J
