"""The trainer's own loss, evaluated on one optimizer step's batch at given per-token log-probs.

``GRPOTrainer._compute_loss`` (the class's function, the release's own code) runs on each of the
step's slices, with ``_get_per_token_logps_and_entropies`` answering rows of a float64 leaf tensor
instead of running the model; the losses are summed as the trainer sums them (it back-propagates
each micro-batch's loss as it is) and autograd gives d loss / d logp, the per-token gradient the
trainer back-propagates into its model. Nothing of the training changes:

* no model forward, no random draw, no parameter or ``.grad`` touched (``torch.autograd.grad`` on
  the leaves only);
* the metric lists the loss appends to (``trainer._metrics``) are cut back to their length before;
* the trainer's own ``_get_per_token_logps_and_entropies`` (or the audit's recording wrapper of it)
  is put back; the slices given are shallow copies with some tensors replaced, never mutated.
"""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["trainer_loss_and_grad", "kept_metrics"]


@contextlib.contextmanager
def kept_metrics(trainer):
    """The trainer's metric lists (``_metrics[mode][key]``) as they were before the block."""
    lengths = {mode: {k: len(v) for k, v in d.items()} for mode, d in trainer._metrics.items()}
    try:
        yield
    finally:
        for mode, d in trainer._metrics.items():
            before = lengths.get(mode, {})
            for key in list(d):
                if key not in before:
                    del d[key]
                else:
                    del d[key][before[key]:]


def trainer_loss_and_grad(trainer, slices: list[dict], logps: list[np.ndarray], replace=None):
    """(loss, [d loss / d logp per slice]) of the trainer's ``_compute_loss`` summed over ``slices``.

    Args:
        trainer: the ``trl.GRPOTrainer`` (in train mode, its ``current_gradient_accumulation_steps``
            the step's K, as during the step).
        slices: the step's micro-batches, as the trainer built them.
        logps: (b, T) per-token log-probs of each slice (float64).
        replace: ``replace(slice, leaf) -> dict`` of inputs to replace in a shallow copy of the slice
            (e.g. advantages set to ones), or None.
    """
    import torch

    compute = type(trainer)._compute_loss
    had = "_get_per_token_logps_and_entropies" in vars(trainer)
    own = vars(trainer).get("_get_per_token_logps_and_entropies")
    device = slices[0]["completion_ids"].device
    leaves = [torch.tensor(np.asarray(lp, dtype=np.float64), device=device, requires_grad=True) for lp in logps]
    aux = torch.zeros((), dtype=torch.float64, device=device) if getattr(trainer, "aux_loss_enabled", False) else None
    total = None
    try:
        with kept_metrics(trainer), torch.enable_grad():
            for inputs, leaf in zip(slices, leaves):
                def answer(*args, _leaf=leaf, **kwargs):
                    return _leaf, torch.zeros_like(_leaf.detach()), aux

                trainer._get_per_token_logps_and_entropies = answer
                x = dict(inputs)
                if replace is not None:
                    x.update(replace(inputs, leaf))
                part = compute(trainer, trainer.model, x)
                total = part if total is None else total + part
            grads = torch.autograd.grad(total, leaves, allow_unused=True)
    finally:
        if had:
            trainer._get_per_token_logps_and_entropies = own
        else:
            vars(trainer).pop("_get_per_token_logps_and_entropies", None)
    out = [np.zeros(lp.shape) if g is None else g.detach().to("cpu", torch.float64).numpy() for g, lp in zip(grads, logps)]
    return float(total.detach().to("cpu", torch.float64)), out
