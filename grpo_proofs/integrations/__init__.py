"""Audit a real training run with the paper's formulas, from inside the trainer's loop.

* :class:`~grpo_proofs.integrations.trl.ProofsCallback` -- the ``transformers.TrainerCallback`` to add
  to a ``trl.GRPOTrainer`` (TRL 1.16.0): ``proofs/`` metrics at every optimizer step;
* :func:`~grpo_proofs.integrations.audit.run_audit` -- a short real run with the callback (the
  ``grpo-proofs audit`` command), by default on a tiny random model built offline;
* :func:`~grpo_proofs.integrations.logs.read_log` -- the ``proofs/`` metrics of a saved run.

Names are imported on first use (``transformers`` and ``trl`` load only then).
"""

from __future__ import annotations

import importlib

_API = {
    "ProofsCallback": "grpo_proofs.integrations.trl",
    "run_audit": "grpo_proofs.integrations.audit",
    "read_log": "grpo_proofs.integrations.logs",
    "summarize": "grpo_proofs.integrations.summary",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
