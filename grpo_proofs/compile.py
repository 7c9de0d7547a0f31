"""The one bridge from SymPy to numbers: :func:`to_torch`, :func:`to_numpy` and :func:`to_mpmath`.

Every SymPy expression that becomes a number goes through this module, the only caller of
``sympy.lambdify`` and the only module that imports both SymPy and Torch.

SymPy 1.14's torch printer writes ``Min``/``Max`` as ``min``/``max`` and ``Heaviside`` as
``heaviside``, which fail on a mix of tensors and Python scalars. ``FIX`` overrides those three
names with ``torch.minimum``/``torch.maximum`` on tensors (n-ary Min/Max fold pairwise) and
Heaviside with (sign(x) + 1)/2 (``torch.heaviside`` for another value at 0). Everything else is
SymPy's own torch printer, so the result is an ordinary
batched, autograd-capable Torch function.

Tie convention at a clip bound (stated here, for the whole project): SymPy's ``Heaviside(0) = 1/2``
is kept as is (the compiled function gives 1/2 at 0). The derived gradient of a
token-ratio surrogate, min(s A, clip(s) A), has two kinks on the bound s = 1 + eps_up (the Min and the
clip's Max/Min), each taking 1/2, so there it is 1/2 + 1/4 = 3/4 of the unclipped alpha A s. Torch
autograd of ``torch.minimum`` also splits a tie in half, but ``torch.clamp`` passes the full gradient at
its bounds, so autograd of the clamp-based reference losses gives the full alpha A s. The two differ
exactly on the bounds; checks keep random points off them (both values are asserted in
``tests/test_gradient.py::test_tie_convention`` and ``tests/test_reference.py``).

>>> import sympy as sp, torch
>>> x = sp.Symbol("x")
>>> f = to_torch([x], sp.Min(x, 1) + sp.Heaviside(x - 2))
>>> f(torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)).tolist()
[0.5, 1.5, 2.0]
"""

from __future__ import annotations

from functools import lru_cache, reduce
from typing import Callable, NamedTuple, Sequence

import sympy as sp
import torch

__all__ = ["FIX", "to_torch", "to_numpy", "to_mpmath", "gradient_fn", "staged_gradient_fn", "Staged", "hoist",
           "term_fn", "clip_fn", "stopped_term_fn"]


def _tensors(args: Sequence) -> list[torch.Tensor]:
    like = next((a for a in args if isinstance(a, torch.Tensor)), None)
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else None
    return [a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=dtype, device=device) for a in args]


def _minimum(*args):
    return reduce(torch.minimum, _tensors(args))


def _maximum(*args):
    return reduce(torch.maximum, _tensors(args))


def _heaviside(x, h0=0.5):
    (x,) = _tensors([x])
    if float(h0) == 0.5:  # (sign(x) + 1)/2: the same values, a third of torch.heaviside's time on the CPU
        return torch.sign(x).add_(1).mul_(0.5)
    return torch.heaviside(x, torch.as_tensor(float(h0), dtype=x.dtype, device=x.device))


#: the three-entry namespace override
FIX = {"min": _minimum, "max": _maximum, "heaviside": _heaviside}


def to_torch(args: Sequence[sp.Symbol], expr: sp.Expr) -> Callable[..., torch.Tensor]:
    """Compile ``expr`` to a batched Torch function of ``args`` (tensors broadcast)."""
    fn = sp.lambdify(list(args), expr, modules=[FIX, "torch"], cse=True)

    def call(*values):
        out = fn(*values)
        if not isinstance(out, torch.Tensor):  # a constant expression: broadcast to the inputs
            like = next(v for v in values if isinstance(v, torch.Tensor))
            out = torch.full_like(like, float(out))
        return out

    call.__doc__ = f"Compiled from SymPy: {expr}"
    return call


def to_numpy(args: Sequence[sp.Symbol], expr) -> Callable:
    """Compile ``expr`` to a NumPy function of ``args`` (arrays broadcast).

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> to_numpy([x, y], x * y + 1)(2.0, 3.0)
    7.0
    """
    return _numpy_fn(tuple(args), expr)


@lru_cache(maxsize=1024)
def _numpy_fn(args: tuple, expr) -> Callable:
    """to_numpy's compiled functions, one per (arguments, expression): lambdify writes and compiles
    Python source, milliseconds that callers evaluating the same weight again should not pay."""
    return sp.lambdify(list(args), expr, modules="numpy")


def to_mpmath(args: Sequence[sp.Symbol], expr) -> Callable:
    """Compile ``expr`` to an mpmath function of ``args`` (arbitrary precision at ``mpmath.mp.dps``).

    >>> import mpmath, sympy as sp
    >>> x = sp.Symbol("x")
    >>> with mpmath.workdps(30):
    ...     print(to_mpmath([x], sp.sqrt(x))(2))
    1.41421356237309504880168872421
    """
    return sp.lambdify(list(args), expr, modules="mpmath")


# -- the compiled forms of a variant's surrogate (cached per variant) --------------------------


@lru_cache(maxsize=128)
def gradient_fn(variant) -> Callable[..., torch.Tensor]:
    """The SymPy-derived per-token gradient of ``variant``, compiled (see
    :func:`grpo_proofs.gradient.generic_gradient` for its arguments)."""
    from .gradient import generic_gradient

    expr, args = generic_gradient(variant)
    return to_torch(args, expr)


