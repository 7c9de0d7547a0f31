"""GSPO: hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} min(s_{i,t} A_i, clip(s_{i,t}, 1-eps_low, 1+eps_up) A_i)
    alpha_{i,t} = 1/(G |o_i| sigma(r)),   s_{i,t} = s_i = (pi_theta(y_i)/pi_old(y_i))^(1/|y_i|) (per sequence)

Source: arXiv 2601.05002, Eq. 1 with beta = 0 and Table 1 (row "GSPO", with the
1/|y_i| exponent the table omits, noted on the related-results page); the method is Zheng et al. 2025,
arXiv 2507.18071. The loss is -J.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["loss", "EPS_LOW", "EPS_UP"]

EPS_LOW = 3e-4  # Table 1 notes, GSPO: sequence clip eps ~ 3e-4/4e-4 (Zheng et al. 2025)
EPS_UP = 4e-4  # Table 1 notes, GSPO: sequence clip eps ~ 3e-4/4e-4 (Zheng et al. 2025)


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (Eq. 1, beta = 0) for GSPO.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std, no constant added; ``masks``: none for this method.

    At s = 1 the gradient of the loss is -(sum_t' alpha_{i,t'}) A_i s_i/|o_i| = -alpha_{i,t} A_i,
    so each completion's total is -A_i/(G sigma) whatever its length (A = +-1/2, sigma = 1/2 below):

    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> logp.grad.sum(1).tolist()
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
        raise InputError(f"gspo has no mask symbols; got masks {sorted(masks)}; pass masks=None")
    on = mask > 0  # t <= |o_i|: the token range of the sum in Eq. 1
    G = logp.shape[0]  # G: completions in the group (Eq. 1)
    L = mask.sum(1)  # |o_i|: completion lengths (Eq. 1)
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (Sec. 1; 1/sigma sits in alpha)
    sd = r.std(correction=0 if sigma == "pop" else 1)  # sigma(r): population or sample std, no constant
    if sd == 0:
        raise InputError("all rewards are equal, so sigma(r) = 0 and alpha = 1/sigma is undefined")
    w = 1 / (G * L * sd)  # Table 1, GSPO alpha column: alpha^S_i = 1/(G |o_i| sigma(r))
    alpha = torch.where(on, w[:, None], 0.0)  # alpha_{i,t} on real tokens, 0 on padding
    x = torch.where(on, logp - old_logp, 0.0)  # log I_{i,t}; padding junk never reaches exp
    u = x.sum(1) / L  # GSPO s column: mean_t log I = (1/|y_i|) log(pi_theta(y_i)/pi_old(y_i))
    s = torch.exp(u)[:, None]  # Table 1 s column: s_i, the same for every token of y_i
    unclipped = s * A[:, None]  # Eq. 1: s_i A_i
    clipped = torch.clamp(s, 1 - EPS_LOW, 1 + EPS_UP) * A[:, None]  # Eq. 1: clip(s_i, 1-eps_low, 1+eps_up) A_i
    J = (alpha * torch.minimum(unclipped, clipped)).sum()  # Eq. 1: sum_i sum_t alpha_{i,t} min(...), beta = 0
    return -J  # the loss minimised: -J
