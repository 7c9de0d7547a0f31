"""The input checks of the prefix coefficient (``grpo-proofs prefix``, :func:`grpo_proofs.props.prefix.api.group_terms`):
importing this module loads no torch, so bad input is refused before any model or tensor is built."""

from __future__ import annotations

import math

import numpy as np

from ...errors import InputError
from ...variants import Variant

__all__ = ["check_shared", "check_prefix_inputs"]


def check_shared(shared, G: int) -> tuple[int, ...]:
    """Validate the subset S: distinct whole indices in [0, G), at least one (default: all)."""
    if shared is None:
        return tuple(range(G))
    try:
        vals = list(shared)
    except TypeError:
        raise InputError(f"shared must be a sequence of completion indices, got {shared!r}") from None
    if not vals:
        raise InputError("shared is empty; give at least one completion index (default: the whole group)")
    out = []
    for v in vals:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise InputError(f"shared must hold whole completion indices, got {v!r}")
        if not 0 <= int(v) < G:
            raise InputError(f"shared index {int(v)} is out of range for a group of G = {G} (indices 0..{G - 1})")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise InputError(f"shared lists an index twice: {out}; give each completion once")
    return tuple(sorted(out))


def _positive(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{what} must be a number > 0, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise InputError(f"{what} must be a finite number > 0, got {value!r}")
    return v


def _sequence_ratios(v: Variant, ratio: float, sequence_ratios, G: int) -> np.ndarray | None:
    if not v.sequence_level:
        if sequence_ratios is not None:
            raise InputError(f"{v.name!r} has token-level ratios; sequence_ratios applies to sequence-level "
                             "variants (gspo, gcpo) only: give the prefix token's ratio as ratio=")
        return None
    if ratio != 1.0:
        raise InputError(f"{v.name!r} uses a sequence ratio s_i, which depends on the whole completion, not on "
                         "the prefix token alone; give one s_i per completion (sequence_ratios=, CLI "
                         "--sequence-ratios) and leave the ratio at 1")
    if sequence_ratios is None:
        return np.ones(G)
    try:
        vals = list(sequence_ratios)
    except TypeError:
        raise InputError("sequence_ratios must be a sequence of numbers, one s_i per completion") from None
    if len(vals) != G:
        raise InputError(f"sequence_ratios has {len(vals)} values for G = {G} completions; give one s_i per completion")
    return np.array([_positive(s, f"sequence_ratios[{i}]") for i, s in enumerate(vals)])


def check_prefix_inputs(v: Variant, G: int, shared=None, ratio: float = 1.0, sequence_ratios=None):
    """(S, ratio, sequence ratios or None) of a group of ``G`` completions, each validated (one InputError line)."""
    ratio = _positive(ratio, "ratio")
    return check_shared(shared, G), ratio, _sequence_ratios(v, ratio, sequence_ratios, G)
