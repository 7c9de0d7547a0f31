"""The unified surrogate (arXiv 2601.05002, Eq. 1-3) for a variant and a group.

Two forms of the same objective, built from one per-token term
``phi(s, A) = min(s A, clip(s, 1 - eps_low, 1 + eps_up) A)`` or a later term in its place
(:mod:`grpo_proofs.terms`):

* :func:`surrogate` -- the whole surrogate J of a concrete group (G and the lengths fixed),
  in SymPy, with one symbol ``x_{i,t} = log pi_theta - log pi_old`` per token and symbolic
  centered advantages ``A_1..A_G``; its gradient is taken by SymPy (:mod:`grpo_proofs.gradient`).
* :func:`token_term` -- the same term for one generic token (or one generic sequence), which
  :mod:`grpo_proofs.gradient` differentiates once and compiles to a batched Torch function.

:func:`group_numbers` turns rewards and lengths into the numbers both forms need (centered
advantages, sigma, the per-token weights alpha_{i,t}); :func:`grpo_proofs.evaluate.torch_surrogate` evaluates J on
padded Torch tensors with autograd (the loss a real model is trained on).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
import sympy as sp

from . import notation as n
from .errors import InputError
from .terms import lold, phi_expr, phi_parts
from .validate import check_memory, rewards_and_lengths, sigma_kind
from .variants import Ratio, Variant, get_variant

__all__ = [
    "GroupNumbers", "SymbolicGroup", "group_numbers", "group_sigma", "surrogate", "token_term", "surprisal_selection",
    "MASK_NAMES",
]

#: the per-token / per-completion masks a weight may contain (1 unless given)
MASK_NAMES = ("M", "lam", "delta", "chi")


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


def group_numbers(
    variant: "str | Variant",
    rewards: Sequence[float],
    lengths: Sequence[int],
    sigma: str = "pop",
    masks: Mapping[str, Sequence] | None = None,
    L_max: int | None = None,
) -> GroupNumbers:
    """Validate a group and evaluate the weights of ``variant`` on it.

    ``masks`` may give ``"M"``/``"lam"``/``"chi"`` (one array per completion) and ``"delta"``
    (one value per completion); they default to 1. ``L_max`` defaults to the longest completion.

    >>> g = group_numbers("grpo", [1, 0, 0, 1], [10, 30, 20, 40])
    >>> g.A.tolist(), g.sigma
    ([0.5, -0.5, -0.5, 0.5], 0.5)
    >>> float(g.alpha[0][0])  # 1/(G |o_1| sigma) = 1/(4*10*0.5)
    0.05
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
    # the weights kept (8 bytes a token) and one completion's temporaries (masks, products: ~6 arrays)
    check_memory(8.0 * float(L.sum()) + 48.0 * float(L.max()), f"the per-token weights of {int(L.sum()):,} tokens",
                 "give shorter completions or fewer of them")
    fn = _alpha_fn(sp.srepr(v.alpha_with_params()))
    G, Ls, Lm = len(r), int(L.sum()), int(L_max if L_max is not None else L.max())
    alpha = []
    for i in range(G):
        Mi = np.asarray(masks["M"][i], dtype=np.float64) if "M" in masks else np.ones(L[i])
        li = np.asarray(masks["lam"][i], dtype=np.float64) if "lam" in masks else np.ones(L[i])
        ci = np.asarray(masks["chi"][i], dtype=np.float64) if "chi" in masks else np.ones(L[i])
        di = float(masks["delta"][i]) if "delta" in masks else 1.0
        if Mi.shape != (L[i],) or li.shape != (L[i],) or ci.shape != (L[i],):
            raise InputError(f"mask for completion {i} must have {L[i]} values (one per token)")
        val = fn(G, int(L[i]), Ls, Lm, sig if sig is not None else 1.0, A[i], Mi, li, di, ci)
        alpha.append(np.broadcast_to(np.asarray(val, dtype=np.float64), (int(L[i]),)).copy())
    return GroupNumbers(r, L, A, sig, tuple(alpha))


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


#: summed log-ratio S_i = sum_t x_{i,t} of one completion (sequence-level ratios)
S_sum = sp.Symbol("S", real=True)

