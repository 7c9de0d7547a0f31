"""A short real ``GRPOTrainer`` run with :class:`~grpo_proofs.integrations.trl.ProofsCallback`: ``grpo-proofs audit``.

By default the model is the tiny random causal LM of :mod:`.offline` (float64, sharp next-token
distributions so that completions of one prompt share first tokens), with its word-level
tokenizer, an in-memory prompt set and the deterministic reward :func:`~.offline.reward_count`;
``model`` names a local checkpoint folder instead (its own tokenizer; float32 as saved). The
config is GRPOConfig fields; what it leaves out takes :data:`AUDIT_DEFAULTS` (small batches and a
learning rate the tiny model moves with; for the tiny model also :data:`TINY_DEFAULTS`, no bf16
autocast), then TRL's own defaults.

The result has the shape ``{"trl_version", "config", "steps": [{"step": n, "proofs/...": v}],
"summary"}`` (the summary also names the model, the release and the Table 1 match).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time

from ..errors import InputError

__all__ = ["run_audit", "AUDIT_DEFAULTS", "TINY_DEFAULTS", "TINY_POSITIONS", "memory_estimate"]

#: GRPOConfig fields the audit run sets unless the config gives them
AUDIT_DEFAULTS = {"num_generations": 4, "per_device_train_batch_size": 16, "max_completion_length": 16,
                  "learning_rate": 0.05}
#: the tiny model is float64: TRL's default bf16 autocast (on unless fp16 is set) would run it in bfloat16
TINY_DEFAULTS = {"bf16": False}
#: positions the tiny model holds (prompts have at most 3 tokens)
TINY_POSITIONS = 64
#: keys the run sets itself
_RUN_KEYS = ("output_dir", "max_steps", "seed", "data_seed", "use_cpu", "report_to", "save_strategy", "logging_steps",
             "disable_tqdm", "dataloader_num_workers")


def memory_estimate(path: str, reference: bool) -> int:
    """Bytes a CPU training run of the checkpoint at ``path`` needs, at least: its weight files x 4 (weights,
    gradients, Adam's two moments), + 1 copy for a reference model."""
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
               if f.endswith((".safetensors", ".bin", ".pt", ".pth")))
    return size * (5 if reference else 4)


def _available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _prepare(config: dict | None, steps: int, model: str | None) -> tuple[dict, dict]:
    """(GRPOConfig fields of the run, the project's reading of its loss keys); refuses bad input before any work."""
    from ..trainers import to_variant
    from .trl import SUPPORTED, installed_trl

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"--steps must be a whole number >= 1, got {steps!r}")
    cfg = dict(config or {})
    given = cfg.pop("version", None)
    have = installed_trl()
    if have not in SUPPORTED:
        raise InputError(f"the audit runs TRL {', '.join(SUPPORTED)}; TRL {have} is installed: install trl=={SUPPORTED[0]}")
    if given is not None and str(given).lstrip("vV") not in (have, ".".join(have.split(".")[:2])):
        raise InputError(f"the config describes TRL {given}, but the audit runs the installed TRL {have}; "
                         "remove the version key or install that release")
    clash = sorted(set(cfg) & set(_RUN_KEYS))
    if clash:
        raise InputError(f"the audit sets {', '.join(clash)} itself (use --steps for max_steps); remove "
                         f"{'it' if len(clash) == 1 else 'them'} from the config")
    run_cfg = {**AUDIT_DEFAULTS, **(TINY_DEFAULTS if model is None else {}), **cfg}
    mapping = to_variant("trl", dict(run_cfg, version=have))  # an unmodellable config: one line, before any work
    if model is None:
        if int(run_cfg["max_completion_length"]) > TINY_POSITIONS - 4:
            raise InputError(f"max_completion_length = {run_cfg['max_completion_length']} does not fit the tiny model "
                             f"({TINY_POSITIONS} positions, prompts up to 3 tokens): give at most {TINY_POSITIONS - 4}, "
                             "or a model with --model")
    else:
        if not os.path.isdir(model):
            raise InputError(f"--model {model!r} is not a folder; give a local checkpoint folder (nothing is downloaded)")
        need, have_mem = memory_estimate(model, mapping.kl_coef != 0), _available_memory()
        if have_mem is not None and need > have_mem:
            raise InputError(f"training {model!r} on the CPU needs about {need / 2**30:.1f} GiB (weights, gradients, "
                             f"Adam's moments{', reference model' if mapping.kl_coef else ''}); {have_mem / 2**30:.1f} GiB "
                             "is available: use a smaller checkpoint")
    return run_cfg, mapping


def run_audit(config: dict | None = None, steps: int = 2, model: str | None = None, seed: int = 0,
              progress=None) -> dict:
    """Run ``steps`` optimizer steps of a real ``GRPOTrainer`` with the audit callback; the result dict.

    Args:
        config: GRPOConfig fields (``loss_type``, ``num_iterations``, ...; a ``version`` key must
            name the installed TRL).
        steps: optimizer steps (``max_steps``).
        model: a local checkpoint folder, or None for the tiny random model built offline.
        seed: the run's seed (sampling, shuffling).
        progress: called with no argument after each optimizer step (e.g. a progress bar's update).
    """
    run_cfg, mapping = _prepare(config, steps, model)
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from ..runtime.trl_offline import SHARP, build_trainer, float64, quiet
    from .trl import ProofsCallback

    class _Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if progress is not None:
                progress()

    out = tempfile.mkdtemp(prefix="grpo-proofs-audit-")
    audit = ProofsCallback(jsonl=False)
    start = time.perf_counter()
    try:
        dtype = float64() if model is None else contextlib.nullcontext()
        with quiet(), dtype:
            try:
                trainer = build_trainer(run_cfg, output_dir=out, model_path=model, seed=seed, initializer_range=SHARP,
                                        callbacks=[audit, _Progress()], max_steps=steps)
            except (ValueError, NotImplementedError) as exc:
                if isinstance(exc, InputError):
                    raise
                raise InputError(f"TRL refuses the config: {str(exc).strip().splitlines()[0]}") from None
            for cb in (PrinterCallback, ProgressCallback):
                trainer.remove_callback(cb)
            try:
                trainer.train()
            except (ValueError, RuntimeError, IndexError) as exc:
                if isinstance(exc, InputError):
                    raise
                raise InputError(f"the training run failed: {str(exc).strip().splitlines()[0]}") from None
    finally:
        shutil.rmtree(out, ignore_errors=True)
    seconds = time.perf_counter() - start
    summary = dict(audit.summary)
    summary.update(model=model or "tiny random Qwen2 (built offline, float64)", seconds=seconds,
                   weight=audit.run["weight"], surrogate=audit.run["surrogate"], precision=audit.run["precision"],
                   phi=audit.run["phi"], betas=audit.run["betas"], eps=audit.run["eps"])
    shown = {k: v for k, v in audit.run["config"].items() if k != "version"}
    return {"trl_version": audit.run["trl_version"], "config": {**run_cfg, **shown}, "steps": list(audit.records),
            "summary": summary}
