"""Claim ``findings-table``: the three findings measured on every registered method, two ways.

For each method of Table 1 and each formulation beyond it, the measures of :mod:`grpo_proofs.props.findings.api` (Prop. 1's W on a
shared first token, the gradient's factor and residual under a reward scale of 10, the gradient past
the bound on each advantage side) are computed from the compiled symbolic gradient and from autograd
of the hand-written reference loss; they must agree item by item, and the verdicts read off them must be
the same. Coverage: 6 measures x every registered method (a floor of all of them).
"""

from __future__ import annotations

import math

import numpy as np

from ...checking import Context, Outcome, claim
from ...checking.coverage import compare
from ...checking.tolerances import CLOSED_FORM
from . import api

__all__ = ["PAGE", "KEYS", "table_check", "rows"]

PAGE = "findings"
#: the measures compared, in the table's order
KEYS = ("W", "W_rel", "rho", "residual", "past_up", "past_low")


def rows(references: dict | None = None) -> list[dict]:
    """One row per registered method: its family, the measures from both paths and their verdicts."""
    from ...variants import VARIANTS

    out = []
    for name, v in VARIANTS.items():
        d = api.measures(lambda r, x, name=name: api.derived_gradient(name, r, x))
        f = api.measures(lambda r, x, name=name: api.reference_gradient(name, r, x, references))
        out.append({"variant": name, "title": v.title, "family": v.family, "derived": d, "reference": f,
                    "verdicts": api.verdicts(d), "reference_verdicts": api.verdicts(f)})
    return out


def table_check(ctx: Context, references: dict | None = None) -> Outcome:
    """Every measure of every method, derived against reference autograd (``references`` replaces reference
    losses: a planted wrong one must fail), and the verdicts of both paths equal."""
    table = rows(references)
    both_nan = [np.array([math.isnan(r["derived"][k]) and math.isnan(r["reference"][k]) for k in KEYS]) for r in table]
    meas = [np.array([0.0 if nan else r["derived"][k] for k, nan in zip(KEYS, m)]) for r, m in zip(table, both_nan)]
    pred = [np.array([0.0 if nan else r["reference"][k] for k, nan in zip(KEYS, m)]) for r, m in zip(table, both_nan)]
    scale = [np.maximum(np.abs(p), 1.0) for p in pred]  # relative where large, absolute below 1
    c = compare(meas, pred, scale=scale, floor=len(KEYS) * len(table), what="measures")
    same = sum(r["verdicts"] == r["reference_verdicts"] for r in table)
    err = c.error if same == len(table) else math.inf
    return Outcome(err, CLOSED_FORM,
                   f"{c.message}; verdicts equal for {same} of {len(table)} methods (derived gradient vs autograd of "
                   f"the reference losses)",
                   data={"rows": table, "compared": c.compared})


@claim("findings-table", title="The three findings on every registered method", page=PAGE, kind="numeric",
       statement="On the group r = (1, 0, 0, 1), |o| = (10, 30, 20, 40), for every method of Table 1 and every "
                 "registered formulation beyond it: the net coefficient W of a shared first token at s = 1, the "
                 "factor and residual of the gradient under rewards x10, and the gradient past the bound "
                 "(s = 1.5 for A > 0, 0.5 for A < 0) relative to s = 1, computed from the derived gradient, equal "
                 "those of autograd of the hand-written reference loss, and so do the verdicts read off them.")
def check_table(ctx: Context) -> Outcome:
    return table_check(ctx)
