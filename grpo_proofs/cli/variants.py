"""``grpo-proofs variants``: Table 1 rendered from the registry, then the formulations beyond it.

The ``family`` column says which is which: ``table1`` for the paper's ten methods, ``2026`` for the
formulations published after it; a term other than Eq. 1's clip is named in the ``term`` column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .common import add_json_flag, emit_json

if TYPE_CHECKING:
    from ..variants import Variant

__all__ = ["register", "rows"]


def _eps(v: Variant) -> str:
    if not v.clipped:
        return "-"
    lo = "-" if v.eps_low is None else f"{v.eps_low:g}"
    hi = "-" if v.eps_up is None else f"{v.eps_up:g}"
    return f"{lo}/{hi}"


def rows() -> list[dict]:
    """One dict per registered method: the columns of Table 1, the family and the per-token term."""
    import sympy as sp

    from ..props.gradient.derive import plain
    from ..variants import VARIANTS

    return [
        {
            "name": v.name,
            "family": v.family,
            "table1": v.table1,
            "term": v.surrogate.value,
            "term_params": dict(v.phi_params),
            "title": v.title,
            "alpha": plain(v.alpha),
            "alpha_latex": sp.latex(v.alpha),
            "ratio": v.ratio.value,
            "eps_low": v.eps_low,
            "eps_up": v.eps_up,
            "advantage": v.advantage,
            "regularizer": v.regularizer.value,
            "beta": v.beta,
            "params": dict(v.params),
            "source": v.source,
            "notes": v.notes,
        }
        for v in VARIANTS.values()
    ]


def run(args) -> int:
    from ..variants import VARIANTS

    data = rows()
    if args.json:
        emit_json(data)
        return 0
    table = [["name", "family", "alpha_{i,t}", "ratio", "term", "eps low/up", "advantage", "R", "beta"]]
    for r, v in zip(data, VARIANTS.values()):
        table.append([r["name"], r["family"], r["alpha"], r["ratio"], r["term"], _eps(v), r["advantage"],
                      r["regularizer"], f"{v.beta:g}"])
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    for k, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    return 0


def register(sub) -> None:
    p = sub.add_parser("variants", help="Table 1 and the later formulations: the registered methods as the unified surrogate")
    add_json_flag(p)
    p.set_defaults(func=run)
