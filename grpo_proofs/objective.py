"""The unified surrogate (arXiv 2601.05002, Eq. 1-3) for a variant and a group.

Two forms of the same objective, built from one per-token term
``phi(s, A) = min(s A, clip(s, 1 - eps_low, 1 + eps_up) A)`` or a later term in its place
(:mod:`grpo_proofs.terms`):

* :func:`surrogate` -- the whole surrogate J of a concrete group (G and the lengths fixed),
  in SymPy, with one symbol ``x_{i,t} = log pi_theta - log pi_old`` per token and symbolic
  centered advantages ``A_1..A_G``; its gradient is taken by SymPy (:mod:`grpo_proofs.gradient`).
* :func:`token_term` -- the same term for one generic token (or one generic sequence), which
  :mod:`grpo_proofs.gradient` differentiates once and compiles to a batched Torch function.

:func:`~grpo_proofs.weights.group_numbers` and :func:`~grpo_proofs.weights.group_weights` (in
:mod:`grpo_proofs.weights`, also importable from here) turn rewards and lengths into the numbers both
forms need (centered advantages, sigma, the per-token weights alpha_{i,t});
:func:`instantiator` substitutes into a derived form fast, many times;
:func:`grpo_proofs.evaluate.torch_surrogate` evaluates J on padded Torch tensors with autograd (the
loss a real model is trained on).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import sympy as sp
from sympy.core.operations import AssocOp
from sympy.functions.elementary.miscellaneous import MinMaxBase

from . import notation as n
# the per-token terms live in terms; named here too, beside the surrogate they build
from .terms import clip_expr, exact, lold, past_clip, phi_expr, phi_parts
from .validate import rewards_and_lengths
from .variants import Ratio, Surrogate, Variant, get_variant
# the numbers of a group live in weights; named here too, beside the surrogate they feed
from .weights import (MASK_NAMES, GroupNumbers, GroupWeights, group_numbers, group_sigma, group_weights,
                      surprisal_selection)

__all__ = [
    "GroupNumbers", "GroupWeights", "SymbolicGroup", "group_numbers", "group_weights", "group_sigma", "clip_expr",
    "past_clip", "phi_expr", "surrogate", "token_term", "exact", "instantiator", "generic_phi", "surprisal_selection",
    "MASK_NAMES",
]


def _raw(node: sp.Basic, args: tuple) -> sp.Basic:
    """``node`` with new ``args``, built without re-running its class's simplifications."""
    cls = type(node)
    if isinstance(node, AssocOp):  # Add, Mul
        return cls._from_args(args, node.is_commutative)
    if isinstance(node, MinMaxBase):
        obj = sp.Expr.__new__(cls, *args)
        obj._argset = frozenset(args)
        return obj
    if isinstance(node, sp.Pow):
        obj = sp.Expr.__new__(cls, *args)
        obj.is_commutative = node.is_commutative
        return obj
    if isinstance(node, sp.Function):  # exp, Heaviside, Abs, Piecewise, ...
        return sp.Expr.__new__(cls, *args)
    return node.func(*args)


def _same_kind(arg, values: dict) -> bool:
    """True unless ``arg`` is replaced by something other than a symbol of its own assumptions."""
    new = values.get(arg)
    return new is None or (isinstance(new, sp.Symbol) and new.assumptions0 == arg.assumptions0)