@dataclass(frozen=True)
class SymbolicGroup:
    """J of Eq. 1 (advantage part, beta = 0) for a concrete group, in SymPy.

    Completion i contributes J_i, which is written through one per-completion template:
    token-level kinds ``J_i = sum_t f_i(x_{i,t})`` (``template[i]`` is f_i of the symbol ``x``),
    sequence kinds ``J_i = F_i(S_i)`` with ``S_i = sum_t x_{i,t}`` (``template[i]`` is F_i of ``S``).
    """

    variant: Variant
    lengths: tuple[int, ...]
    #: x_{i,t} = log pi_theta(y_{i,t}) - log pi_old(y_{i,t}), the variables of J
    x: tuple[tuple[sp.Symbol, ...], ...]
    #: centered advantages A_1..A_G (symbols)
    A: tuple[sp.Symbol, ...]
    #: alpha_{i,t} of completion i with G and the lengths substituted (sigma, masks stay symbolic)
    alpha: tuple[sp.Expr, ...]
    #: per-completion template (see the class docstring)
    template: tuple[sp.Expr, ...]
    #: log pi_old_{i,t} symbols (surrogates that use log pi or pi_old itself; empty otherwise)
    old: tuple[tuple[sp.Symbol, ...], ...]
    #: per completion: the stop-gradient placeholders of its template and their values (in x, lold, u)
    stops: tuple[dict, ...] = ()

    def stop(self, i: int) -> dict:
        """Completion i's stop-gradient values, with u (a sequence's log-ratio) written out."""
        if not self.stops:
            return {}
        return {k: val.subs(n.u, sp.Add(*self.x[i])) for k, val in self.stops[i].items()}

    def token_symbols(self, i: int, t: int) -> dict:
        """The substitution that turns completion i's template into its token t."""
        sub = {n.x: self.x[i][t]}
        if self.old:
            sub[lold] = self.old[i][t]
        return sub

    def term(self, i: int) -> sp.Expr:
        """J_i, written out token by token."""
        if self.variant.sequence_level:
            return self.template[i].subs(S_sum, sp.Add(*self.x[i]))
        f = self.template[i].subs(self.stop(i))
        return sp.Add(*(f.xreplace(self.token_symbols(i, t)) for t in range(self.lengths[i])))

    @property
    def terms(self) -> tuple[sp.Expr, ...]:
        return tuple(self.term(i) for i in range(len(self.lengths)))

    @property
    def J(self) -> sp.Expr:
        return sp.Add(*self.terms)


def surrogate(variant: "str | Variant", lengths: Sequence[int]) -> SymbolicGroup:
    """Build J = sum_i sum_t alpha_{i,t} phi(s_{i,t}, A_i) for a concrete group in SymPy.

    >>> g = surrogate("dr_grpo", [1, 2])
    >>> g.term(0)
    Min(A_1*exp(x_1_1), A_1*Min(6/5, Max(4/5, exp(x_1_1))))/2
    >>> surrogate("gspo", [2, 1]).term(0)
    Min(A_1*exp(x_1_1/2 + x_1_2/2), A_1*Min(2501/2500, Max(9997/10000, exp(x_1_1/2 + x_1_2/2))))/(2*sigma)
    """
    v = get_variant(variant)
    _, L = rewards_and_lengths([0.0] * len(lengths), lengths)
    G = len(L)
    xs = tuple(tuple(sp.Symbol(f"x_{i + 1}_{t + 1}", real=True) for t in range(L[i])) for i in range(G))
    A = tuple(sp.Symbol(f"A_{i + 1}", real=True) for i in range(G))
    base = v.alpha_with_params().subs({n.G: G, n.L_sum: int(L.sum())})
    alpha = tuple(base.subs({n.L_i: int(L[i]), n.A_i: A[i]}) for i in range(G))
    old: tuple = ()
    if v.ratio in (Ratio.LOGPROB, Ratio.SG_WEIGHT, Ratio.SEQ_SG_WEIGHT) or v.needs_old_logp:
        old = tuple(tuple(sp.Symbol(f"lold_{i + 1}_{t + 1}", real=True) for t in range(L[i])) for i in range(G))
    templates, stops = [], []
    for i in range(G):
        if v.ratio is Ratio.SEQ_GEOMEAN:  # sum_t alpha_i phi(s_i) with s_i = exp(S_i / |o_i|)
            templates.append(sp.Add(*[alpha[i]] * int(L[i])) * phi_expr(v, sp.exp(S_sum / int(L[i])), A[i]))
        elif v.ratio is Ratio.SEQ_PRODUCT:  # s_i = exp(S_i)
            templates.append(sp.Add(*[alpha[i]] * int(L[i])) * phi_expr(v, sp.exp(S_sum), A[i]))
        else:  # token-level terms: alpha phi, phi of phi_parts (log pi = x + log pi_old where it appears)
            term, stop = phi_parts(v, n.x, A[i], lold)
            templates.append(alpha[i] * term)
            stops.append(stop)
    return SymbolicGroup(v, tuple(int(l) for l in L), xs, A, alpha, tuple(templates), old, tuple(stops))


def token_term(variant: "str | Variant") -> tuple[sp.Expr, dict]:
    """The surrogate's term for one generic token (token-level kinds) or one sequence.

    Returns ``(term, extra)``. Token-level kinds: ``alpha * phi`` in the symbols ``alpha, A_i, x``
    (and ``lold`` = log pi_old where the term uses it), ``extra`` its stop-gradient placeholders
    (:func:`grpo_proofs.terms.phi_parts`; a sequence weight's placeholder is written in u, the completion's summed
    log-ratio). Sequence kinds: ``Omega * phi(s_i, A)`` where s_i is written through one
    token's log-ratio ``x`` and the sum ``rest`` of the others (``s_i = exp((x + rest)/L_i)`` or
    ``exp(x + rest)``), so that d/dx is the derivative with respect to that token.
    """
    v = get_variant(variant)
    if v.ratio in (Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT):
        rest = sp.Symbol("rest", real=True)
        si = sp.exp((n.x + rest) / n.L_i) if v.ratio is Ratio.SEQ_GEOMEAN else sp.exp(n.x + rest)
        return n.Omega * phi_expr(v, si, n.A_i), {"rest": rest}
    term, stop = phi_parts(v, n.x, n.A_i, lold)
    return n.a * term, stop
