"""Safe parsing of a weight formula string into SymPy, and printing it back.

A user spec gives the per-token weight alpha_{i,t} of the unified surrogate (arXiv 2601.05002,
Eq. 1) as text, e.g. ``alpha: "1/(G*L_i*sigma)"``. The text is parsed with Python's :mod:`ast`
(``mode="eval"``, which only builds a tree) and every node is checked against a whitelist; the
SymPy expression is then built node by node from that tree. Nothing is ever evaluated as Python:
no ``eval``, no ``sympify`` of the raw string (``sympify`` runs ``eval``).

Allowed:

* numbers (int and float literals; floats become the exact decimal they spell, 0.2 -> 1/5);
* the documented symbols :data:`grpo_proofs.notation.WEIGHT_SYMBOLS` (``G``, ``L_i``, ``L_sum``,
  ``L_max``, ``sigma``, ``A_i``, ``M``, ``lam``, ``delta``, ``gamma``, ``F_norm``, ``alpha_hat``);
  the paper's ``|o_i|`` (also ``|y_i|``) is read as ``L_i``, the length of completion i;
* ``+ - * / **`` and unary ``-``/``+`` (a numeric exponent must satisfy ``|p| <= 64``);
* calls of the functions in :data:`FUNCTIONS`: ``sqrt exp log Abs Min Max Heaviside`` and the
  indicator ``ind(condition)`` = 1 if the condition holds else 0;
* comparisons ``< <= > >=`` (chains too) and ``and``/``or``/``not`` -- only inside ``ind(...)``.

Everything else (attribute access, subscripts, lambdas, keyword or starred arguments, strings,
comprehensions, calls of any other name, ``__import__``...) raises :class:`InputError` naming the
offending piece. Names for the policy itself (``pi``, ``logp``, ``theta``, ``s``, ``ratio``,
``x``...) get a specific error: alpha is a constant in theta.

>>> parse_weight("1/(G*L_i*sigma)")
1/(G*L_i*sigma)
>>> parse_weight("ind(Abs(A_i) > gamma*sigma) / (G*sqrt(L_i))")
Piecewise((1, Abs(A_i) > gamma*sigma), (0, True))/(G*sqrt(L_i))
>>> from grpo_proofs.check.formula_text import to_formula
>>> to_formula(parse_weight("lam*delta/(G*L_i)"))
'delta*lam/(G*L_i)'
"""

from __future__ import annotations

import ast
import difflib
import re

import sympy as sp

from .. import notation as n
from ..errors import InputError, kind_of

__all__ = ["parse_weight", "FUNCTIONS", "POLICY_NAMES", "MAX_LENGTH", "MAX_EXPONENT"]

#: the longest formula accepted (characters) and the largest |numeric exponent|
MAX_LENGTH = 2000
MAX_EXPONENT = 64
_MAX_NODES = 400

#: names that denote the policy (or its ratio / log-probs): a weight must not depend on them
POLICY_NAMES = frozenset({
    "pi", "pi_theta", "pi_old", "pi_ref", "logp", "log_pi", "logprob", "logprobs", "theta", "s", "s_i",
    "s_it", "ratio", "x", "u", "I", "importance", "log_ratio", "prob", "p_theta",
})


def _ind(cond):
    return sp.Piecewise((1, cond), (0, True))


#: function name -> (builder, number of arguments: exact int, or (min, None) for n-ary)
FUNCTIONS = {
    "sqrt": (sp.sqrt, 1), "exp": (sp.exp, 1), "log": (sp.log, 1), "Abs": (sp.Abs, 1),
    "Min": (sp.Min, (2, None)), "Max": (sp.Max, (2, None)), "Heaviside": (sp.Heaviside, 1),
    "ind": (_ind, 1),
}

_BIN = {ast.Add: sp.Add, ast.Sub: lambda a, b: a - b, ast.Mult: sp.Mul, ast.Div: lambda a, b: a / b,
        ast.Pow: sp.Pow}
_CMP = {ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan, ast.Gt: sp.StrictGreaterThan, ast.GtE: sp.GreaterThan}
_OP_TEXT = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitXor: "^ (use ** for powers)",
            ast.BitAnd: "&", ast.BitOr: "| (write Abs(x) for |x|, L_i or |o_i| for a length)", ast.LShift: "<<", ast.RShift: ">>", ast.Invert: "~",
            ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


