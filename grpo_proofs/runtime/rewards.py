"""Reward rules of a sampled group: each maps a :class:`~grpo_proofs.runtime.sampling.Group` to float64
rewards r_i, one per completion."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from .sampling import Group

__all__ = ["score", "reward_rule", "last_token_even", "answer_count_odd", "short_is_correct", "REWARD_RULES", "ANSWER_TOKEN",
           "SHORT_WITHIN"]


#: token id counted by :func:`answer_count_odd`
ANSWER_TOKEN = 1


#: m of :func:`short_is_correct`: correct iff EOS is among the first m free tokens
SHORT_WITHIN = 3


def _answer(group: Group, i: int) -> tuple[int, ...]:
    """Free continuation of completion i without a final EOS."""
    c = group.continuation(i)
    return c[:-1] if group.finished(i) else c


def last_token_even(group: Group) -> np.ndarray:
    """r_i = 1 if the last non-EOS free token of o_i has an even id, else 0 (also 0 if there is none).

    >>> from grpo_proofs.runtime.sampling import Group
    >>> g = Group(prompt=(3,), prefix=(5,), shared=(0,), completions=((5, 4, 0), (7, 0), (0,)),
    ...           eos_token_id=0)
    >>> last_token_even(g).tolist()
    [1.0, 0.0, 0.0]
    """
    out = []
    for i in range(group.G):
        a = _answer(group, i)
        out.append(1.0 if a and a[-1] % 2 == 0 else 0.0)
    return np.array(out, dtype=np.float64)


def answer_count_odd(group: Group, answer_token: int = ANSWER_TOKEN) -> np.ndarray:
    """r_i = 1 if ``answer_token`` occurs an odd number of times in the free continuation of o_i.

    >>> from grpo_proofs.runtime.sampling import Group
    >>> g = Group(prompt=(3,), prefix=(1,), shared=(0, 1), completions=((1, 1, 0), (1, 2, 2), (1, 0)),
    ...           eos_token_id=0)
    >>> answer_count_odd(g).tolist()   # the forced prefix token 1 does not count
    [1.0, 0.0, 1.0]
    """
    return np.array([1.0 if _answer(group, i).count(answer_token) % 2 == 1 else 0.0
                     for i in range(group.G)], dtype=np.float64)


def short_is_correct(group: Group, within: int = SHORT_WITHIN) -> np.ndarray:
    """r_i = 1 if EOS is among the first ``within`` free tokens of o_i: correct answers are short.

    Used by the GRPO vs Dr. GRPO comparison: with alpha ~ 1/|o_i| (GRPO) short correct answers get
    the larger per-token weight.

    >>> from grpo_proofs.runtime.sampling import Group
    >>> g = Group(prompt=(3,), prefix=(5, 6), shared=(0, 1), completions=((5, 6, 2, 0), (5, 6, 2, 3, 4, 0)),
    ...           eos_token_id=0)
    >>> short_is_correct(g).tolist()
    [1.0, 0.0]
    """
    out = []
    for i in range(group.G):
        c = group.continuation(i)
        out.append(1.0 if group.finished(i) and len(c) <= within else 0.0)
    return np.array(out, dtype=np.float64)


#: name -> rule(group) -> float64 array (G,)
REWARD_RULES: dict[str, Callable[[Group], np.ndarray]] = {
    "last_token_even": last_token_even,
    "answer_count_odd": answer_count_odd,
    "short_is_correct": short_is_correct,
}


def reward_rule(reward: str | Callable[[Group], np.ndarray]) -> Callable[[Group], np.ndarray]:
    if callable(reward):
        return reward
    if reward not in REWARD_RULES:
        raise InputError(f"unknown reward rule {reward!r}; choose one of {sorted(REWARD_RULES)}")
    return REWARD_RULES[reward]


def score(group: Group, reward: str | Callable[[Group], np.ndarray]) -> np.ndarray:
    """Rewards r_i of a group under a rule (a name in :data:`REWARD_RULES` or a callable): float64 (G,).

    >>> from grpo_proofs.runtime.sampling import Group
    >>> g = Group(prompt=(3,), prefix=(), shared=(), completions=((2, 0), (3, 0)), eos_token_id=0)
    >>> score(g, "last_token_even").tolist()
    [1.0, 0.0]
    """
    r = np.asarray(reward_rule(reward)(group), dtype=np.float64)
    if r.shape != (group.G,) or not np.all(np.isfinite(r)):
        raise InputError(f"reward rule must return {group.G} finite floats, got shape {r.shape}")
    return r
