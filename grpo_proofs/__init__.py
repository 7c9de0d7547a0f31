"""grpo-proofs: derive and check the hidden objective biases of GRPO-style losses.

The public API (these names are a contract):

* :func:`token_gradient` -- dJ/d log pi per token of the unified surrogate (Eq. 1, 13-15)
* :func:`prefix_coefficient` -- the net coefficient W on a shared prefix (Prop. 1)
* :func:`adam_step_ratio` -- the exact Adam step factor under reward scaling (Prop. 2)
* :func:`overshoot_ratio`, :func:`overshoot_total`, :func:`clip_toy` -- momentum past the clip (Props. 3, 7)

Names are imported on first use, so ``import grpo_proofs`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "token_gradient": "grpo_proofs.evaluate",
    "prefix_coefficient": "grpo_proofs.props.prefix.api",
    "adam_step_ratio": "grpo_proofs.runtime.adam",
    "overshoot_ratio": "grpo_proofs.props.overshoot.api",
    "overshoot_total": "grpo_proofs.props.overshoot.api",
    "clip_toy": "grpo_proofs.props.overshoot.api",
    "Variant": "grpo_proofs.variants",
    "REGISTRY": "grpo_proofs.variants",
    "InputError": "grpo_proofs.errors",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'grpo_proofs' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