def hoist(expr: sp.Expr, outer: set) -> tuple[sp.Expr, list[tuple[sp.Symbol, sp.Expr]]]:
    """Split ``expr`` into an outer expression and the subexpressions free of the ``outer`` symbols.

    Every maximal subexpression that depends on some symbol but on none of ``outer`` (the
    per-token inputs) becomes a placeholder symbol: such a part is the same on every token of a
    completion, so it can be evaluated once per completion. Within a sum or product the
    per-completion terms or factors are gathered into one placeholder. Returns the outer
    expression and the (placeholder, subexpression) pairs; substituting them back gives ``expr``.

    >>> import sympy as sp
    >>> a, x, A = sp.symbols("a x A")
    >>> hoist(a * A**2 * sp.exp(x) * sp.Heaviside(A), {a, x})
    (_c0*a*exp(x), [(_c0, A**2*Heaviside(A))])
    """
    parts: dict[sp.Expr, sp.Symbol] = {}

    def per_completion(e):
        return bool(e.free_symbols) and not (e.free_symbols & outer)

    def name(e):
        if e not in parts:
            parts[e] = sp.Symbol(f"_c{len(parts)}")
        return parts[e]

    def walk(e):
        if per_completion(e):
            return name(e)
        if e.is_Atom:
            return e
        if isinstance(e, (sp.Add, sp.Mul)):
            inner = [a for a in e.args if per_completion(a)]
            rest = [walk(a) for a in e.args if not per_completion(a)]
            return e.func(*rest, *([name(e.func(*inner))] if inner else []))
        return e.func(*[walk(a) for a in e.args])

    out = walk(expr)
    return out, [(c, e) for e, c in parts.items()]


class Staged(NamedTuple):
    """A gradient in two stages (:func:`staged_gradient_fn`); ``tokens``/``completions`` name the arguments."""

    outer: Callable
    inner: Callable | None
    tokens: tuple[str, ...]
    completions: tuple[str, ...]


@lru_cache(maxsize=256)
def staged_gradient_fn(variant, per_token: tuple[str, ...]) -> Staged:
    """The derived per-token gradient of ``variant`` in two stages (a :class:`Staged`).

    ``per_token`` names the arguments of :func:`gradient_fn` that vary from token to token (e.g.
    ``("x",)``, or ``("alpha", "x")`` when the weights do); the others are one value per completion.
    ``inner(*per-completion arguments)`` returns the per-completion parts (a list, see :func:`hoist`),
    to be repeated onto the tokens; ``outer(*per-token arguments, *parts)`` is the gradient. ``inner``
    is None when nothing is per completion. Same expression as :func:`gradient_fn`, fewer operations
    on the tokens.
    """
    from .gradient import generic_gradient

    expr, args = generic_gradient(variant)
    tok = [a for a in args if str(a) in per_token]
    comp = [a for a in args if str(a) not in per_token]
    out, parts = hoist(expr, set(tok))
    if parts:  # per-token inputs the gradient does not read (REINFORCE's x) are not passed
        tok = [a for a in tok if a in out.free_symbols]
    names = (tuple(map(str, tok)), tuple(map(str, comp)))
    if not parts:
        return Staged(to_torch(tok, out), None, *names)
    inner = sp.lambdify(comp, [e for _, e in parts], modules=[FIX, "torch"], cse=True)

    def parts_of(*values):
        vals = _tensors(values)
        return [v if isinstance(v, torch.Tensor) else torch.full_like(vals[0], float(v)) for v in inner(*vals)]

    return Staged(to_torch(tok + [c for c, _ in parts], out), parts_of, *names)


@lru_cache(maxsize=128)
def term_fn(variant) -> Callable[..., torch.Tensor]:
    """The per-token (or per-sequence) surrogate term ``phi`` of ``variant``, compiled.

    Token ratio: ``alpha * phi(exp(x), A)`` of ``(alpha, A_i, x)``. Sequence ratios:
    ``phi(exp(u), A)`` of ``(A_i, u)`` with u the log of the sequence ratio (multiply by Omega_i).
    """
    from . import notation as n
    from .terms import phi_expr

    if variant.sequence_level:
        return to_torch([n.A_i, n.u], phi_expr(variant, sp.exp(n.u), n.A_i))
    return to_torch([n.a, n.A_i, n.x], n.a * phi_expr(variant, sp.exp(n.x), n.A_i))


@lru_cache(maxsize=128)
def clip_fn(variant) -> Callable[..., torch.Tensor]:
    """clip(s, 1 - eps_low, 1 + eps_up) of ``variant`` as a function of the log-ratio x, compiled."""
    from . import notation as n
    from .terms import clip_expr

    return to_torch([n.x], clip_expr(variant, sp.exp(n.x)))


@lru_cache(maxsize=128)
def stopped_term_fn(variant) -> Callable[..., torch.Tensor]:
    """The per-token term ``alpha * phi`` of a token-level variant with its stop-gradients, compiled.

    Returns ``f(alpha, A_i, x, lold, u)``: ``x`` the token's log-ratio, ``lold`` its log pi_old
    (``x + lold`` = log pi_theta), ``u`` the completion's summed log-ratio (sequence weights). Each
    stop-gradient placeholder of :func:`grpo_proofs.terms.phi_parts` is evaluated from the same
    inputs and detached before it enters the term, so autograd of ``f`` is the derived gradient.
    """
    from . import notation as n
    from .objective import token_term
    from .terms import lold

    term, stops = token_term(variant)
    ph = sorted(stops, key=str)
    f = to_torch([n.a, n.A_i, n.x, lold, *ph], term)
    parts = [to_torch([n.A_i, n.x, lold, n.u], stops[p]) for p in ph]

    def call(alpha, A, x, old, u):
        vals = [torch.broadcast_to(g(A, x, old, u), x.shape).detach() for g in parts]
        return f(alpha, A, x, old, *vals)

    return call
