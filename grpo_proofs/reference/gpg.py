"""GPG: hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} A_i log pi_theta(y_{i,t}|x, y_{i,<t})   (REINFORCE, no ratio, no clip)
    alpha_{i,t} = alpha_hat/(F_norm sum_j |o_j|)

Source: arXiv 2601.05002, Eq. 1 with beta = 0 and Table 1 (row "GPG");
the method is Chu et al. 2025, arXiv 2504.02546. The loss is -J.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss", "ALPHA_HAT", "F_NORM"]

ALPHA_HAT = 1.0  # registry value, params={"alpha_hat": 1.0}: no batch correction
F_NORM = 1.0  # registry value, params={"F_norm": 1.0}: no extra normaliser


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (Eq. 1, beta = 0) for GPG.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored; old_logp is only shape-checked, the
    surrogate has no ratio); ``rewards``: (G,); ``sigma``: "pop" (ddof 0) or "sample" (ddof 1)
    std (unused: this method is centered only); ``masks``: none for this method.

    The gradient of the loss is -alpha_{i,t} A_i at every point, so each completion's total is
    -|o_i| A_i alpha_hat/(F_norm sum_j |o_j|): it grows with the length (A = +-1/2 below):

    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> logp.grad.sum(1).tolist()
    [-0.0625, 0.0625, -0.125, 0.25]
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
        raise InputError(f"gpg has no mask symbols; got masks {sorted(masks)}; pass masks=None")
    on = mask > 0  # t <= |o_i|: the token range of the sum in Eq. 1
    L = mask.sum(1)  # |o_i|: completion lengths (Eq. 1)
    L_sum = L.sum()  # sum_j |o_j|: tokens in the whole group (Table 1, GPG row)
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (Sec. 1; this method has no 1/sigma)
    w = torch.ones_like(L) * ALPHA_HAT / (F_NORM * L_sum)  # Table 1, GPG alpha: alpha_hat/(F_norm sum_j |o_j|)
    alpha = torch.where(on, w[:, None], 0.0)  # alpha_{i,t} on real tokens, 0 on padding
    lp = torch.where(on, logp, 0.0)  # log pi_theta(y_{i,t}|...); padding junk never reaches the sum
    J = (alpha * A[:, None] * lp).sum()  # Table 1 GPG s column: sum_i sum_t alpha_{i,t} A_i log pi_theta, beta = 0
    return -J  # the loss minimised: -J
