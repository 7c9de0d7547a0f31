"""Real sampled groups from a causal LM, with an optionally forced shared prefix, and reward rules.

A *group* is G completions o_1..o_G of one prompt x drawn from the policy pi_theta (arXiv 2601.05002,
Eq. 1). Proposition 1 (Sec. 4, App. B.2) is about a subset S of the group whose completions share a
prefix y_{1:k}: :func:`sample_group` forces those k tokens for every i in S (the rest of each
completion, and every token of a completion outside S, is sampled from the model's own next-token
distribution at the given temperature), so o_i = y_{1:k} + continuation_i for i in S.

The distribution sampled from is exactly the one :func:`grpo_proofs.runtime.policy.token_logprobs` scores
(same model forward, same temperature), so log-ratios against it are honest importance ratios.
Random-init models make EOS rare at large vocabularies; the presets of
:class:`grpo_proofs.runtime.policy.PolicyConfig` raise the EOS logit through a bias in the model's own output
layer (part of its weights, not a sampling trick), so lengths |o_i| differ within a group.

Reward rules are deterministic functions of a completion's tokens, registered in
:data:`REWARD_RULES`; each maps a :class:`Group` to a float64 array of shape (G,).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import InputError
from .rewards import reward_rule, score

__all__ = ["Group", "sample_group"]



@dataclass(frozen=True)
class Group:
    """G completions of one prompt; completions in ``shared`` start with the forced ``prefix``.

    Attributes:
        prompt: prompt token ids x.
        prefix: the forced prefix y_{1:k} (k = len(prefix), may be 0).
        shared: indices i of the completions that start with ``prefix`` (the subset S of Prop. 1).
        completions: o_i for i = 1..G (forced prefix included for i in S, EOS included if emitted).
        eos_token_id: the EOS id that ends a completion.
        temperature: sampling temperature (log-probs must use the same one).
        max_length: L_max, the cap on |o_i| (k + max_new_tokens).
        seed: the seed that produced these samples.
        rewards: r_i if a reward rule was applied when sampling, else None.
    """

    prompt: tuple[int, ...]
    prefix: tuple[int, ...]
    shared: tuple[int, ...]
    completions: tuple[tuple[int, ...], ...]
    eos_token_id: int
    temperature: float = 1.0
    max_length: int = 0
    seed: int = 0
    rewards: tuple[float, ...] | None = None

    @property
    def G(self) -> int:
        """Group size."""
        return len(self.completions)

    @property
    def k(self) -> int:
        """Length of the forced prefix."""
        return len(self.prefix)

    @property
    def lengths(self) -> np.ndarray:
        """|o_i| as an int64 array of shape (G,)."""
        return np.array([len(c) for c in self.completions], dtype=np.int64)

    @property
    def n_forced(self) -> tuple[int, ...]:
        """Number of forced tokens of each completion: k for i in S, 0 otherwise."""
        s = set(self.shared)
        return tuple(self.k if i in s else 0 for i in range(self.G))

    def continuation(self, i: int) -> tuple[int, ...]:
        """The free (sampled) tokens of completion i: o_i without its forced prefix."""
        return self.completions[i][self.n_forced[i]:]

    def finished(self, i: int) -> bool:
        """True if completion i ended with EOS (False: cut at ``max_length``)."""
        c = self.completions[i]
        return len(c) > 0 and c[-1] == self.eos_token_id


def _ids(seq: Sequence[int], what: str, vocab: int) -> tuple[int, ...]:
    try:
        out = tuple(int(t) for t in seq)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a sequence of token ids (ints)") from None
    if any(t < 0 or t >= vocab for t in out):
        raise InputError(f"{what} has a token id outside [0, {vocab}); the model's vocab_size is {vocab}")
    return out


def _max_positions(model) -> int | None:
    cfg = model.config
    return getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)


def _eos(model, eos_token_id: int | None) -> int:
    if eos_token_id is None:
        eos_token_id = model.config.eos_token_id
        if isinstance(eos_token_id, (list, tuple)):
            eos_token_id = eos_token_id[0] if eos_token_id else None
    if eos_token_id is None:
        raise InputError("the model config has no eos_token_id; pass eos_token_id=")
    return int(eos_token_id)


def _cache_keyword(model) -> str:
    """The name under which ``model.forward`` takes and returns its KV cache.

    Recent ``transformers`` releases call it ``cache`` (and deprecate ``past_key_values``); older
    ones only know ``past_key_values``. Feature-detected from the forward's signature.
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def _sample_once(model, G, prompt, prefix, shared, max_new_tokens, temperature, seed, eos):
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    k, L = len(prefix), len(prefix) + max_new_tokens
    forced = torch.zeros(G, dtype=torch.bool, device=dev)
    forced[list(shared)] = True
    ids = torch.tensor(prompt, device=dev).repeat(G, 1)                 # (G, P)
    att = torch.ones(G, len(prompt) + L, dtype=torch.long, device=dev)  # no padding: all ones
    kw = _cache_keyword(model)
    out = model(input_ids=ids, attention_mask=att[:, :len(prompt)], use_cache=True)
    cache, logits = getattr(out, kw), out.logits[:, -1]                  # logits (G, V)
    done = torch.zeros(G, dtype=torch.bool, device=dev)
    steps = []
    for t in range(L):
        probs = torch.softmax(logits.to(torch.float64) / temperature, dim=-1)
        draw = torch.multinomial(probs, 1, generator=gen).squeeze(1)      # (G,)
        if t < k:
            draw = torch.where(forced, torch.full_like(draw, prefix[t]), draw)
        draw = torch.where(done, torch.full_like(draw, eos), draw)        # filler after EOS
        steps.append(torch.where(done, torch.full_like(draw, -1), draw))
        done |= draw == eos
        if bool(done.all()) or t == L - 1:
            break
        out = model(input_ids=draw[:, None], attention_mask=att[:, :len(prompt) + t + 1],
                    use_cache=True, **{kw: cache})
        cache, logits = getattr(out, kw), out.logits[:, -1]
    tok = torch.stack(steps, dim=1).tolist()                              # (G, T), -1 = none
    return tuple(tuple(t for t in row if t >= 0) for row in tok)


