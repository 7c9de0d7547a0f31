"""Token-gradient cancellation, cell by cell: where Table 1's weights are exchangeable on a shared token.

A token shared by the whole group in identical context receives W grad log pi with
W = sum_i A_i omega_i. For every Table 1 method in every ratio and length regime, :func:`condition_cells`
sets the exchangeability derived in SymPy (:func:`.derive.derived_exchangeable`) beside the one typed by
hand (:func:`stated_exchangeable`) and the W measured with reference-loss autograd against
:func:`grpo_proofs.prefix_coefficient`.

>>> stated_exchangeable("grpo", "s = 1", "equal lengths"), stated_exchangeable("grpo", "s = 1", "lengths differ")
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...checking import Context
from ...checking.tolerances import CLOSED_FORM
from ...variants import REGISTRY
from ..prefix.api import prefix_coefficient
from ...runtime.threads import one_thread
from . import api, derive

__all__ = ["BREAKS", "stated_exchangeable", "Cell", "condition_cells"]

#: a shared token counts as updated when |W| exceeds this fraction of sum_i |A_i omega_i| (rounding: ~1e-16)
BREAKS = 1e-9


def stated_exchangeable(name: str, ratio_regime: str, length_regime: str) -> bool:
    """Where Table 1's weights are the same for every completion on a shared token, typed by hand: 1/|o_i| weights
    only at equal lengths; clipped ratios only inside the band (past a bound one advantage sign is clipped);
    sequence ratios and their 1/|o_i| (GSPO) or |o_i| (GCPO) only at s = 1 and equal lengths; GPG (no ratio) and
    CISPO (a clipped weight, common to the shared token) everywhere."""
    inside = ratio_regime in ("s = 1", "in the band")
    equal = length_regime == "equal lengths"
    if name in ("gpg", "cispo"):
        return True
    if name in ("dr_grpo", "dapo"):
        return inside
    if name in ("grpo", "grpo_v32", "gtpo", "cppo"):
        return inside and equal
    if name in ("gspo", "gcpo"):
        return ratio_regime == "s = 1" and equal
    raise KeyError(f"no stated exchangeability for {name!r}")


@dataclass(frozen=True)
class Cell:
    """One method in one regime: derived and stated exchangeability, and what ``per_cell`` groups measured."""

    method: str
    ratio_regime: str
    length_regime: str
    derived: bool
    stated: bool
    #: |W_measured - W_derived| / sum_i |dJ/dx_{i,0}| per group
    errors: tuple[float, ...]
    #: |W_measured| / sum_i |dJ/dx_{i,0}| per group
    cancelled: tuple[float, ...]

    @property
    def agrees(self) -> bool:
        """Derived = stated, and measured: every group cancels (exchangeable) or some group does not."""
        measured = max(self.cancelled) <= CLOSED_FORM if self.derived else max(self.cancelled) > BREAKS
        return self.derived == self.stated and measured


def condition_cells(ctx: Context, stated=stated_exchangeable, measure=api.shared_token_gradient) -> list[Cell]:
    """Every Table 1 method x regime, with 3 (quick) or 8 random groups each (``measure``: reference autograd)."""
    rng, per_cell, cells = np.random.default_rng(ctx.seed), 3 if ctx.quick else 8, []
    with one_thread("cpu"):
        for name, v in REGISTRY.items():
            ratios = {key: tuple(float(x) for x in pair) for key, pair in derive.regime_ratios(v).items()}
            for rr in derive.RATIO_REGIMES:
                for lr in derive.LENGTH_REGIMES:
                    errors, cancelled = [], []
                    for _ in range(per_cell):
                        rewards, lengths, x, shared, seq = api.regime_group(rng, v, ratios[rr], rr, lr == "equal lengths")
                        g = measure(name, rewards, lengths, x)
                        scale = float(np.abs(g).sum())
                        W = prefix_coefficient(v, rewards, lengths, ratio=shared, sequence_ratios=seq)
                        errors.append(abs(float(g.sum()) - W) / scale)
                        cancelled.append(abs(float(g.sum())) / scale)
                    cells.append(Cell(name, rr, lr, derive.derived_exchangeable(v, rr, lr), stated(name, rr, lr),
                                      tuple(errors), tuple(cancelled)))
    return cells
