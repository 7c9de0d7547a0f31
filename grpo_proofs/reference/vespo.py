"""VESPO: hand-written reference loss, no symbolic code.

    J = sum_i sum_{t<=|o_i|} alpha_{i,t} sg[Phi_i] A_i log pi_theta(y_{i,t}|x, y_{i,<t})
    Phi_i = exp(lam + k log w_i - lam w_i),   log w_i = clamp(sum_t clamp(log I_{i,t}, -20, 20), log 1e-8, 20)
    (k, lam) = (k_pos, lambda_pos) if A_i >= 0 else (k_neg, lambda_neg),   alpha_{i,t} = 1/(sigma(r) sum_j |o_j|)

Source: TRL 1.16.0 ``loss_type="vespo"`` (``trl/trainer/grpo_trainer.py``,
``GRPOTrainer.get_gamma_weights`` and ``per_token_loss = -phi_seq * advantages * per_token_logps``,
normalised by the active tokens); no vLLM importance-sampling correction. The loss is -J. A formulation
published after arXiv 2601.05002 (beyond its Table 1), written as that paper's Eq. 1 (beta = 0) with
another per-token term or weight.
"""

from __future__ import annotations


import torch

from ..errors import InputError

__all__ = ["loss", "K_POS", "LAMBDA_POS", "K_NEG", "LAMBDA_NEG", "LOG_W_MIN"]

K_POS, LAMBDA_POS = 2.0, 3.0  # TRL 1.16.0 GRPOConfig.vespo_k_pos, vespo_lambda_pos defaults
K_NEG, LAMBDA_NEG = 3.0, 2.0  # TRL 1.16.0 GRPOConfig.vespo_k_neg, vespo_lambda_neg defaults
LOG_W_MIN = -18.420680743952367  # TRL 1.16.0 get_gamma_weights: lower_clamp = math.log(1e-8), as a literal


def loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor:
    """-J of one group (beta = 0) for VESPO.

    Args: ``logp``, ``old_logp``, ``mask``: (G, T) float tensors (mask 1 on real tokens, 0 on
    padding; padding values of logp/old_logp are ignored); ``rewards``: (G,); ``sigma``: "pop"
    (ddof 0) or "sample" (ddof 1) std, no constant added; ``masks``: none for this method.

    At s = 1, Phi_i = exp(lam - lam) = 1 and the gradient of the loss is -A_i/(sigma sum_j |o_j|)
    per token: each completion's total grows with its length (A = +-1/2, sigma = 1/2 below):
    >>> import torch
    >>> mask = (torch.arange(4) < torch.tensor([[1], [1], [2], [4]])).double()  # |o_i| = 1, 1, 2, 4
    >>> logp = torch.where(mask > 0, -1.0, 1e6).double().requires_grad_()  # junk on padding
    >>> loss(logp, logp.detach(), torch.tensor([1.0, 0.0, 1.0, 0.0]), mask).backward()
    >>> [round(g, 12) + 0.0 for g in logp.grad.sum(1).tolist()]
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
    if masks:
        raise InputError(f"vespo has no mask symbols; got masks {sorted(masks)}; pass masks=None")
    on = mask > 0  # t <= |o_i|: the token range of the sums
    G = logp.shape[0]  # G: completions in the group
    L = mask.sum(1)  # |o_i|: completion lengths
    A = r - r.mean()  # A_i = r_i - mean_j r_j, centered (any 1/sigma sits in alpha)
    sd = r.std(correction=0 if sigma == "pop" else 1)  # sigma(r): population or sample std, no constant
    if sd == 0:
        raise InputError("all rewards are equal, so sigma(r) = 0 and alpha = 1/sigma is undefined")
    w = torch.ones_like(L) / (sd * L.sum())  # token-level mean 1/(sigma(r) sum_j |o_j|) (DAPO's weight, Table 1)
    alpha = torch.where(on, w[:, None], 0.0)  # alpha_{i,t} on real tokens, 0 on padding
    x = torch.where(on, logp - old_logp, 0.0)  # log I_{i,t} per token; padding dropped
    seq = torch.clamp(x, -20.0, 20.0).sum(1)  # TRL: sum_t clamp(log I, -20, 20), the sequence log-ratio
    log_w = torch.clamp(seq, LOG_W_MIN, 20.0)  # TRL: log w_i clamped to [log 1e-8, 20]
    k = torch.where(A >= 0, torch.full_like(A, K_POS), torch.full_like(A, K_NEG))  # TRL: k by the sign of A_i (A >= 0: positive side)
    lam = torch.where(A >= 0, torch.full_like(A, LAMBDA_POS), torch.full_like(A, LAMBDA_NEG))  # TRL: lambda by the sign of A_i
    phi = torch.exp(lam + k * log_w - lam * torch.exp(log_w)).detach()  # Phi_i = e^lam w^k e^(-lam w), stop-gradient
    lp = torch.where(on, logp, 0.0)  # log pi_theta(y_{i,t}|...); padding junk never reaches the sum
    J = (alpha * phi[:, None] * A[:, None] * lp).sum()  # sum_i sum_t alpha sg[Phi_i] A_i log pi_theta
    return -J  # the loss minimised: -J