def sample_group(model, *, G: int, prompt: Sequence[int], prefix: Sequence[int] = (),
                 max_new_tokens: int, temperature: float = 1.0, seed: int = 0,
                 eos_token_id: int | None = None, shared: Sequence[int] | None = None,
                 reward: str | Callable[[Group], np.ndarray] | None = None,
                 require_mixed_rewards: bool = False, max_tries: int = 32) -> Group:
    """Sample G completions of ``prompt`` from ``model``; completions in ``shared`` start with ``prefix``.

    For i in S = ``shared`` (default: all G) the first k = len(prefix) tokens are forced to the prefix,
    then up to ``max_new_tokens`` tokens are drawn from softmax(logits / temperature) until EOS
    (included). Completions outside S are drawn from the first token on; every |o_i| is capped at
    L_max = k + max_new_tokens. The model's real forward runs with its KV cache; draws come from a
    ``torch.Generator`` seeded with ``seed``, so the same seed gives the same tokens.

    Args:
        model: a causal LM from :func:`grpo_proofs.runtime.policy.build_policy` (any HF causal LM works).
        G: group size (>= 2).
        prompt: prompt token ids (at least one).
        prefix: the shared prefix y_{1:k} (no EOS in it); empty for a plain group.
        max_new_tokens: free tokens after the prefix (>= 1).
        temperature: > 0; :func:`grpo_proofs.runtime.policy.token_logprobs` uses the same value.
        seed: random seed of the draws.
        eos_token_id: defaults to ``model.config.eos_token_id``.
        shared: indices of the completions that carry the prefix (the subset S); default all.
        reward: a rule name in :data:`REWARD_RULES` or a callable; if given, ``Group.rewards`` is set.
        require_mixed_rewards: resample with seeds seed+1, seed+2, ... until the rewards are not all
            equal (needed by std normalisation); at most ``max_tries`` groups, then InputError.

    >>> from grpo_proofs.runtime.policy import PolicyConfig, build_policy
    >>> model = build_policy(PolicyConfig.tiny())
    >>> g = sample_group(model, G=6, prompt=[2, 3], prefix=[4, 5], max_new_tokens=8, seed=0)
    >>> all(c[:2] == (4, 5) for c in g.completions), len(set(g.lengths.tolist())) > 1
    (True, True)
    """
    vocab = int(model.config.vocab_size)
    if isinstance(G, bool) or not isinstance(G, int) or G < 2:
        raise InputError(f"G must be an integer >= 2 (a group needs two completions), got {G!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise InputError(f"temperature must be a finite number > 0, got {temperature!r}")
    if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
        raise InputError(f"max_tries must be an integer >= 1, got {max_tries!r}")
    prompt_t, prefix_t = _ids(prompt, "prompt", vocab), _ids(prefix, "prefix", vocab)
    if not prompt_t:
        raise InputError("prompt is empty; give at least one token id")
    eos = _eos(model, eos_token_id)
    if not 0 <= eos < vocab:
        raise InputError(f"eos_token_id {eos} is outside [0, {vocab})")
    if eos in prefix_t:
        raise InputError("prefix contains the EOS token; a completion cannot continue past EOS")
    S = tuple(range(G)) if shared is None else tuple(sorted(int(i) for i in shared))
    if len(set(S)) != len(S) or any(i < 0 or i >= G for i in S):
        raise InputError(f"shared must list distinct completion indices in [0, {G}), got {shared!r}")
    if not prefix_t:
        S = ()
    cap = _max_positions(model)
    need = len(prompt_t) + len(prefix_t) + max_new_tokens
    if cap is not None and need > cap:
        raise InputError(f"prompt + prefix + max_new_tokens = {need} exceeds the model's {cap} positions")
    if require_mixed_rewards and reward is None:
        raise InputError("require_mixed_rewards=True needs reward= (a rule name or callable)")
    rule = reward_rule(reward) if reward is not None else None
    for attempt in range(max_tries if require_mixed_rewards else 1):
        s = int(seed) + attempt
        comps = _sample_once(model, G, prompt_t, prefix_t, S, max_new_tokens, float(temperature), s, eos)
        group = Group(prompt=prompt_t, prefix=prefix_t, shared=S, completions=comps, eos_token_id=eos,
                      temperature=float(temperature), max_length=len(prefix_t) + max_new_tokens, seed=s)
        if rule is None:
            return group
        r = score(group, rule)
        if not require_mixed_rewards or np.ptp(r) > 0:
            return replace(group, rewards=tuple(float(v) for v in r))
    raise InputError(f"rewards were all equal in {max_tries} groups (seeds {seed}..{seed + max_tries - 1}); "
                     "use a larger G, another reward rule or prompt, or raise max_tries")
