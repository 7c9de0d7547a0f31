"""What real trainers optimise: exact TRL, verl and OpenRLHF losses, mapped onto the unified surrogate.

Users train with ``loss_type="dapo"`` in TRL or ``loss_agg_mode=seq-mean-token-mean`` in verl,
with micro-batches and gradient accumulation. This package reproduces, for the releases people
install (TRL 1.16.0 and 1.9.0, verl 0.9.1, OpenRLHF 0.11.2; :mod:`.releases`), what each config
back-propagates, its advantages, and which Table 1 method of arXiv 2601.05002 it is, so every
proposition can be asked of it. The tests marked ``peers`` check it against each release's own
code (:mod:`.peers`).

Every function takes ``version=`` (or a ``version`` key in the config): the release described;
by default the installed one, else the newest supported.

Contract:

* :func:`loss_and_grad` -- the loss of one optimizer step (summed over its micro-batches) and
  d loss / d logp (B, T), torch float64 autograd through the model of the release's loss;
* :func:`advantages` -- the trainer's advantage estimator, one value per completion;
* :func:`to_variant` -- a :class:`TrainerMapping`: the per-token weight with batch symbols, the
  one-group :class:`~grpo_proofs.variants.Variant`, the Table 1 match;
* :func:`propositions` -- the verdict of Props 1, 2/5/6 and 3/7 for a config;
* :func:`mapped_gradient` -- the closed-form gradient of the mapping (numpy), for checks.

>>> loss, grad = loss_and_grad("trl", {"loss_type": "grpo"}, logp=[[0.0, 0.0]], old_logp=[[0.0, 0.0]],
...                            advantages=[1.0], mask=[[1, 0]])
>>> grad.tolist()  # on-policy: -w A with w = 1/(K b_k |o_i|) = 1, zero at padding
[[-1.0, 0.0]]
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from ..errors import InputError
from . import openrlhf as _openrlhf
from . import trl as _trl
from . import verl as _verl
from ._common import prepare
from .releases import resolve as resolve_release

__all__ = [
    "TRAINERS", "trainer_module", "effective_config", "loss_and_grad", "advantages",
    "to_variant", "TrainerMapping", "propositions", "Verdict", "mapped_gradient", "resolve_release",
]

#: trainer name -> its module (config spec, loss, advantages)
TRAINERS: dict[str, ModuleType] = {"trl": _trl, "verl": _verl, "openrlhf": _openrlhf}


def trainer_module(trainer: str) -> ModuleType:
    """The module of ``trainer`` (``"trl"``, ``"verl"`` or ``"openrlhf"``)."""
    key = trainer.lower() if isinstance(trainer, str) else trainer
    if key not in TRAINERS:
        raise InputError(f"unknown trainer {trainer!r}; choose one of: {', '.join(TRAINERS)}")
    return TRAINERS[key]


def effective_config(trainer: str, config=None, version=None) -> dict:
    """The trainer's config with the release's defaults filled in (``_release``: the release; unknown keys -> InputError)."""
    return trainer_module(trainer).config(config, version)


def loss_and_grad(trainer, config, *, logp, old_logp, advantages, mask, ref_logp=None, micro_batches=None,
                  max_completion_length=None, version=None) -> tuple[float, np.ndarray]:
    """What ``trainer`` back-propagates for one optimizer step, and its gradient w.r.t. ``logp``.

    Args:
        trainer: ``"trl"``, ``"verl"`` or ``"openrlhf"``.
        config: the trainer's own keys (TRL ``GRPOConfig`` fields; verl actor keys with nested
            ``policy_loss``, or Hydra paths; OpenRLHF option names without dashes); missing keys
            take the release's defaults; options the loss does not read are accepted.
        logp, old_logp, ref_logp: (B, T) per-token log-probs; padding may hold any finite value.
        advantages: (B,) one per completion (verl and OpenRLHF also accept (B, T)).
        mask: (B, T) 0/1, 1 on completion tokens in the loss.
        micro_batches: row-index lists accumulated into the step (default: one of all rows).
            TRL: the rows are the generation batch and the micro-batches may leave rows out.
        max_completion_length: TRL L_max (instead of the config key); verl: the padded width
            used as C of seq-mean-token-sum-norm when ``loss_scale_factor`` is null.
        version: the release (default: the installed one, else the newest supported).

    Returns:
        The pair ``(loss, grad)`` of the summed loss and d loss / d logp, (B, T) float64, zero at
        padding except where the trainer itself reaches padding (TRL ``luspo`` with a (B, T) loss)
    """
    mod = trainer_module(trainer)
    c = mod.config(config, version)
    bt = prepare(logp, old_logp, advantages, mask, ref_logp, micro_batches, max_completion_length,
                 per_token_advantages=mod is not _trl, cover_all_rows=mod is not _trl, need_ref=mod.needs_ref(c))
    return mod.loss_and_grad(c, bt)


def advantages(trainer, config, rewards, group_ids, *, lengths=None, version=None) -> np.ndarray:
    """The trainer's advantage of each completion (float64, shape (B,)).

    ``rewards``: one scalar per completion (TRL also (B, F), one column per reward function);
    ``group_ids``: the prompt of each completion; ``lengths``: tokens per completion, needed
    only by estimators that weight by tokens (verl ``reinforce_plus_plus_baseline``, ``opo``;
    OpenRLHF ``reinforce_baseline``); ``version``: the release.
    """
    mod = trainer_module(trainer)
    return mod.advantages(mod.config(config, version), rewards, group_ids, lengths)


def __getattr__(name: str):  # the mapping modules import sympy; load them on first use
    if name in ("to_variant", "TrainerMapping"):
        from . import mapping

        return getattr(mapping, name)
    if name in ("propositions", "Verdict"):
        from . import verdicts

        return getattr(verdicts, name)
    if name == "mapped_gradient":
        from .closed_form import mapped_gradient

        return mapped_gradient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
