"""A weight written back as text: :func:`to_formula` prints a SymPy weight in the formula language that
:func:`grpo_proofs.check.formula.parse_weight` reads (the user's symbol names, ``ind(...)`` for indicators,
word boolean operators), so that parse(print(alpha)) == alpha exactly."""

from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from .. import notation as n
from ..errors import InputError

__all__ = ["to_formula"]


class _FormulaPrinter(StrPrinter):
    """sstr with the user's symbol names, ``ind(...)`` for 0/1 Piecewise and word boolean operators."""

    _names = {sym: name for name, sym in n.WEIGHT_SYMBOLS.items()}

    def _print_Symbol(self, expr):
        if expr in self._names:
            return self._names[expr]
        raise InputError(f"symbol {expr} has no formula name; allowed: {', '.join(n.WEIGHT_SYMBOLS)}")

    def _print_Piecewise(self, expr):
        pairs = expr.args
        if len(pairs) == 2 and pairs[0].expr == 1 and pairs[1].expr == 0 and pairs[1].cond == sp.true:
            return f"ind({self._print(pairs[0].cond)})"
        raise InputError(f"{expr} is not an indicator Piecewise((1, cond), (0, True)); write it with ind(...)")

    def _print_And(self, expr):
        return " and ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Or(self, expr):
        return " or ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Not(self, expr):
        return f"not ({self._print(expr.args[0])})"


def to_formula(expr: sp.Expr) -> str:
    """A formula string that :func:`~grpo_proofs.check.formula.parse_weight` reads back to ``expr`` (exactly).

    >>> from grpo_proofs.check.formula import parse_weight
    >>> to_formula(parse_weight("ind(Abs(A_i) > gamma*sigma)/(G*L_i*sigma)"))
    'ind(Abs(A_i) > gamma*sigma)/(G*L_i*sigma)'
    """
    if not isinstance(expr, sp.Basic):
        raise InputError(f"to_formula needs a SymPy expression, got {type(expr).__name__}")
    return _FormulaPrinter().doprint(expr)
