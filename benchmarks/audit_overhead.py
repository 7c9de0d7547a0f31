"""The cost of ProofsCallback in a real TRL 1.16.0 GRPOTrainer run (prints figures, asserts nothing).

The same run (config, seed, model) is trained twice per repeat, with and without
``grpo_proofs.integrations.trl.ProofsCallback``; a timing callback records each optimizer step's
wall time (``on_step_begin`` to ``on_step_end``: generation, forward, backward, optimizer step and
the callbacks' own hooks). Printed, after dropping each run's first step (warm-up):

* the median step time without and with the callback, and their ratio (goal <= 1.10);
* the callback's own time per step, measured directly (its ``on_optimizer_step``, where every
  metric is computed, plus the copies it keeps during the trainer's loss), and its share of the
  bare step: on a shared CPU this is steadier than the difference of two noisy medians.

    python benchmarks/audit_overhead.py                           # tiny model (hidden 16), 4 steps x 3 repeats
    python benchmarks/audit_overhead.py --hidden 256 --layers 4   # a larger random Qwen2, built in code
    python benchmarks/audit_overhead.py --trl loss_type=grpo,num_iterations=2 --steps 6

Nothing is downloaded: the models are random Qwen2s built in code with the word-level tokenizer
of :mod:`grpo_proofs.runtime.trl_offline`; runs are float64 on the CPU unless ``--float32``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _model(hidden: int, layers: int, float32: bool):
    """(model, tokenizer): a random Qwen2 of the given size, with the offline tokenizer (built anew per run)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from grpo_proofs.runtime.trl_offline import SHARP, VOCAB, float64, quiet, tokenizer

    heads = max(2, hidden // 32)
    cfg = Qwen2Config(vocab_size=len(VOCAB), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=1, max_position_embeddings=64, eos_token_id=0,
                      pad_token_id=0, bos_token_id=0, tie_word_embeddings=True, initializer_range=SHARP / hidden ** 0.5)
    with quiet(), float64(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(cfg)
    return (model.float() if float32 else model), tokenizer()


def run_once(config: dict, steps: int, audited: bool, size: tuple | None, float32: bool) -> tuple[list[float], list[float]]:
    """(step times, callback times per step) of one run, in seconds."""
    import contextlib

    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from grpo_proofs.integrations import step as step_module
    from grpo_proofs.runtime.trl_offline import SHARP, build_trainer, float64, quiet
    from grpo_proofs.integrations.trl import ProofsCallback

    times: list[float] = []
    spent: list[float] = [0.0]
    own: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.t0, spent[0] = time.perf_counter(), 0.0

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.t0)
            own.append(spent[0])

    class TimedProofs(ProofsCallback):
        def on_optimizer_step(self, *args, **kwargs):
            t = time.perf_counter()
            try:
                return super().on_optimizer_step(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

    record = step_module.StepAudit.record

    def timed_record(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return record(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t

    out = tempfile.mkdtemp(prefix="grpo-proofs-bench-run-")
    callbacks = [TimedProofs(jsonl=False), Clock()] if audited else [Clock()]
    step_module.StepAudit.record = timed_record
    try:
        dtype = contextlib.nullcontext() if float32 else float64()
        with quiet(), dtype:
            tr = build_trainer(config, output_dir=out, callbacks=callbacks, initializer_range=SHARP, max_steps=steps,
                               model=None if size is None else _model(*size, float32))
            tr.remove_callback(PrinterCallback)
            tr.train()
    finally:
        step_module.StepAudit.record = record
        shutil.rmtree(out, ignore_errors=True)
    return times, own


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=4, help="optimizer steps per run (the first is dropped)")
    p.add_argument("--repeats", type=int, default=3, help="runs with and without the callback, interleaved")
    p.add_argument("--trl", default="", help="GRPOConfig fields, key=value,... (default: dapo, 4 generations)")
    p.add_argument("--hidden", type=int, default=0, help="hidden size of a larger random Qwen2 (default: the tiny model)")
    p.add_argument("--layers", type=int, default=2, help="layers of that model")
    p.add_argument("--float32", action="store_true", help="a float32 model (with --hidden) instead of float64")
    a = p.parse_args(argv)
    if a.steps < 2 or a.repeats < 1 or a.hidden < 0 or a.layers < 1:
        print("audit_overhead.py: --steps must be >= 2, --repeats >= 1, --hidden >= 0, --layers >= 1", file=sys.stderr)
        return 2
    if a.float32 and not a.hidden:
        print("audit_overhead.py: --float32 needs --hidden (the tiny model is float64)", file=sys.stderr)
        return 2
    from grpo_proofs.trainers.trl import spec  # noqa: F401  (imports the mapping before timing)

    config = {"num_generations": 4, "per_device_train_batch_size": 16, "max_completion_length": 16,
              "learning_rate": 0.05, "bf16": False}
    for item in filter(None, a.trl.split(",")):
        key, _, value = item.partition("=")
        config[key.strip()] = _value(value.strip())
    size = (a.hidden, a.layers) if a.hidden else None
    bare, audited, own = [], [], []
    for _ in range(a.repeats):
        t, _ = run_once(config, a.steps, False, size, a.float32)
        bare += t[1:]
        t, o = run_once(config, a.steps, True, size, a.float32)
        audited += t[1:]
        own += o[1:]
    import trl

    mb, ma, mo = statistics.median(bare), statistics.median(audited), statistics.median(own)
    what = f"random Qwen2 hidden {a.hidden}, {a.layers} layers" if a.hidden else "tiny random Qwen2 (hidden 16, 1 layer)"
    print(f"TRL {trl.__version__} GRPOTrainer, {what}, {'float32' if a.float32 else 'float64'}, CPU "
          f"({os.cpu_count()} cores); config {config}")
    print(f"steps timed: {len(bare)} bare, {len(audited)} audited ({a.repeats} runs each, first step dropped)")
    print(f"median step time: bare {mb * 1e3:.1f} ms, with ProofsCallback {ma * 1e3:.1f} ms")
    print(f"overhead ratio audited/bare (medians): {ma / mb:.3f}  (goal <= 1.10)")
    print(f"callback's own time per step: median {mo * 1e3:.1f} ms = {mo / mb:.1%} of the bare step "
          f"(max {max(own) * 1e3:.1f} ms)")
    return 0


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


if __name__ == "__main__":
    sys.exit(main())
