"""The ``proofs/`` metrics of a saved run, read back: ``grpo-proofs audit --log DIR``.

Two on-disk formats are read:

* ``proofs.jsonl`` -- what :class:`~grpo_proofs.integrations.trl.ProofsCallback` writes to the
  run's output folder: one JSON object a line, a ``run`` header (release, config, Table 1
  match, tolerance), one ``step`` record per optimizer step (every metric at full resolution), a
  ``summary`` at the end of training. A run resumed from a checkpoint appends to it; a step
  recorded twice keeps its later record. A last line cut short (a run stopped while writing)
  is left out, and the summary says so.
* ``trainer_state.json`` -- the state ``transformers.Trainer`` saves into each checkpoint
  (``<output_dir>/checkpoint-N/``, or the output folder itself after ``trainer.save_state()``): its
  ``log_history`` entries with ``proofs/`` keys, averaged by the trainer over each ``logging_steps``
  window, without the run header (no release, config or tolerance).

``DIR`` may be the output folder (``proofs.jsonl`` first, else its ``trainer_state.json``, else the
newest ``checkpoint-N``), a checkpoint folder, or either file. Trackers' own stores (wandb,
trackio, tensorboard event files) are not read.
"""

from __future__ import annotations

import json
import os
import re

from ..errors import InputError
from .summary import summarize

__all__ = ["read_log", "find_log"]

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def find_log(path: str) -> tuple[str, str]:
    """(file, format) for ``path`` (format ``"jsonl"`` or ``"trainer_state"``); one line when there is none."""
    if os.path.isfile(path):
        if path.endswith(".jsonl"):
            return path, "jsonl"
        if path.endswith(".json"):
            return path, "trainer_state"
        raise InputError(f"--log {path!r}: not a proofs.jsonl or trainer_state.json file")
    if not os.path.isdir(path):
        raise InputError(f"--log {path!r}: no such file or folder")
    for name, fmt in (("proofs.jsonl", "jsonl"), ("trainer_state.json", "trainer_state")):
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name), fmt
    found = [(int(m.group(1)), d) for d in os.listdir(path) if (m := _CHECKPOINT.match(d))
             and os.path.isfile(os.path.join(path, d, "trainer_state.json"))]
    if found:
        return os.path.join(path, max(found)[1], "trainer_state.json"), "trainer_state"
    raise InputError(f"--log {path!r} holds no proofs.jsonl, trainer_state.json or checkpoint-N/trainer_state.json; "
                     "give the output folder of a run trained with ProofsCallback")


def _jsonl(path: str) -> tuple[dict | None, list[dict], list[str]]:
    run, steps, notes = None, {}, []
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if i == last:
                notes.append(f"the last line of {os.path.basename(path)} was cut short and is left out")
                continue
            raise InputError(f"{path}, line {i + 1}: not a JSON object; the file is not a proofs.jsonl") from None
        kind = obj.get("record") if isinstance(obj, dict) else None
        if kind == "run":
            run = run or {k: v for k, v in obj.items() if k != "record"}
        elif kind == "step" and isinstance(obj.get("step"), int):
            steps[obj["step"]] = {k: v for k, v in obj.items() if k != "record"}
        elif kind not in ("summary",):
            raise InputError(f"{path}, line {i + 1}: not a record of proofs.jsonl (run, step or summary)")
    return run, [steps[k] for k in sorted(steps)], notes


def _trainer_state(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise InputError(f"{path} has no log_history; it is not a trainer_state.json")
    out = []
    for entry in history:
        if isinstance(entry, dict) and any(str(k).startswith("proofs/") for k in entry):
            out.append({"step": entry.get("step"), **{k: v for k, v in entry.items() if str(k).startswith("proofs/")}})
    return out


def read_log(path: str) -> dict:
    """``{"trl_version", "config", "steps", "summary"}`` of a saved run (see the module doc)."""
    file, fmt = find_log(path)
    try:
        if fmt == "jsonl":
            run, steps, notes = _jsonl(file)
        else:
            run, steps, notes = None, _trainer_state(file), ["values are the trainer's averages over each logging "
                                                            "window (trainer_state.json); the run header is not saved there"]
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{file} is not UTF-8 text") from None
    if not steps:
        raise InputError(f"{file} holds no proofs/ metrics: the run was not audited (add callbacks=[ProofsCallback()])")
    summary = summarize(run, steps)
    summary.update(source=file, format=fmt, notes=notes)
    if run:
        summary.update(weight=run.get("weight"), surrogate=run.get("surrogate"), precision=run.get("precision"),
                       phi=run.get("phi"), betas=run.get("betas"), eps=run.get("eps"))
    config = {k: v for k, v in (run or {}).get("config", {}).items() if k != "version"}
    return {"trl_version": (run or {}).get("trl_version"), "config": config, "steps": steps, "summary": summary}
