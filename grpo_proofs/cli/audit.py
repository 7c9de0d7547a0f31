"""``grpo-proofs audit``: a short real TRL ``GRPOTrainer`` run, audited step by step with the paper's formulas.

    grpo-proofs audit                                   # tiny random model built offline, 2 steps
    grpo-proofs audit --trl loss_type=grpo,num_iterations=3 --steps 6 --report audit/
    grpo-proofs audit --trl grpo_config.yaml --model ./my-checkpoint --json
    grpo-proofs audit --log outputs/my-run              # the proofs/ metrics a run logged

The run adds ``grpo_proofs.integrations.trl.ProofsCallback`` to a real ``trl.GRPOTrainer`` (TRL
1.16.0) and prints, per optimizer step, the per-token weights against the mapped Table 1 formula,
Prop. 1's shared-prefix coefficient W, the tokens past the clip bound and their drift (Props. 3, 7),
the Adam coordinates a reward scale would move (Prop. 2) and the loss split (Prop. 4), then a summary.
"""

from __future__ import annotations

import os
import sys
import tempfile

from ..output import replace_dir
from .common import add_json_flag, check_report_dir, emit_json, whole, write_failed

__all__ = ["register"]


def _print(result: dict) -> None:
    from ..integrations.report import TABLE_COLUMNS, cell

    s = result["summary"]
    title = f"TRL {result['trl_version']} GRPOTrainer" if result.get("trl_version") else "GRPOTrainer run"
    what = s.get("model") or s.get("source")
    method = ", ".join(s.get("method") or []) or "no Table 1 row"
    print(f"{title}: {what}; {s['steps']} optimizer steps" + (f" in {s['seconds']:.1f} s" if "seconds" in s else ""))
    if s.get("weight"):
        print(f"  per-token weight {s['weight']} ({method})")
    cols = [(k, t) for k, t in TABLE_COLUMNS if any(f"proofs/{k}" in r for r in result["steps"])]
    rows = [["step", *(t for _, t in cols)]] + [[str(r["step"]), *(cell(r.get(f"proofs/{k}")) for k, _ in cols)]
                                                for r in result["steps"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(v.rjust(w) for v, w in zip(row, widths)))
    print("summary")
    for line in s.get("lines", []):
        print(f"  - {line}")
    notes = list(s.get("notes", []))
    if not any("proofs/clip_inner_step" in r for r in result["steps"]):
        from ..integrations.report import no_clip_note

        notes.append(no_clip_note(result))
    for note in notes:
        print(f"  note: {note}")


def run(args) -> int:
    from ..errors import InputError

    if args.log is not None:
        given = [f for f, v in (("--trl", args.trl), ("--model", args.model), ("--steps", args.steps)) if v is not None]
        if given:
            raise InputError(f"--log reads a saved run; {', '.join(given)} configure a new run: give one or the other")
    if args.report:
        check_report_dir(args.report, args.force)
    if args.log is not None:
        from ..integrations.logs import read_log

        result = read_log(args.log)
    else:
        from .trainer import read_spec

        config = {}
        if args.trl is not None:
            config, _ = read_spec("trl", args.trl)
        result = _run(config, args)
    if args.json:
        emit_json(result)
    else:
        _print(result)
    if args.report:
        from ..integrations.report import write_report

        tmp = tempfile.mkdtemp(prefix="grpo-proofs-audit-report-")
        try:
            write_report(tmp, result)
            replace_dir(tmp, args.report)
        except OSError as exc:
            return write_failed("audit", f"the report to {args.report}", exc)
        finally:
            if os.path.isdir(tmp):
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        if not args.json:
            print(f"report: {os.path.join(args.report, 'report.md')}")
    return 0


def _run(config: dict, args) -> dict:
    from tqdm import tqdm

    from ..integrations.audit import run_audit

    steps = 2 if args.steps is None else args.steps
    with tqdm(total=steps, desc="audit", unit="step", file=sys.stderr, disable=None) as bar:
        return run_audit(config, steps=steps, model=args.model, seed=args.seed, progress=bar.update)


def register(sub) -> None:
    p = sub.add_parser("audit", help="audit a short real TRL GRPOTrainer run with the paper's formulas (or a saved run)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--trl", metavar="KEY=VALUE,...|FILE",
                   help="GRPOConfig fields (loss_type=grpo,num_iterations=3,...), or a `trl grpo --config` YAML / "
                        "training-args JSON (default: TRL's defaults with small batches)")
    p.add_argument("--steps", type=whole(1, 100_000), metavar="N", help="optimizer steps to run (default 2)")
    p.add_argument("--model", metavar="PATH", help="a local causal-LM checkpoint folder with its tokenizer "
                                                   "(default: a tiny random Qwen2 built offline)")
    p.add_argument("--seed", type=whole(0), default=0, metavar="N", help="the run's seed (default 0)")
    p.add_argument("--log", metavar="DIR", help="read the proofs/ metrics of a saved run instead (its output folder "
                                                "with proofs.jsonl, or a trainer_state.json)")
    p.add_argument("--report", metavar="DIR", help="also write report.md and PNG plots into DIR")
    p.add_argument("--force", action="store_true", help="replace the files of an existing --report folder")
    add_json_flag(p)
    p.set_defaults(func=run)
