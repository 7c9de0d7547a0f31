"""Audit a live TRL run: :class:`ProofsCallback` measures the paper's findings on the trainer's own batches.

Add it to a real ``trl.GRPOTrainer`` (TRL 1.16.0)::

    trainer = GRPOTrainer(model=..., reward_funcs=..., args=GRPOConfig(...), callbacks=[ProofsCallback()])

At every optimizer step it measures, on the batches the trainer built and with the config it runs
(:mod:`.measures` defines each metric):

* ``proofs/weight_*`` -- the trainer's per-token weights (its ``_compute_loss``, by autograd) against
  the mapped Table 1 formula of arXiv 2601.05002 (:func:`grpo_proofs.trainers.to_variant`);
* ``proofs/prefix_*`` -- Prop. 1's W on each group's common completion prefix, its covariance form,
  and the share of groups whose prefix is pushed by the completions' lengths;
* ``proofs/clip_*``, ``proofs/overshoot_*`` -- on inner steps (``num_iterations`` > 1 or
  ``steps_per_generation`` > ``gradient_accumulation_steps``): tokens past the clip bounds, how far,
  and whether clipped tokens kept moving, against C_{T,0} from the optimizer's betas and step
  counter (Props. 3, 7);
* ``proofs/scale_*`` -- from Adam's own moments, the share of coordinates whose step a reward
  (gradient) scale ``phi`` would change by more than 1e-3 at the optimizer's eps (Prop. 2);
* ``proofs/loss*`` -- the loss split as Prop. 4 says: length statistic, ratio part, KL part.

The metrics go through the trainer's own logging (its ``_metrics``, averaged per ``logging_steps``
and passed to ``Trainer.log``), so every tracker the run reports to shows them; the callback also
keeps them per step (:attr:`ProofsCallback.records`) and, by default, appends them to
``<output_dir>/proofs.jsonl`` (one JSON object a line: a ``run`` header, one ``step`` per optimizer
step, a ``summary`` at the end; :mod:`.logs` reads it back).

The training is unchanged (a test compares the parameters bitwise): the callback reads the
trainer's own per-token log-probs through a pass-through wrapper that keeps a detached copy, draws
no random numbers, and evaluates the trainer's loss on float64 copies (:mod:`.trainer_loss`).

Bad input is one :class:`~grpo_proofs.errors.InputError` at ``on_train_begin``: a trainer that is not
a ``GRPOTrainer`` (or overrides its loss), a TRL release other than 1.16.0, a config the mapping
cannot model (its own message), several processes, an optimizer other than Adam/AdamW.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import math
import os

from transformers import TrainerCallback

from ..errors import InputError
from ..checking.tolerances import CLOSED_FORM, RELEASE_FLOAT32
from .step import StepAudit
from .summary import jsonable

__all__ = ["ProofsCallback", "SUPPORTED", "trainer_config", "installed_trl"]

#: TRL releases whose GRPOTrainer internals the callback reads (batches, loss, log-probs), checked by the tests
SUPPORTED = ("1.16.0",)
#: GRPOTrainer methods whose own code the audit models; a subclass that overrides one is refused
_MODELLED = ("_compute_loss", "_prepare_inputs", "_get_per_token_logps_and_entropies")


def installed_trl() -> str | None:
    try:
        return importlib.metadata.version("trl")
    except importlib.metadata.PackageNotFoundError:
        return None


def trainer_config(args, version: str) -> dict:
    """The run's GRPOConfig as :mod:`grpo_proofs.trainers` reads a TRL config (the loss's keys, ``version``).

    ``generation_batch_size`` is left out: GRPOConfig sets it and ``steps_per_generation`` together.
    """
    from ..trainers.releases import resolve
    from ..trainers.trl import spec

    cfg = {k: getattr(args, k) for k in spec(resolve("trl", version)) if hasattr(args, k) and k != "generation_batch_size"}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()} | {"version": version}


def _calling_trainer():
    """The ``transformers.Trainer`` whose training loop calls the hook (found on the call stack)."""
    from transformers import Trainer

    frame = inspect.currentframe()
    try:
        while frame is not None:
            obj = frame.f_locals.get("self")
            if isinstance(obj, Trainer):
                return obj
            frame = frame.f_back
    finally:
        del frame
    return None


class ProofsCallback(TrainerCallback):
    """A ``transformers.TrainerCallback`` that audits a ``trl.GRPOTrainer`` run (see the module doc).

    Args:
        phi: the reward scale r -> phi r of the ``scale_*`` metrics (finite, nonzero; default 10).
        jsonl: True (default): append the metrics to ``<output_dir>/proofs.jsonl``; a path: there;
            False: keep them in :attr:`records` only.
        trainer: the trainer, when the hooks are called by something other than its training loop.

    After training, :attr:`records` holds one dict per optimizer step (``step`` and the ``proofs/``
    values measured at it), :attr:`run` the run's header (release, config, Table 1 match) and
    :attr:`summary` the summary (:func:`grpo_proofs.integrations.summary.summarize`).
    """

    def __init__(self, *, phi: float = 10.0, jsonl: bool | str = True, trainer=None):
        if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not math.isfinite(phi) or phi == 0:
            raise InputError(f"phi must be a finite nonzero number (a reward scale), got {phi!r}")
        if not isinstance(jsonl, (bool, str)):
            raise InputError(f"jsonl must be true, false or a file path, got {jsonl!r}")
        self.phi, self.jsonl, self._trainer = float(phi), jsonl, trainer
        self.records: list[dict] = []
        self.run: dict | None = None
        self.summary: dict | None = None
        self._audit: StepAudit | None = None
        self._path: str | None = None
        self._bound = None

    # -- binding -------------------------------------------------------------------------------
    def _check(self, trainer, optimizer):
        from trl import GRPOTrainer

        have = installed_trl()
        if have not in SUPPORTED:
            raise InputError(f"ProofsCallback reads the GRPOTrainer of TRL {', '.join(SUPPORTED)}; TRL {have} is "
                             f"installed: install trl=={SUPPORTED[0]}")
        if trainer is None:
            raise InputError("ProofsCallback found no trainer calling it: add it to a trl.GRPOTrainer "
                             "(callbacks=[ProofsCallback()]) or pass trainer=")
        if not isinstance(trainer, GRPOTrainer):
            raise InputError(f"ProofsCallback audits a trl.GRPOTrainer; it was added to a {type(trainer).__name__}")
        for name in _MODELLED:
            if getattr(type(trainer), name) is not getattr(GRPOTrainer, name):
                raise InputError(f"{type(trainer).__name__} overrides GRPOTrainer.{name}: the audit models "
                                 "GRPOTrainer's own loss and batches; audit a plain GRPOTrainer")
        if trainer.accelerator.num_processes != 1:
            raise InputError(f"ProofsCallback audits one process; this run has {trainer.accelerator.num_processes} "
                             "(the mapped weights are those of a single process)")
        import torch

        opt = getattr(optimizer, "optimizer", optimizer)
        if not isinstance(opt, torch.optim.Adam):
            raise InputError(f"the optimizer is {type(opt).__name__}: the audit reads Adam's moments; train with "
                             "optim='adamw_torch' (the default) or 'adamw_torch_fused'")
        groups = opt.param_groups
        if any(g.get("amsgrad") or g.get("maximize") for g in groups):
            raise InputError("Adam with amsgrad or maximize is not modelled: its step is not m_hat/(sqrt(v_hat)+eps)")
        if len({(tuple(g["betas"]), g["eps"]) for g in groups}) != 1:
            raise InputError("the optimizer's parameter groups use different betas or eps; the audit reads one pair")
        from ..trainers import to_variant

        config = trainer_config(trainer.args, have)
        try:
            mapping = to_variant("trl", config)
        except InputError as exc:
            raise InputError(f"ProofsCallback cannot model this config: {exc}") from None
        return opt, config, mapping

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        trainer = self._trainer if self._trainer is not None else _calling_trainer()
        opt, config, mapping = self._check(trainer, optimizer if optimizer is not None else getattr(trainer, "optimizer", None))
        import torch

        group = opt.param_groups[0]
        dtype = next(trainer.model.parameters()).dtype
        float64 = torch.get_default_dtype() == torch.float64 and dtype == torch.float64
        mixed = str(getattr(trainer.accelerator, "mixed_precision", "no"))
        precision = str(dtype).replace("torch.", "") + (f" weights, {mixed} autocast" if mixed in ("bf16", "fp16") else "")
        self.run = {"trl_version": config["version"], "release": mapping.release.title, "config": config,
                    "method": list(mapping.matches), "closest": list(mapping.closest), "surrogate": mapping.surrogate,
                    "sequence": mapping.sequence, "weight": mapping.formula(), "phi": self.phi,
                    "betas": [float(b) for b in group["betas"]], "eps": float(group["eps"]),
                    "tolerance": CLOSED_FORM if float64 else RELEASE_FLOAT32,
                    "precision": precision}
        self._audit = StepAudit(trainer, config, opt, self.phi)
        self._wrap(trainer)
        self._bound = trainer
        self.records, self.summary = [], None
        self._path = None
        if self.jsonl and state.is_world_process_zero:
            self._path = self.jsonl if isinstance(self.jsonl, str) else os.path.join(args.output_dir, "proofs.jsonl")
            os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
            self._write({"record": "run", **self.run}, append=state.global_step > 0)

    def _wrap(self, trainer) -> None:
        """Pass-through wrappers that keep a detached copy of each training micro-batch's log-probs and loss."""
        _unwrap(trainer)
        loss_fn, logp_fn = trainer._compute_loss, trainer._get_per_token_logps_and_entropies
        audit, seen = self._audit, {}

        def logps(*args, **kwargs):
            out = logp_fn(*args, **kwargs)
            if seen.get("inside"):
                seen["logps"] = out[0]
            return out

        def compute_loss(model, inputs):
            if not trainer.model.training:
                return loss_fn(model, inputs)
            seen["inside"] = True
            try:
                loss = loss_fn(model, inputs)
            finally:
                seen["inside"] = False
            s = trainer._step % trainer.args.steps_per_generation
            if trainer._buffered_inputs is None or trainer._buffered_inputs[s] is not inputs:
                raise InputError("the batch GRPOTrainer trained on is not the slice it buffered; this trainer is "
                                 "not the GRPOTrainer the audit models")
            audit.record(s, seen.pop("logps"), loss)
            return loss

        compute_loss.proofs_wrapper = logps.proofs_wrapper = True
        trainer._compute_loss = compute_loss
        trainer._get_per_token_logps_and_entropies = logps

    # -- per step ------------------------------------------------------------------------------
    def on_optimizer_step(self, args, state, control, **kwargs):
        if self._audit is None:
            return
        metrics = self._audit.measure()
        if not metrics:
            return
        rec = {"step": state.global_step + 1, **metrics}
        self.records.append(rec)
        logged = self._bound._metrics["train"]
        for key, value in metrics.items():
            logged[key].append(float(value))
        if self._path:
            self._write({"record": "step", **rec})

    def on_train_end(self, args, state, control, **kwargs):
        if self._bound is None:
            return
        from .summary import summarize

        _unwrap(self._bound)
        self.summary = summarize(self.run, self.records)
        if self._path:
            self._write({"record": "summary", **self.summary})
        self._audit, self._bound = None, None

    def _write(self, obj: dict, append: bool = True) -> None:
        with open(self._path, "a" if append else "w", encoding="utf-8") as fh:
            fh.write(json.dumps(jsonable(obj)) + "\n")


def _unwrap(trainer) -> None:
    """Remove the audit's wrappers from ``trainer`` (the class's own methods answer again)."""
    for name in ("_compute_loss", "_get_per_token_logps_and_entropies"):
        if getattr(vars(trainer).get(name), "proofs_wrapper", False):
            del vars(trainer)[name]
