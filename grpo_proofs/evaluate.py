"""The derived surrogate and its gradient evaluated on numbers, in Torch (batched, autograd).

Everything here calls the functions that :mod:`grpo_proofs.compile` compiles from SymPy; this
module itself imports no SymPy.

* :func:`token_gradient` -- the public API: dJ/d log pi per token of one group;
* :func:`batched_gradient` -- the same on flat token tensors (any number of tokens);
* :func:`torch_surrogate` -- J itself on padded (G, T) tensors, differentiable, for training a
  real model on the variant's objective.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from .compile import clip_fn, gradient_fn, stopped_term_fn, term_fn
from .errors import InputError
from .objective import group_numbers, surprisal_selection
from .validate import BYTES_PER_TOKEN, check_memory, log_ratios_for, rewards_and_lengths
from .variants import Ratio, Variant, get_variant

__all__ = ["token_gradient", "batched_gradient", "torch_surrogate", "DEFAULT_OLD_PROB", "STARE_FRACTION"]

#: pi_old of every token when a surrogate needs it and none is given (DPPO's TV mask): then
#: p - p_old = (s - 1)/2 and the mask acts at s = 1 +- 2 delta_tv
DEFAULT_OLD_PROB = 0.5
#: the fraction of a group's tokens STARE selects by surprisal (when a surprisal is given)
STARE_FRACTION = 0.2


def batched_gradient(variant: "str | Variant", *, alpha, A, x, lengths=None, seq_index=None, lold=None) -> torch.Tensor:
    """dJ/dx for a flat batch of tokens with the compiled symbolic gradient.

    ``alpha``, ``A`` (advantage of each token's completion) and ``x`` (log-ratio) are 1-D
    tensors over tokens. Sequence kinds and sequence weights also need ``seq_index``
    (completion of each token) and ``lengths`` (tokens per completion); a term that uses pi_old
    itself (DPPO) needs ``lold``, log pi_old per token.
    """
    v = get_variant(variant)
    fn = gradient_fn(v)
    if v.ratio is Ratio.SEQ_SG_WEIGHT:
        sums = torch.zeros(int(lengths.shape[0]), dtype=x.dtype, device=x.device).index_add_(0, seq_index, x)
        return fn(alpha, A, sums[seq_index])
    if v.needs_old_logp:
        if lold is None:
            raise InputError(f"variant {v.name!r} needs log pi_old per token (lold)")
        return fn(alpha, A, x, lold)
    if not v.sequence_level:
        return fn(alpha, A, x)
    G = int(lengths.shape[0])
    Omega = torch.zeros(G, dtype=alpha.dtype, device=alpha.device).index_add_(0, seq_index, alpha)
    sums = torch.zeros(G, dtype=x.dtype, device=x.device).index_add_(0, seq_index, x)
    if v.ratio is Ratio.SEQ_GEOMEAN:
        return fn(Omega[seq_index], A, (sums / lengths)[seq_index], lengths[seq_index])
    return fn(Omega[seq_index], A, sums[seq_index])


def token_gradient(
    variant: "str | Variant",
    rewards: Sequence[float],
    lengths: Sequence[int],
    log_ratios: Sequence[Sequence[float]] | None = None,
    sigma: str = "pop",
    masks: Mapping[str, Sequence] | None = None,
    *,
    old_logp: Sequence[Sequence[float]] | None = None,
    surprisal: Sequence[Sequence[float]] | None = None,
) -> list[np.ndarray]:
    """dJ/d log pi_theta(y_{i,t}) of the advantage part of Eq. 1 (J maximised, beta = 0).

    ``variant`` is a registry name or a :class:`~grpo_proofs.variants.Variant`;
    ``log_ratios`` are log pi_theta - log pi_old per token (default zeros, s = 1); ``sigma`` is
    the population (``"pop"``) or sample (``"sample"``) std of the rewards. Returns one array
    of length |o_i| per completion. At s = 1 the gradient is alpha_{i,t} A_i (Eq. 15).

    Inputs beyond the log-ratios, for the variants that use them: ``old_logp`` (log pi_old per
    token; DPPO's TV mask compares p = pi_theta with p_old = pi_old; default p_old =
    ``DEFAULT_OLD_PROB`` = 1/2 for every token) and ``surprisal`` (-log pi per token; STARE selects
    the top ``STARE_FRACTION`` of the group's tokens by it, :func:`~grpo_proofs.objective.surprisal_selection`;
    default: every token selected, chi = 1, the case of a selected shared prefix). ``masks={"chi": ...}``
    gives STARE's selection directly.

    Worked example of the prefix page: G = 4, r = [1,0,0,1], |o| = [10,30,20,40], GRPO, population
    std: alpha_1 A_1 = 1/(4*10*1/2) * 1/2 = 1/40.

    Raises InputError, before allocating anything per token, when the tokens would need more memory
    than the machine can spare (an estimate of ``BYTES_PER_TOKEN`` bytes per token, ``grpo_proofs.validate``).

    >>> g = token_gradient("grpo", [1, 0, 0, 1], [10, 30, 20, 40])
    >>> [float(gi[0]) for gi in g]
    [0.025, -0.008333333333333333, -0.0125, 0.00625]
    """
    v = get_variant(variant)
    _, L0 = rewards_and_lengths(rewards, lengths)
    n_tok = int(L0.sum())
    check_memory(BYTES_PER_TOKEN * float(n_tok), f"the per-token coefficients of {n_tok:,} tokens",
                 "give shorter completions or fewer of them")
    if surprisal is not None:
        if masks and "chi" in masks:
            raise InputError("give STARE's selection either as surprisal or as masks['chi'], not both")
        masks = dict(masks or {}, chi=surprisal_selection(log_ratios_for(L0, surprisal), STARE_FRACTION))
    num = group_numbers(v, rewards, lengths, sigma=sigma, masks=masks)
    lr = log_ratios_for(num.lengths, log_ratios)
    lold = None
    if v.needs_old_logp:
        lold = torch.as_tensor(np.concatenate(log_ratios_for(num.lengths, old_logp) if old_logp is not None
                                              else [np.full(L_, np.log(DEFAULT_OLD_PROB)) for L_ in num.lengths]))
        if bool((lold > 0).any()):
            raise InputError("old_logp are log-probabilities: every value must be <= 0")
    L = torch.as_tensor(num.lengths, dtype=torch.float64)
    idx = torch.repeat_interleave(torch.arange(len(L)), torch.as_tensor(num.lengths))
    alpha = torch.as_tensor(np.concatenate(num.alpha))
    A = torch.as_tensor(num.A)[idx]
    x = torch.as_tensor(np.concatenate(lr))
    g = batched_gradient(v, alpha=alpha, A=A, x=x, lengths=L, seq_index=idx, lold=lold).numpy()
    return [part.copy() for part in np.split(g, np.cumsum(num.lengths)[:-1])]


def torch_surrogate(
    variant: "str | Variant",
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    rewards,
    mask: torch.Tensor,
    sigma: str = "pop",
    masks: Mapping[str, Sequence] | None = None,
) -> torch.Tensor:
    """J (advantage part of Eq. 1, to be MAXIMISED) on padded (G, T) tensors, with autograd.

    ``logp`` carries the graph (log pi_theta of each completion token); ``old_logp`` and
    ``mask`` (1 on real tokens) are constants; padding may hold any value. The weights
    alpha_{i,t} are computed from the rewards and the lengths (``mask.sum(1)``) and enter as
    constants; the term phi is the SymPy surrogate compiled to Torch. The gradient of J with
    respect to ``logp`` equals :func:`token_gradient` (checked by the ``eq15-gradient`` claim).
    """
    v = get_variant(variant)
    if logp.shape != old_logp.shape or logp.shape != mask.shape or logp.dim() != 2:
        raise InputError(f"logp, old_logp and mask must be (G, T) tensors of one shape, got "
                         f"{tuple(logp.shape)}, {tuple(old_logp.shape)}, {tuple(mask.shape)}")
    lengths = mask.sum(1).round().to(torch.int64).cpu().numpy()
    r = rewards.detach().cpu().numpy() if isinstance(rewards, torch.Tensor) else np.asarray(rewards, dtype=np.float64)
    num = group_numbers(v, r, lengths, sigma=sigma, masks=masks)
    real = mask > 0
    alpha = torch.zeros(logp.shape, dtype=logp.dtype, device=logp.device)
    for i, a in enumerate(num.alpha):
        alpha[i, real[i]] = torch.as_tensor(a, dtype=logp.dtype, device=logp.device)
    A = torch.as_tensor(num.A, dtype=logp.dtype, device=logp.device)
    x = torch.where(real, logp - old_logp, torch.zeros((), dtype=logp.dtype, device=logp.device))
    lp = torch.where(real, logp, torch.zeros((), dtype=logp.dtype, device=logp.device))
    if v.ratio is Ratio.SEQ_SG_WEIGHT or (v.ratio is Ratio.TOKEN and v.surrogate.value != "clip"):
        old = torch.where(real, old_logp, torch.zeros((), dtype=logp.dtype, device=logp.device))
        u = x.sum(1, keepdim=True).expand_as(x)
        return torch.where(real, stopped_term_fn(v)(alpha, A[:, None].expand_as(x), x, old, u), 0.0).sum()
    if v.ratio is Ratio.TOKEN:
        return torch.where(real, term_fn(v)(alpha, A[:, None], x), 0.0).sum()
    if v.sequence_level:
        u = x.sum(1)
        if v.ratio is Ratio.SEQ_GEOMEAN:
            u = u / torch.as_tensor(lengths, dtype=logp.dtype, device=logp.device)
        return (alpha.sum(1) * term_fn(v)(A, u)).sum()
    if v.ratio is Ratio.LOGPROB:
        return (alpha * A[:, None] * lp).sum()
    weight = torch.where(real, clip_fn(v)(x), 0.0).detach()  # CISPO: sg[clip(I)]
    return (alpha * weight * A[:, None] * lp).sum()
