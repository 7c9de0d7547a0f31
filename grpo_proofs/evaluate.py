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

from .compile import clip_fn, gradient_fn, staged_gradient_fn, stopped_term_fn, term_fn
from .errors import InputError
from .weights import GroupWeights, group_weights, surprisal_selection
from .validate import BYTES_PER_TOKEN, check_memory, flat_log_ratios, log_ratios_for, rewards_and_lengths
from .variants import Ratio, Surrogate, Variant, get_variant

__all__ = ["token_gradient", "weights_gradient", "batched_gradient", "sequence_gradient", "torch_surrogate",
           "DEFAULT_OLD_PROB", "STARE_FRACTION", "CHUNK"]

#: pi_old of every token when a surrogate needs it and none is given (DPPO's TV mask): then
#: p - p_old = (s - 1)/2 and the mask acts at s = 1 +- 2 delta_tv
DEFAULT_OLD_PROB = 0.5
#: the fraction of a group's tokens STARE selects by surprisal (when a surprisal is given)
STARE_FRACTION = 0.2
#: tokens per chunk when a compiled gradient is evaluated on the CPU (``_on_tokens``). Measured on a
#: 2-core AMD EPYC, GRPO's gradient in float64: one thread, 1e6 tokens in 100 ms whole and 32 / 19 / 22 /
#: 23 ms in chunks of 2^13 / 2^15 / 2^16 / 2^18, 1e7 tokens in 1.5 s whole and 0.25 s in chunks of 2^16;
#: :func:`token_gradient` with two threads, 1e6 tokens in 27 / 25 / 28 ms and 1e7 in 0.33 / 0.24 / 0.29 s
#: with chunks of 2^15 / 2^16 / 2^17
CHUNK = 1 << 16


def _expand(values: torch.Tensor, lengths: torch.Tensor, n_tok: int) -> torch.Tensor:
    """values[i] repeated lengths[i] times (G,) -> (n_tok,), one pass over the output."""
    if values.device.type == "cpu":
        return torch.from_numpy(np.repeat(values.numpy(), lengths.numpy()))
    return torch.repeat_interleave(values, lengths, output_size=n_tok)


def _on_tokens(fn, args: list[torch.Tensor], n_tok: int) -> torch.Tensor:
    """``fn(*args)`` on (n_tok,) tensors, on the CPU in chunks of ``CHUNK`` tokens into one output.

    A compiled gradient is a chain of elementwise operations, each allocating a temporary; on whole
    arrays of 1e6 tokens or more every temporary is fresh memory (page faults) and falls out of the
    cache. Chunks keep them small and reused. Elementwise, so chunking changes no value."""
    if n_tok <= CHUNK or args[0].device.type != "cpu" or any(a.shape != (n_tok,) for a in args):
        return fn(*args)
    first = fn(*[a[:CHUNK] for a in args])
    out = torch.empty(n_tok, dtype=first.dtype)
    out[:CHUNK] = first
    for s in range(CHUNK, n_tok, CHUNK):
        out[s:s + CHUNK] = fn(*[a[s:s + CHUNK] for a in args])
    return out


def _staged(v: Variant, values: dict, per_token: tuple[str, ...], counts: torch.Tensor, n_tok: int) -> torch.Tensor:
    """The derived gradient on the tokens, its per-completion parts evaluated once per completion
    (:func:`grpo_proofs.compile.staged_gradient_fn`): ``values`` maps each argument name to a (G,)
    tensor, or an (n_tok,) one for the names in ``per_token``."""
    st = staged_gradient_fn(v, per_token)
    parts = [] if st.inner is None else st.inner(*[values[c] for c in st.completions])
    if not st.tokens:  # nothing varies within a completion: evaluate on the G completions, then repeat
        return _expand(st.outer(*parts), counts, n_tok)
    return _on_tokens(st.outer, [values[t] for t in st.tokens] + [_expand(p, counts, n_tok) for p in parts], n_tok)


