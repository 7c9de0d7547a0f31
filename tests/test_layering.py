"""The package's layering, read from the source with ``ast`` (nothing is imported).

* ``compile.py`` is the one bridge: the only module that imports both SymPy and Torch, and the only
  caller of ``lambdify``;
* in every result folder ``props/<result>/``, ``derive.py`` imports no Torch and ``api.py`` no SymPy;
  ``reference/`` (the independent hand-written losses) imports no SymPy;
* the core (the flat modules and ``reference/``) imports no result, no check tool and no command line;
  results import neither the check tool nor the command line; ``checking/`` and ``runtime/`` import no
  result (the registry finds claim modules by name, imported when asked);
* no import cycle between subpackages;
* no module is longer than :data:`MAX_LINES` lines.

Every import counts, at module level or inside a function.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "grpo_proofs"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@lru_cache(maxsize=None)
def imports(name: str) -> frozenset[str]:
    """Every module ``name`` imports (absolute names; ``from X import y`` counts X.y where that is a module)."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules())
    return frozenset(out)


def uses(name: str, library: str) -> bool:
    return any(m == library or m.startswith(library + ".") for m in imports(name))


def calls_lambdify(name: str) -> bool:
    tree = ast.parse(modules()[name].read_text())
    return any((isinstance(n, ast.Attribute) and n.attr == "lambdify") or (isinstance(n, ast.Name) and n.id == "lambdify")
               or (isinstance(n, ast.alias) and n.name.endswith("lambdify")) for n in ast.walk(tree))


def layer(name: str) -> str:
    """The subpackage a module belongs to: ``props.<result>`` (``props`` for its flat modules), ``checking``,
    ``runtime``, ``check``, ``trainers``, ``integrations``, ``cli`` (with ``__main__``), or ``core`` (the flat
    modules and ``reference/``)."""
    parts = name.split(".")[1:]
    if parts == ["__main__"]:
        return "cli"
    if not parts or parts[0] == "reference" or (len(parts) == 1 and not (PACKAGE / parts[0]).is_dir()):
        return "core"
    if parts[0] == "props" and len(parts) > 1 and (PACKAGE / "props" / parts[1]).is_dir():
        return "props." + parts[1]
    return parts[0]


def internal(name: str) -> set[str]:
    """The package's modules ``name`` imports."""
    return {m for m in imports(name) if m in modules() and m != name}


def test_the_reader_sees_the_package():
    names = modules()
    assert "grpo_proofs.compile" in names and "grpo_proofs.props.prefix.claims" in names
    assert "grpo_proofs.compile.to_torch" not in imports("grpo_proofs.evaluate")
    assert "grpo_proofs.compile" in imports("grpo_proofs.evaluate")
    assert uses("grpo_proofs.compile", "sympy") and uses("grpo_proofs.compile", "torch")
    assert calls_lambdify("grpo_proofs.compile")
    assert layer("grpo_proofs.props.prefix.api") == "props.prefix" and layer("grpo_proofs.reference.grpo") == "core"


def test_one_bridge_from_sympy_to_numbers():
    both = sorted(m for m in modules() if uses(m, "sympy") and uses(m, "torch"))
    lambdify = sorted(m for m in modules() if calls_lambdify(m))
    assert both == ["grpo_proofs.compile"], f"modules importing both SymPy and Torch: {both}"
    assert lambdify == ["grpo_proofs.compile"], f"modules calling lambdify: {lambdify}"


def test_result_roles():
    bad = [f"{m} imports torch" for m in modules() if m.startswith("grpo_proofs.props.") and m.endswith(".derive")
           and uses(m, "torch")]
    bad += [f"{m} imports sympy" for m in modules() if m.startswith("grpo_proofs.props.") and m.endswith(".api")
            and uses(m, "sympy")]
    bad += [f"{m} imports sympy" for m in modules() if m.startswith("grpo_proofs.reference") and uses(m, "sympy")]
    assert not bad, "; ".join(bad)


#: layer -> layers it must never import
FORBIDDEN = {
    "core": ("props", "check", "cli", "checking", "runtime", "trainers", "integrations"),
    "props": ("check", "cli"),
    "checking": ("props", "check", "cli", "trainers"),
    "runtime": ("props", "check", "cli", "trainers", "checking"),
}


@pytest.mark.parametrize("lower", sorted(FORBIDDEN))
def test_lower_layers_import_no_higher_one(lower):
    bad = []
    for m in modules():
        if layer(m).split(".")[0] != lower:
            continue
        for dep in internal(m):
            if layer(dep).split(".")[0] in FORBIDDEN[lower]:
                bad.append(f"{m} -> {dep}")
    assert not bad, "\n".join(bad)


def layer_graph(planted: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Subpackage -> the subpackages its modules import (``planted``: extra module imports, for the controls)."""
    graph: dict[str, set[str]] = {}
    for m in modules():
        deps = internal(m) | (planted or {}).get(m, set())
        graph.setdefault(layer(m), set()).update(layer(d) for d in deps if layer(d) != layer(m))
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_cycle_between_subpackages():
    graph = layer_graph()
    cycles = find_cycles(graph)
    edges = [f"{a} -> {b}" for c in cycles for a in c for b in sorted(graph[a]) if b in c]
    assert not cycles, f"import cycles between subpackages: {edges}"


def test_planted_imports_are_caught():
    """Negative controls: a planted import of the command line from the core closes a cycle (the command
    line imports the core) and a planted import of a result from the registry breaks a layer rule."""
    assert any({"cli", "core"} <= set(c) for c in find_cycles(layer_graph({"grpo_proofs.objective": {"grpo_proofs.cli"}})))
    planted = internal("grpo_proofs.checking") | {"grpo_proofs.props.prefix.claims"}
    assert any(layer(d).split(".")[0] in FORBIDDEN["checking"] for d in planted)
    assert "grpo_proofs.cli" in internal("grpo_proofs.__main__")


def test_modules_are_short():
    lengths = {m: len(p.read_text().splitlines()) for m, p in modules().items()}
    long = {m: k for m, k in lengths.items() if k > MAX_LINES}
    listing = "\n".join(f"  {k:4d} lines  {m}" for m, k in sorted(long.items(), key=lambda mk: -mk[1]))
    assert not long, f"modules over {MAX_LINES} lines:\n{listing}"
