"""Per-token log-probabilities of completions under a causal LM, with autograd.

log pi_theta(o_{i,t} | x, o_{i,<t}) is the quantity every GRPO-family surrogate is built from
(arXiv 2601.05002, Eq. 1): the importance ratio is s_{i,t} = exp(log pi_theta - log pi_old) and the
gradient of Eq. 13-15 is a weighted sum of grad log pi_theta. :func:`prefix_logprobs` scores ONE copy
of a shared prefix, whose gradient gives Proposition 1's prediction sum_t W_t grad log pi(y_t | x, y_<t).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import InputError
from .sampling import Group

__all__ = ["completion_logprobs", "token_logprobs", "prefix_logprobs"]


def completion_logprobs(model: nn.Module, prompt: Sequence[int], completions: Sequence[Sequence[int]], *,
                        temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(o_{i,t} | x, o_{i,<t}) for every token of every completion, in one batched forward.

    Sequences x + o_i are right-padded, with an attention mask; positions are 0..|x|+|o_i|-1 as in an
    unpadded forward, so each row equals a single-sequence forward to rounding. Logits are divided by
    ``temperature`` (the sampling temperature) before the log-softmax; bf16/fp16 logits are upcast
    to float32.

    Returns:
        (logp, mask): logp (G, T) with autograd (0 at padding), mask (G, T) float, T = max |o_i|.

    >>> from grpo_proofs.runtime.policy import PolicyConfig, build_policy
    >>> m = build_policy(PolicyConfig.tiny())
    >>> logp, mask = completion_logprobs(m, [1, 2], [[3, 4, 0], [5]])
    >>> mask.tolist(), logp[1, 1:].tolist(), bool((logp[0] < 0).all())
    ([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], [0.0, 0.0], True)
    """
    if not completions or any(len(c) == 0 for c in completions) or len(prompt) == 0:
        raise InputError("need a non-empty prompt and non-empty completions")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise InputError(f"temperature must be a finite number > 0, got {temperature!r}")
    vocab = int(model.config.vocab_size)
    if any(not 0 <= int(t) < vocab for seq in [prompt, *completions] for t in seq):
        raise InputError(f"a token id is outside [0, {vocab}); the model's vocab_size is {vocab}")
    dev = next(model.parameters()).device
    P, lens = len(prompt), [len(c) for c in completions]
    T = max(lens)
    ids = torch.zeros((len(completions), P + T), dtype=torch.long, device=dev)      # right padding
    att = torch.zeros_like(ids)
    for i, c in enumerate(completions):
        ids[i, :P + lens[i]] = torch.tensor(list(prompt) + list(c), device=dev)
        att[i, :P + lens[i]] = 1
    logits = model(input_ids=ids, attention_mask=att).logits[:, P - 1:P + T - 1]   # (G, T, V)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    logp = torch.log_softmax(logits / temperature, dim=-1).gather(-1, ids[:, P:, None]).squeeze(-1)
    mask = (torch.arange(T, device=dev)[None, :] < torch.tensor(lens, device=dev)[:, None]).to(logp.dtype)
    return logp.masked_fill(mask == 0, 0.0), mask


def token_logprobs(model: nn.Module, group: Group) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log pi_theta(o_{i,t} | x, o_{i,<t}) of a sampled group (prefix tokens included).

    Uses ``group.temperature``, the distribution the tokens were drawn from. Returns
    (logp (G, T) with autograd, mask (G, T) float) with T = max |o_i| (see :func:`completion_logprobs`).
    """
    return completion_logprobs(model, group.prompt, group.completions, temperature=group.temperature)


def prefix_logprobs(model: nn.Module, prompt: Sequence[int], prefix: Sequence[int], *,
                    temperature: float = 1.0) -> torch.Tensor:
    """log pi(y_t | x, y_{<t}) for t = 1..k from ONE copy of the prefix: a (k,) tensor with autograd.

    Its gradient gives the Prop. 1 prediction sum_t W_t grad log pi(y_t | x, y_{<t}) for the shared prefix.

    >>> from grpo_proofs.runtime.policy import PolicyConfig, build_policy
    >>> m = build_policy(PolicyConfig.tiny())
    >>> prefix_logprobs(m, [1, 2], [3, 4]).shape
    torch.Size([2])
    """
    if len(prefix) == 0:
        raise InputError("prefix is empty; prefix_logprobs needs at least one token")
    return completion_logprobs(model, prompt, [prefix], temperature=temperature)[0][0]