def sequence_gradient(variant: "str | Variant", *, Omega, A, u, lengths) -> torch.Tensor:
    """dJ/dx_{i,t} of a sequence-level variant, one value per completion (G,).

    The sequence ratio s_i depends on the tokens only through u_i (the summed log-ratio, or its
    mean for the geometric mean), so every token of completion i has the same gradient; the
    compiled symbolic gradient is evaluated on the G completions. ``Omega`` = sum_t alpha_{i,t},
    ``A``, ``u`` and ``lengths`` are (G,) tensors.
    """
    v = get_variant(variant)
    fn = gradient_fn(v)
    if v.ratio is Ratio.SEQ_GEOMEAN:
        return fn(Omega, A, u, lengths.to(u.dtype))
    return fn(Omega, A, u)


def _sequence_sums(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """u_i = sum_t x_{i,t} of each completion, repeated on its tokens (n_tok,)."""
    sums = torch.segment_reduce(x, "sum", lengths=counts)
    return _expand(sums, counts.cpu(), int(x.shape[0])) if sums.device.type == "cpu" else torch.repeat_interleave(sums, counts)


def batched_gradient(variant: "str | Variant", *, alpha, A, x, lengths=None, seq_index=None, lold=None) -> torch.Tensor:
    """dJ/dx for a flat batch of tokens with the compiled symbolic gradient.

    ``alpha``, ``A`` (advantage of each token's completion) and ``x`` (log-ratio) are 1-D
    tensors over tokens. Sequence kinds and sequence stop-gradient weights (TOPR, VESPO) also
    need ``lengths`` (tokens per completion, the completions lying one after another in the flat
    tensors); ``seq_index`` (completion of each token) is accepted for compatibility and not
    needed. A term that uses pi_old itself (DPPO) needs ``lold``, log pi_old per token.
    """
    v = get_variant(variant)
    fn = gradient_fn(v)
    if v.ratio is Ratio.SEQ_SG_WEIGHT:
        return _on_tokens(fn, [alpha, A, _sequence_sums(x, torch.as_tensor(lengths).to(torch.int64))], x.shape[0])
    if v.needs_old_logp:
        if lold is None:
            raise InputError(f"variant {v.name!r} needs log pi_old per token (lold)")
        return _on_tokens(fn, [alpha, A, x, lold], x.shape[0])
    if not v.sequence_level:
        return _on_tokens(fn, [alpha, A, x], x.shape[0])
    counts = torch.as_tensor(lengths).to(torch.int64)
    Omega = torch.segment_reduce(alpha, "sum", lengths=counts)
    sums = torch.segment_reduce(x, "sum", lengths=counts)
    starts = torch.cumsum(counts, 0) - counts
    u = sums / counts.to(x.dtype) if v.ratio is Ratio.SEQ_GEOMEAN else sums
    g = sequence_gradient(v, Omega=Omega, A=A[starts], u=u, lengths=counts)
    return _expand(g, counts.cpu(), int(x.shape[0])) if g.device.type == "cpu" else torch.repeat_interleave(g, counts)


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
    of length |o_i| per completion (views into one flat array). At s = 1 the gradient is
    alpha_{i,t} A_i (Eq. 15).

    The weights are evaluated once on whole arrays (:func:`grpo_proofs.weights.group_weights`),
    the compiled symbolic gradient once on all tokens (token kinds) or on the G completions
    (sequence kinds, whose gradient is the same on every token of a completion, and kinds whose
    gradient does not depend on the ratio): no loop over completions beyond reading the input.

    Inputs beyond the log-ratios, for the variants that use them: ``old_logp`` (log pi_old per
    token; DPPO's TV mask compares p = pi_theta with p_old = pi_old; default p_old =
    ``DEFAULT_OLD_PROB`` = 1/2 for every token) and ``surprisal`` (-log pi per token; STARE selects
    the top ``STARE_FRACTION`` of the group's tokens by it, :func:`~grpo_proofs.weights.surprisal_selection`;
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
    return weights_gradient(v, group_weights(v, rewards, lengths, sigma=sigma, masks=masks), log_ratios,
                            old_logp=old_logp)


def weights_gradient(v: Variant, w: GroupWeights, log_ratios: Sequence[Sequence[float]] | None = None, *,
                     old_logp: Sequence[Sequence[float]] | None = None) -> list[np.ndarray]:
    """:func:`token_gradient` of a resolved variant on a group whose weights ``w`` are already evaluated.

    For callers that evaluate one group's gradient at several ratios: the weights do not depend on
    them, so they are computed once (:func:`grpo_proofs.weights.group_weights`) and passed here.
    ``old_logp`` as in :func:`token_gradient`.

    >>> from grpo_proofs.variants import get_variant
    >>> from grpo_proofs.weights import group_weights
    >>> v = get_variant("grpo")
    >>> [float(g[0]) for g in weights_gradient(v, group_weights(v, [1, 0, 0, 1], [10, 30, 20, 40]))]
    [0.025, -0.008333333333333333, -0.0125, 0.00625]
    """
    n_tok = int(w.lengths.sum())
    check_memory(BYTES_PER_TOKEN * float(n_tok), f"the per-token coefficients of {n_tok:,} tokens",
                 "give shorter completions or fewer of them")
    x = torch.from_numpy(flat_log_ratios(w.lengths, log_ratios))
    counts = torch.from_numpy(w.lengths)
    A = torch.from_numpy(w.A)
    alpha, alpha_kind = ((torch.from_numpy(w.per_token), ("alpha",)) if w.per_token is not None
                         else (torch.from_numpy(w.per_completion), ()))
    if v.needs_old_logp:
        lold = (torch.from_numpy(flat_log_ratios(w.lengths, old_logp)) if old_logp is not None
                else torch.full((n_tok,), float(np.log(DEFAULT_OLD_PROB)), dtype=torch.float64))
        if bool((lold > 0).any()):
            raise InputError("old_logp are log-probabilities: every value must be <= 0")
        g = _staged(v, {"alpha": alpha, "A_i": A, "x": x, "lold": lold}, alpha_kind + ("x", "lold"), counts, n_tok)
    elif v.ratio is Ratio.SEQ_SG_WEIGHT:
        u = torch.segment_reduce(x, "sum", lengths=counts)
        g = _staged(v, {"alpha": alpha, "A_i": A, "u": u}, alpha_kind, counts, n_tok)
    elif v.sequence_level:
        Omega = torch.from_numpy(w.Omega)
        sums = torch.segment_reduce(x, "sum", lengths=counts)
        u = sums / counts.to(x.dtype) if v.ratio is Ratio.SEQ_GEOMEAN else sums
        g = _expand(sequence_gradient(v, Omega=Omega, A=A, u=u, lengths=counts), counts, n_tok)
    else:  # token kinds; a gradient that reads no ratio (REINFORCE: alpha_i A_i) is evaluated per completion
        g = _staged(v, {"alpha": alpha, "A_i": A, "x": x}, alpha_kind + ("x",), counts, n_tok)
    return np.split(g.numpy(), np.cumsum(w.lengths)[:-1])


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
    w = group_weights(v, r, lengths, sigma=sigma, masks=masks)
    real = mask > 0
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    if w.per_token is None:
        alpha = torch.where(real, torch.as_tensor(w.per_completion, dtype=logp.dtype, device=logp.device)[:, None], zero)
    else:  # the real tokens of each row, in order, are that completion's tokens
        alpha = torch.zeros(logp.shape, dtype=logp.dtype, device=logp.device)
        alpha[real] = torch.as_tensor(w.per_token, dtype=logp.dtype, device=logp.device)
    A = torch.as_tensor(w.A, dtype=logp.dtype, device=logp.device)
    x = torch.where(real, logp - old_logp, torch.zeros((), dtype=logp.dtype, device=logp.device))
    lp = torch.where(real, logp, torch.zeros((), dtype=logp.dtype, device=logp.device))
    if v.ratio is Ratio.SEQ_SG_WEIGHT or (v.ratio is Ratio.TOKEN and v.surrogate is not Surrogate.CLIP):
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
