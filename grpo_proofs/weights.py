"""The numbers of one group: centered advantages, sigma and the weights alpha_{i,t} of a variant.

:func:`group_weights` validates rewards, lengths and masks and evaluates the variant's weight
expression (compiled once per variant through :func:`grpo_proofs.compile.to_numpy`) on whole
arrays: on the G completions when no per-token mask enters it, else on every token.
:func:`group_numbers` gives the same numbers split by completion. Both the symbolic surrogate
(:mod:`grpo_proofs.objective`) and its numeric evaluation (:mod:`grpo_proofs.evaluate`) start here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
import sympy as sp

from . import notation as n
from .errors import InputError
from .validate import check_memory, rewards_and_lengths, sigma_kind
from .variants import Variant, get_variant

__all__ = ["GroupNumbers", "GroupWeights", "group_numbers", "group_weights", "group_sigma", "split_by_completion",
           "surprisal_selection", "MASK_NAMES"]

#: the per-token (M, lam, chi) and per-completion (delta) masks a weight may contain (1 unless given)
MASK_NAMES = ("M", "lam", "delta", "chi")
#: the masks given per token
_TOKEN_MASKS = ("M", "lam", "chi")


def group_sigma(rewards: np.ndarray, kind: str = "pop", eps: float = 0.0) -> float:
    """std of the group's rewards (population ``"pop"`` or sample ``"sample"``) plus ``eps``."""
    return float(np.std(rewards, ddof=0 if sigma_kind(kind) == "pop" else 1)) + eps


@dataclass(frozen=True)
class GroupNumbers:
    """The numbers of one group: centered advantages, sigma and per-token weights."""

    rewards: np.ndarray
    lengths: np.ndarray
    #: centered advantages A_i = r_i - mean r (any 1/sigma lives in alpha)
    A: np.ndarray
    #: the sigma value used in alpha (None for centered-only variants)
    sigma: float | None
    #: alpha_{i,t}, one array per completion
    alpha: tuple[np.ndarray, ...]

    @property
    def Omega(self) -> np.ndarray:
        """Omega_i = sum_t alpha_{i,t}."""
        return np.array([a.sum() for a in self.alpha])


@lru_cache(maxsize=256)
def _alpha_fn(alpha_srepr: str):
    alpha = sp.sympify(sp.parse_expr(alpha_srepr, local_dict={str(v): v for v in n.WEIGHT_SYMBOLS.values()}))
    args = [n.G, n.L_i, n.L_sum, n.L_max, n.sigma, n.A_i, n.M, n.lam, n.delta, n.chi]
    from .compile import to_numpy  # deferred: the bridge loads Torch

    return to_numpy(args, alpha)


@dataclass(frozen=True)
class GroupWeights:
    """The weights of one group in flat form: alpha_{i,t} evaluated once, vectorised over the group.

    Exactly one of ``per_completion`` (G,) and ``per_token`` (sum_i |o_i|,) is set: the weight
    depends on the token only through the per-token masks M, lambda and chi, so without them it is
    one number per completion.
    """

    rewards: np.ndarray
    lengths: np.ndarray
    #: centered advantages A_i = r_i - mean r (any 1/sigma lives in alpha)
    A: np.ndarray
    #: the sigma value used in alpha (None for centered-only variants)
    sigma: float | None
    #: alpha_i of each completion when the weight is the same on all its tokens, else None
    per_completion: np.ndarray | None
    #: alpha_{i,t} of every token, completions one after another, when masks vary it, else None
    per_token: np.ndarray | None

    def token_alpha(self) -> np.ndarray:
        """alpha_{i,t} of every token, flat (completions one after another)."""
        if self.per_token is not None:
            return self.per_token
        return np.repeat(self.per_completion, self.lengths)

    @property
    def Omega(self) -> np.ndarray:
        """Omega_i = sum_t alpha_{i,t} (G,)."""
        if self.per_token is not None:
            return np.add.reduceat(self.per_token, np.r_[0, np.cumsum(self.lengths)[:-1]])
        return self.per_completion * self.lengths


def _flat_mask(masks: Mapping, key: str, L: np.ndarray) -> np.ndarray:
    parts = [np.asarray(masks[key][i], dtype=np.float64) for i in range(len(L))]
    for i, part in enumerate(parts):
        if part.shape != (L[i],):
            raise InputError(f"mask for completion {i} must have {L[i]} values (one per token)")
    return np.concatenate(parts)


