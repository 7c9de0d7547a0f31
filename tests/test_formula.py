"""Safe parsing of weight formulas: nothing a formula string says is ever executed.

Expected expressions are built here with SymPy's constructors (never by the parser under test), and
compared as a zero difference.
"""

from __future__ import annotations

import builtins
import ast

import pytest
import sympy as sp

from grpo_proofs import notation as n
from grpo_proofs.errors import InputError
from grpo_proofs.check.formula import FUNCTIONS, MAX_EXPONENT, POLICY_NAMES, parse_weight
from grpo_proofs.check.formula_text import to_formula
from grpo_proofs.variants import REGISTRY


def same(a, b) -> bool:
    return sp.simplify(a - b) == 0


@pytest.fixture
def no_eval(monkeypatch):
    """eval/exec forbidden and compile restricted to building an AST: any evaluation of the text fails loudly.

    ``sympify`` of a string goes through ``eval`` (sympy.parsing.sympy_parser.eval_expr), so a parser that
    used it would trip this fixture too."""
    real_compile = builtins.compile

    def refuse(*a, **k):
        raise AssertionError("the formula text reached eval/exec")

    def ast_only(source, filename, mode, flags=0, *a, **k):
        assert flags & ast.PyCF_ONLY_AST, "compile was asked for code, not an AST"
        return real_compile(source, filename, mode, flags, *a, **k)

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", ast_only)


def test_the_fixture_catches_sympify_of_a_string(no_eval):
    """Control: the guard really detects the unsafe path (sympify of raw text evaluates it)."""
    with pytest.raises(AssertionError, match="eval/exec"):
        sp.sympify("1/(G*L_i)")


def test_malicious_strings_run_nothing(tmp_path, no_eval):
    target = tmp_path / "pwned"
    attacks = [
        f"__import__('os').system('touch {target}')",
        f"open('{target}', 'w').write('x')",
        "globals().__setitem__('PWNED', 1)",
        "setattr(__builtins__, 'PWNED', 1)",
        f"(lambda: __import__('pathlib').Path('{target}').touch())()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "exec('PWNED = 1')",
        "eval('1')",
        "G.__class__.__init__.__globals__",
        f"sqrt(__import__('os').system('touch {target}'))",
        f"ind(__import__('os').system('touch {target}') > 0)",
    ]
    for text in attacks:
        with pytest.raises(InputError):
            parse_weight(text)
    assert not target.exists()
    assert "PWNED" not in globals() and not hasattr(builtins, "PWNED")


def test_allowed_formulas_parse_without_eval(no_eval):
    assert same(parse_weight("1/(G*L_i*sigma)"), 1 / (n.G * n.L_i * n.sigma))
    assert same(parse_weight("alpha_hat/(F_norm*L_sum)"), n.alpha_hat / (n.F_norm * n.L_sum))


@pytest.mark.parametrize("text, expected", [
    ("sqrt(L_i)", sp.sqrt(n.L_i)),
    ("exp(-L_i/L_max)", sp.exp(-n.L_i / n.L_max)),
    ("log(1 + L_i)", sp.log(1 + n.L_i)),
    ("Abs(A_i)/sigma", sp.Abs(n.A_i) / n.sigma),
    ("Min(1, L_i/100)", sp.Min(1, n.L_i / 100)),
    ("Max(L_i, 8, L_max/4)", sp.Max(n.L_i, 8, n.L_max / 4)),
    ("Heaviside(A_i)", sp.Heaviside(n.A_i)),
    ("ind(Abs(A_i) > gamma*sigma)", sp.Piecewise((1, sp.Abs(n.A_i) > n.gamma * n.sigma), (0, True))),
    ("ind(0 < A_i <= 1)", sp.Piecewise((1, sp.And(0 < n.A_i, n.A_i <= 1)), (0, True))),
    ("ind(A_i >= 0 or L_i < 5)", sp.Piecewise((1, sp.Or(n.A_i >= 0, n.L_i < 5)), (0, True))),
    ("ind(not (A_i < 0))", sp.Piecewise((1, n.A_i >= 0), (0, True))),
    ("M*lam*delta/(G*L_i)", n.M * n.lam * n.delta / (n.G * n.L_i)),
    ("-(-1)/G + +0", 1 / n.G),
    ("L_i**-0.5 / G", 1 / (sp.sqrt(n.L_i) * n.G)),
])
def test_every_allowed_function_and_operator(text, expected, no_eval):
    got = parse_weight(text)
    assert got == expected or same(got, expected)


def test_whitelist_is_what_the_docs_say():
    assert set(FUNCTIONS) == {"sqrt", "exp", "log", "Abs", "Min", "Max", "Heaviside", "ind"}