def _short(text: str, limit: int = 80) -> str:
    """repr of a formula for an error line, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


class _Builder:
    """Walks a parsed tree; every node type not handled here is refused."""

    def __init__(self, text: str, shown: str | None = None):
        self.text = text
        self.shown = shown or _short(text)

    def piece(self, node: ast.AST) -> str:
        seg = ast.get_source_segment(self.text, node)
        seg = seg if seg is not None else type(node).__name__
        return seg if len(seg) <= 60 else seg[:60] + "..."

    def refuse(self, node: ast.AST, what: str) -> InputError:
        return InputError(f"weight formula {self.shown}: {what} ({self.piece(node)!r}) is not allowed; "
                          f"use numbers, the symbols {', '.join(n.WEIGHT_SYMBOLS)}, + - * / ** and "
                          f"{', '.join(FUNCTIONS)}")

    def build(self, node: ast.AST, boolean: bool = False):
        is_cond = isinstance(node, (ast.Compare, ast.BoolOp)) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not))
        if boolean and not is_cond:
            raise InputError(f"weight formula {self.shown}: ind(...) needs a condition such as "
                             f"ind(Abs(A_i) > gamma*sigma), got {self.piece(node)!r}")
        meth = getattr(self, f"_{type(node).__name__}", None)
        if meth is None:
            raise self.refuse(node, _describe(node))
        return meth(node, boolean)

    # -- leaves -------------------------------------------------------------------------------
    def _Constant(self, node: ast.Constant, boolean: bool):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.refuse(node, "a string" if isinstance(v, (str, bytes)) else f"the constant {type(v).__name__}")
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise self.refuse(node, "a non-finite number")
            return sp.Rational(repr(v))
        return sp.Integer(v)

    def _Name(self, node: ast.Name, boolean: bool):
        name = node.id
        if name in n.WEIGHT_SYMBOLS:
            return n.WEIGHT_SYMBOLS[name]
        if name in POLICY_NAMES:
            raise InputError(
                f"weight formula {self.shown}: {name!r} depends on the policy; the weight alpha_(i,t) must not "
                "depend on theta (it multiplies the surrogate as a constant: the ratio goes in `ratio:`, the "
                "log-probs in the surrogate itself)")
        if name in FUNCTIONS:
            raise self.refuse(node, f"the function {name} without a call")
        hint = difflib.get_close_matches(name, list(n.WEIGHT_SYMBOLS) + list(FUNCTIONS), n=1)
        raise InputError(f"weight formula {self.shown}: unknown symbol {name!r}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else "")
                         + f"; allowed symbols: {', '.join(n.WEIGHT_SYMBOLS)}")

    # -- arithmetic ---------------------------------------------------------------------------
    def _BinOp(self, node: ast.BinOp, boolean: bool):
        op = _BIN.get(type(node.op))
        if op is None:
            raise self.refuse(node, f"the operator {_OP_TEXT.get(type(node.op), type(node.op).__name__)}")
        a, b = self.build(node.left), self.build(node.right)
        if isinstance(node.op, ast.Pow) and b.is_number and not (abs(b) <= MAX_EXPONENT):
            raise self.refuse(node, f"an exponent larger than {MAX_EXPONENT} in absolute value")
        return op(a, b)

    def _UnaryOp(self, node: ast.UnaryOp, boolean: bool):
        if isinstance(node.op, ast.Not):
            if not boolean:
                raise self.refuse(node, "'not' outside ind(...)")
            return sp.Not(self.build(node.operand, True))
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            val = self.build(node.operand)
            return -val if isinstance(node.op, ast.USub) else val
        raise self.refuse(node, f"the operator {_OP_TEXT.get(type(node.op), type(node.op).__name__)}")

    # -- conditions (inside ind only) ---------------------------------------------------------
    def _Compare(self, node: ast.Compare, boolean: bool):
        if not boolean:
            raise self.refuse(node, "a comparison outside ind(...)")
        terms = [self.build(node.left)] + [self.build(c) for c in node.comparators]
        parts = []
        for op, lhs, rhs in zip(node.ops, terms, terms[1:]):
            rel = _CMP.get(type(op))
            if rel is None:
                raise self.refuse(node, f"the comparison {_OP_TEXT.get(type(op), type(op).__name__)}")
            parts.append(rel(lhs, rhs))
        return sp.And(*parts) if len(parts) > 1 else parts[0]

    def _BoolOp(self, node: ast.BoolOp, boolean: bool):
        if not boolean:
            raise self.refuse(node, "'and'/'or' outside ind(...)")
        vals = [self.build(v, True) for v in node.values]
        return sp.And(*vals) if isinstance(node.op, ast.And) else sp.Or(*vals)

    # -- calls --------------------------------------------------------------------------------
    def _Call(self, node: ast.Call, boolean: bool):
        if not isinstance(node.func, ast.Name):
            raise self.refuse(node.func, _describe(node.func) if not isinstance(node.func, ast.Attribute)
                              else "attribute access")
        name = node.func.id
        if name not in FUNCTIONS:
            if name in n.WEIGHT_SYMBOLS:
                raise self.refuse(node, f"calling the symbol {name}")
            hint = difflib.get_close_matches(name, list(FUNCTIONS), n=1, cutoff=0.5)
            hint = hint or [f for f in FUNCTIONS if f.lower() == name.lower()]
            raise InputError(f"weight formula {self.shown}: call of the unknown function {name!r}"
                             + (f" (did you mean {hint[0]!r}?)" if hint else "")
                             + f"; allowed functions: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise self.refuse(node.keywords[0].value if node.keywords[0].arg is None else node,
                              "a keyword argument" if node.keywords[0].arg else "a ** argument")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.refuse(a, "a starred argument")
        fn, arity = FUNCTIONS[name]
        lo, hi = (arity, arity) if isinstance(arity, int) else arity
        if len(node.args) < lo or (hi is not None and len(node.args) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}"
            raise InputError(f"weight formula {self.shown}: {name} takes {want} argument(s), got {len(node.args)} "
                             f"in {self.piece(node)!r}")
        return fn(*[self.build(a, boolean=(name == "ind")) for a in node.args])


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Attribute: "attribute access", ast.Subscript: "a subscript", ast.Lambda: "a lambda",
        ast.Starred: "a starred expression", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment expression", ast.JoinedStr: "an f-string", ast.List: "a list",
        ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set", ast.Await: "await",
        ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice",
    }
    return kinds.get(type(node), f"the syntax {type(node).__name__}")


#: |o_i| (or |y_i|, |o|), the length of completion i as the paper writes it: read as L_i
_LENGTH_BARS = re.compile(r"\|\s*[oy](?:_\{?i\}?)?\s*\|")


def _lengths(text: str) -> str:
    """``|o_i|`` -> ``L_i``, padded with spaces to the same width (error positions stay those of ``text``).

    >>> _lengths("1/(G*|o_i|*sigma)")
    '1/(G* L_i *sigma)'
    """
    return _LENGTH_BARS.sub(lambda m: "L_i".center(len(m.group(0))) if len(m.group(0)) >= 3 else "L_i", text)


def _syntax_error(text: str, e: SyntaxError) -> str:
    """One line: what is wrong, where (character position and the text from there), what is allowed."""
    where = ""
    if e.offset is not None and e.lineno in (None, 1):
        col = max(min(e.offset, len(text) + 1), 1)
        rest = text[col - 1: col + 11]
        where = f" at character {col}" + (f" ({rest!r})" if rest else " (the end)")
    hint = "; write Abs(x) for |x| and L_i (or |o_i|) for a length" if "|" in text else ""
    msg = e.msg or "invalid syntax"
    if "forgot a comma" in msg:  # Python's guess; in a formula two terms side by side miss an operator
        msg = "two terms side by side (write * between them)"
    elif "EOF" in msg or "was never closed" in msg and not where:
        msg = "the formula ends too early"
    return (f"weight formula {_short(text)} is not a valid expression: {msg}{where}{hint}; a formula uses numbers, "
            f"the symbols {', '.join(n.WEIGHT_SYMBOLS)}, + - * / ** and {', '.join(FUNCTIONS)}")


def parse_weight(text) -> sp.Expr:
    """Parse a weight formula string into a SymPy expression, safely (see the module docstring).

    Raises :class:`InputError` (one line, naming the offending piece) for anything outside the
    whitelist, for a comparison outside ``ind(...)``, for names of the policy, and for a result
    that is undefined (``1/0``) or not a number-valued expression.

    >>> parse_weight("0.5 * M / (sigma * L_sum)")
    M/(2*L_sum*sigma)
    """
    if not isinstance(text, str):
        raise InputError(f"the weight formula must be a string such as \"1/(G*L_i*sigma)\", got {kind_of(text)}")
    if not text.strip():
        raise InputError("the weight formula is empty; give e.g. \"1/(G*L_i*sigma)\"")
    if len(text) > MAX_LENGTH:
        raise InputError(f"the weight formula is {len(text)} characters long; the limit is {MAX_LENGTH}")
    body = _lengths(text.strip())
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as e:
        raise InputError(_syntax_error(text.strip(), e)) from None
    except (RecursionError, MemoryError, ValueError):
        raise InputError("weight formula is nested too deeply or malformed; simplify it") from None
    if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
        raise InputError(f"the weight formula has more than {_MAX_NODES} syntax nodes; simplify it")
    try:
        expr = _Builder(body, shown=_short(text)).build(tree.body)
    except RecursionError:
        raise InputError("the weight formula is nested too deeply; simplify it") from None
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise InputError(f"weight formula {_short(text)} is undefined or infinite (a division by zero?)")
    return expr