def group_weights(
    variant: "str | Variant",
    rewards: Sequence[float],
    lengths: Sequence[int],
    sigma: str = "pop",
    masks: Mapping[str, Sequence] | None = None,
    L_max: int | None = None,
) -> GroupWeights:
    """Validate a group and evaluate the weights of ``variant`` on it, vectorised.

    ``masks`` may give ``"M"``/``"lam"``/``"chi"`` (one array per completion) and ``"delta"`` (one
    value per completion); they default to 1. ``L_max`` defaults to the longest completion. The weight
    expression is compiled once per variant and evaluated on whole arrays: on the G completions
    when no per-token mask enters it, else on every token.

    >>> w = group_weights("grpo", [1, 0, 0, 1], [10, 30, 20, 40])
    >>> w.per_completion.tolist()  # 1/(G |o_i| sigma)
    [0.05, 0.016666666666666666, 0.025, 0.0125]
    """
    v = get_variant(variant)
    r, L = rewards_and_lengths(rewards, lengths)
    A = r - r.mean()
    sig = None
    if v.std_normalised:
        sig = group_sigma(r, sigma, v.sigma_eps)
        if sig <= 0:
            raise InputError(
                f"all rewards are equal, so sigma = 0 and the std-normalised weight of {v.name!r} is undefined; "
                "give rewards that differ (such groups carry no signal) or a variant with sigma_eps > 0"
            )
    masks = dict(masks or {})
    unknown = set(masks) - set(MASK_NAMES)
    if unknown:
        raise InputError(f"unknown mask(s) {sorted(unknown)}; masks are M, lam, chi (per token) and delta (per completion)")
    # the weights kept (8 bytes a token) and the masks and products of the per-token case (~6 arrays)
    check_memory(8.0 * float(L.sum()) + 48.0 * float(L.max()), f"the per-token weights of {int(L.sum()):,} tokens",
                 "give shorter completions or fewer of them")
    fn = _alpha_fn(sp.srepr(v.alpha_with_params()))
    G, Ls, Lm = len(r), int(L.sum()), int(L_max if L_max is not None else L.max())
    s = sig if sig is not None else 1.0
    delta = np.ones(G)
    if "delta" in masks:
        delta = np.asarray(masks["delta"], dtype=np.float64).reshape(-1)
        if delta.shape != (G,):
            raise InputError(f"mask delta must have {G} values (one per completion)")
    token_masks = {key: _flat_mask(masks, key, L) for key in _TOKEN_MASKS if key in masks}
    if not token_masks:
        val = fn(G, L, Ls, Lm, s, A, 1.0, 1.0, delta, 1.0)
        return GroupWeights(r, L, A, sig, np.broadcast_to(np.asarray(val, dtype=np.float64), (G,)).copy(), None)
    ones = np.ones(Ls) if len(token_masks) < len(_TOKEN_MASKS) else None
    M, lam, chi = (token_masks.get(key, ones) for key in _TOKEN_MASKS)
    val = fn(G, np.repeat(L, L), Ls, Lm, s, np.repeat(A, L), M, lam, np.repeat(delta, L), chi)
    return GroupWeights(r, L, A, sig, None, np.broadcast_to(np.asarray(val, dtype=np.float64), (Ls,)).copy())


def group_numbers(
    variant: "str | Variant",
    rewards: Sequence[float],
    lengths: Sequence[int],
    sigma: str = "pop",
    masks: Mapping[str, Sequence] | None = None,
    L_max: int | None = None,
) -> GroupNumbers:
    """Validate a group and evaluate the weights of ``variant`` on it, one array per completion.

    The same numbers as :func:`group_weights`, with alpha split by completion.
    ``masks`` may give ``"M"``/``"lam"``/``"chi"`` (one array per completion) and ``"delta"`` (one
    value per completion); they default to 1. ``L_max`` defaults to the longest completion.

    >>> g = group_numbers("grpo", [1, 0, 0, 1], [10, 30, 20, 40])
    >>> g.A.tolist(), g.sigma
    ([0.5, -0.5, -0.5, 0.5], 0.5)
    >>> float(g.alpha[0][0])  # 1/(G |o_1| sigma) = 1/(4*10*0.5)
    0.05
    """
    return split_by_completion(group_weights(variant, rewards, lengths, sigma=sigma, masks=masks, L_max=L_max))


def split_by_completion(w: GroupWeights) -> GroupNumbers:
    """The group numbers of evaluated weights ``w``, alpha split by completion (nothing is recomputed)."""
    alpha = tuple(np.split(w.token_alpha(), np.cumsum(w.lengths)[:-1]))
    return GroupNumbers(w.rewards, w.lengths, w.A, w.sigma, alpha)


def surprisal_selection(surprisal: Sequence[Sequence[float]], fraction: float = 0.2) -> list[np.ndarray]:
    """STARE's chi_{i,t}: 1 on the group's top ``fraction`` of tokens by surprisal, 0 elsewhere.

    ``surprisal`` is one array per completion (-log pi of each token). The k = ceil(fraction N)
    largest of the N values are selected; a value tied with the k-th largest is selected too (a
    token shared by several completions is selected for all of them or for none).

    >>> [c.tolist() for c in surprisal_selection([[0.1, 3.0], [2.0, 0.5, 3.0]], fraction=0.4)]
    [[0.0, 1.0], [0.0, 0.0, 1.0]]
    """
    parts = [np.asarray(a, dtype=np.float64).ravel() for a in surprisal]
    flat = np.concatenate(parts) if parts else np.zeros(0)
    if not (0 < fraction <= 1) or flat.size == 0 or not np.all(np.isfinite(flat)):
        raise InputError("surprisal needs finite values for every token and 0 < fraction <= 1")
    k = int(np.ceil(fraction * flat.size))
    cut = np.sort(flat)[::-1][k - 1]
    return [(a >= cut).astype(np.float64) for a in parts]