def test_floats_are_exact_decimals():
    assert parse_weight("0.28") == sp.Rational(7, 25)
    assert parse_weight("1e-4") == sp.Rational(1, 10000)


@pytest.mark.parametrize("text, fragment", [
    ("G.real", "attribute access"),
    ("L_i[0]", "a subscript"),
    ("lambda: G", "a lambda"),
    ("[G for G in L_i]", "a comprehension"),
    ("(G for G in L_i)", "a comprehension"),
    ("{G: 1}", "a dict"),
    ("(G, L_i)", "a tuple"),
    ("'1/G'", "a string"),
    ("f'{G}'", "an f-string"),
    ("G if L_i else 1", "a conditional expression"),
    ("(G := 2)", "an assignment expression"),
    ("Min(*L_i)", "a starred argument"),
    ("sqrt(x=G)", "a keyword argument"),
    ("Max(**G)", "argument"),
    ("__import__('os')", "unknown function '__import__'"),
    ("open('f')", "unknown function 'open'"),
    ("abs(A_i)", "did you mean 'Abs'"),
    ("B/G", "unknown symbol 'B'"),
    ("G(2)", "calling the symbol G"),
    ("sqrt", "without a call"),
    ("G // 2", "//"),
    ("G % 2", "%"),
    ("L_i ^ 2", "use ** for powers"),
    ("G & 1", "&"),
    ("~G", "~"),
    ("A_i > 0", "a comparison outside ind"),
    ("G == 4", "a comparison outside ind"),
    ("ind(A_i == 0)", "=="),
    ("ind(G)", "needs a condition"),
    ("not G", "'not' outside ind"),
    ("G and L_i", "outside ind"),
    ("True", "bool"),
    ("None", "NoneType"),
    ("1j", "complex"),
    ("...", "ellipsis"),
    ("2**100", f"larger than {MAX_EXPONENT}"),
    ("2**10**10", f"larger than {MAX_EXPONENT}"),
    ("1/0", "undefined or infinite"),
    ("log(G, 2)", "takes 1 argument"),
    ("Min(G)", "at least 2"),
    ("1/(G*", "not a valid expression"),
    ("", "empty"),
    ("1/G; import os", "not a valid expression"),
    ("await G", "await"),
])
def test_refused_constructs(text, fragment):
    with pytest.raises(InputError) as e:
        parse_weight(text)
    msg = str(e.value)
    assert fragment.lower() in msg.lower(), msg
    assert "\n" not in msg


@pytest.mark.parametrize("name", sorted(POLICY_NAMES))
def test_policy_dependent_weight_is_refused_specifically(name):
    with pytest.raises(InputError, match="must not depend on theta"):
        parse_weight(f"{name}/G")


def test_limits_on_size():
    with pytest.raises(InputError, match="characters long"):
        parse_weight("G+" * 1200 + "G")
    with pytest.raises(InputError, match="syntax nodes|nested"):
        parse_weight("+".join(["G"] * 500))
    with pytest.raises(InputError, match="nested|not a valid expression"):
        parse_weight("(" * 990 + "G" + ")" * 990)
    with pytest.raises(InputError, match="syntax nodes|nested"):
        parse_weight("-" * 1990 + "G")
    with pytest.raises(InputError, match="must be a string"):
        parse_weight(1.0)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_registry_weights_round_trip(name):
    alpha = REGISTRY[name].alpha
    text = to_formula(alpha)
    assert sp.simplify(parse_weight(text) - alpha) == 0


def test_printer_refuses_what_the_parser_cannot_read():
    with pytest.raises(InputError, match="ind"):
        to_formula(sp.Piecewise((n.G, n.A_i > 0), (1, True)))
    with pytest.raises(InputError, match="no formula name"):
        to_formula(sp.Symbol("zz") / n.G)


@pytest.mark.parametrize("text", ["1/(G*|o_i|*sigma)", "1/(G*| o_i |*sigma)", "1/(G*|y_i|*sigma)",
                                  "1/(G*|o|*sigma)"])
def test_the_papers_length_notation_is_read_as_L_i(text):
    assert sp.simplify(parse_weight(text) - 1 / (n.G * n.L_i * n.sigma)) == 0


@pytest.mark.parametrize("text, where", [
    ("1/(G*L_i*", "at character 3 ('(G*L_i*')"),
    ("1/(G L_i)", "at character 4 ('G L_i)')"),
    ("1/|A_i|", "write Abs(x) for |x|"),
])
def test_syntax_error_names_the_position_and_what_is_allowed(text, where):
    with pytest.raises(InputError) as e:
        parse_weight(text)
    msg = str(e.value)
    assert where in msg and "the symbols G, L_i, L_sum" in msg and "sqrt, exp" in msg, msg
    assert "Perhaps" not in msg and "\n" not in msg