def instantiator(expr: sp.Expr, keys) -> "Callable[[dict], sp.Expr]":
    """A function that substitutes values for the symbols ``keys`` in ``expr``, fast, many times.

    ``expr`` is a derived form in generic symbols (one token, one completion); the returned
    function maps ``{key: value}`` to ``expr`` at those values. A symbol replaced by a symbol
    of the same assumptions (x -> x_{i,t}, A_i -> A_1) leaves every simplification SymPy made
    valid, so the nodes above it are rebuilt as they are, without re-evaluation (re-running the
    Min/Max/Heaviside simplifications is what makes ``xreplace`` slow). A sum, product or power
    with a replaced argument that is not such a symbol is built by its own constructor (so that
    alpha = 1/(G L_i sigma) joins the product it multiplies); functions (exp, Heaviside, Min, Max)
    of such a value are kept unevaluated, so values should be symbolic (a sum of log-ratios, an
    advantage symbol), not numbers. The result equals ``expr.xreplace(values)`` up to the order of
    commutative arguments and unevaluated functions.

    >>> x, y, A = sp.symbols("x y A", real=True)
    >>> f = instantiator(sp.Min(A * sp.exp(x), 1), (x, A))
    >>> f({x: y, A: sp.Rational(1, 2)})
    Min(1, exp(y)/2)
    """
    keys = frozenset(keys)
    # the nodes that contain a key, children before parents (each once), with the positions of
    # their arguments that change
    plan: list = []
    seen: dict = {}

    def visit(node) -> bool:
        hit = seen.get(node)
        if hit is None:
            if node in keys:
                hit = True
            else:
                moved = [k for k, a in enumerate(node.args) if visit(a)]
                hit = bool(moved)
                if hit:
                    direct = [a for a in node.args if a in keys]
                    check = tuple(direct) if isinstance(node, (AssocOp, sp.Pow)) else ()
                    plan.append((node, tuple((k, node.args[k]) for k in moved), check))
            seen[node] = hit
        return hit

    visit(expr)

    def build(values: dict) -> sp.Expr:
        new = dict(values)
        for node, moved, check in plan:
            args = list(node.args)
            for k, child in moved:
                args[k] = new.get(child, child)
            if check and not all(_same_kind(a, values) for a in check):
                new[node] = node.func(*args)
            else:
                new[node] = _raw(node, tuple(args))
        return new.get(expr, expr)

    return build


@lru_cache(maxsize=64)
def generic_phi(eps_low: float | None, eps_up: float | None) -> sp.Expr:
    """phi(exp(u), A_i) of a clip (None: that side open), built once per clip and cached."""
    from types import SimpleNamespace

    shape = SimpleNamespace(eps_low=eps_low, eps_up=eps_up, clipped=eps_low is not None or eps_up is not None)
    return phi_expr(shape, sp.exp(n.u), n.A_i)


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

    def term_at_one(self, i: int) -> sp.Expr:
        """J_i at s = 1 (every log-ratio 0): :meth:`term` with x = 0 put into the template before it is
        written out token by token, so only log pi_old (where the term reads it) varies over the tokens."""
        if self.variant.sequence_level:
            return self.template[i].subs(S_sum, 0)
        zero = {n.x: sp.Integer(0), n.u: sp.Integer(0)}
        stops = {k: val.xreplace(zero) for k, val in (self.stops[i].items() if self.stops else ())}
        f = self.template[i].subs(stops).xreplace(zero)
        if not self.old or lold not in f.free_symbols:
            return self.lengths[i] * f
        return sp.Add(*(f.xreplace({lold: self.old[i][t]}) for t in range(self.lengths[i])))

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
    phi = instantiator(generic_phi(v.eps_low, v.eps_up), (n.u, n.A_i))  # phi(exp(u), A_i), built once
    for i in range(G):
        if v.ratio is Ratio.TOKEN and v.surrogate is Surrogate.CLIP:
            templates.append(alpha[i] * phi({n.u: n.x, n.A_i: A[i]}))
            stops.append({})
        elif v.ratio is Ratio.SEQ_GEOMEAN:  # sum_t alpha_i phi(s_i) with s_i = exp(S_i / |o_i|)
            templates.append(sp.Add(*[alpha[i]] * int(L[i])) * phi({n.u: S_sum / int(L[i]), n.A_i: A[i]}))
        elif v.ratio is Ratio.SEQ_PRODUCT:  # s_i = exp(S_i)
            templates.append(sp.Add(*[alpha[i]] * int(L[i])) * phi({n.u: S_sum, n.A_i: A[i]}))
        else:  # the other token-level terms: alpha phi, phi of phi_parts (log pi = x + log pi_old where it appears)
            term, stop = phi_parts(v, n.x, A[i], lold)
            templates.append(alpha[i] * term)
            stops.append(stop)
    return SymbolicGroup(v, tuple(int(l) for l in L), xs, A, alpha, tuple(templates), old,
                         tuple(stops) if any(stops) else ())


def token_term(variant: "str | Variant") -> tuple[sp.Expr, dict]:
    """The surrogate's term for one generic token (token-level kinds) or one sequence.

    Returns ``(term, extra)``. Token-level kinds: ``alpha * phi`` in the symbols ``alpha, A_i, x``
    (and ``lold`` = log pi_old where the term uses it), ``extra`` its stop-gradient placeholders
    (:func:`grpo_proofs.terms.phi_parts`; a sequence weight's placeholder is written in u, the completion's
    summed log-ratio). Sequence kinds: ``Omega * phi(s_i, A)`` where s_i is written through one
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
