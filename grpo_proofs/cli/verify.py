"""``grpo-proofs verify``: run every registered claim and print a pass/fail table.

One line per claim as soon as it finishes (label, result, error, tolerance, items compared, time, title), fitted
to 120 columns; ``--wide`` prints full titles and each claim's details. On the CPU, claims run on one worker
process per core by default (``--jobs N``: N workers, :mod:`grpo_proofs.checking.parallel`; ``--jobs 1``: one
after the other in this process, in the registry's order); with ``--device cuda`` they run in this process
unless ``--jobs`` says otherwise, so the GPU holds one model at a time. Ctrl-C stops the run: with workers,
the claims that are running finish and nothing new starts; in this process, the running claim stops at
once. The lines already printed stay, and a last line says how many passed and how many did not run (exit
code 130; with ``--json`` the JSON of the finished claims, ``interrupted``). ``--json`` also says how many
``processes`` ran the claims (1: this process).
The result is PASS (float64, or an exact/symbolic check), ``bounded`` (a float32 or bf16 row within its
measured rounding bound: not an exact agreement) or FAIL; ``compared`` is the number of items the
check compared, as the check reports it.

Real-model claims (kind ``model``) run once per precision of ``--precision`` and are reported as
``label [precision]`` rows when more than one precision (or a precision other than float64) runs:
``float64`` is the CPU default, ``float32,bf16`` the CUDA default (bf16 = bf16 autocast with float32
master weights). ``--model`` picks their policy preset (default: each check's float64 GPT-2 on the CPU,
the Qwen2-0.5B shape with G = 16 completions of up to 1024 tokens on CUDA). Every other claim runs once.
"""

from __future__ import annotations

import sys
import time

from typing import TYPE_CHECKING

from ..errors import InputError
from ..runtime.choices import MODEL_NAMES, PRECISIONS
from .common import add_device_flag, add_json_flag, cuda_or_fail, emit_json

if TYPE_CHECKING:
    from ..checking import Context

__all__ = ["register", "cuda_or_fail", "precisions_for", "DEFAULT_PRECISIONS", "DEFAULT_JOBS", "WIDTH"]

#: --precision default by device
DEFAULT_PRECISIONS = {"cpu": "float64", "cuda": "float32,bf16"}

#: --jobs default by device: one worker per CPU core; on CUDA one process, which has the GPU to itself
#: (every worker would hold its own CUDA context and its own copy of the model)
DEFAULT_JOBS = {"cpu": 0, "cuda": 1}


def precisions_for(device: str, text: str | None) -> list[str]:
    """The precisions real-model claims run in: ``text`` (comma-separated) or the device's default.

    >>> precisions_for("cuda", None), precisions_for("cpu", "bf16,float32")
    (['float32', 'bf16'], ['bf16', 'float32'])
    """
    items = [s.strip() for s in (text or DEFAULT_PRECISIONS[device]).split(",") if s.strip()]
    bad = [s for s in items if s not in PRECISIONS]
    if bad or not items:
        raise InputError(f"--precision takes a comma-separated list of {', '.join(PRECISIONS)}; got {text!r}")
    return list(dict.fromkeys(items))


def _jobs(claims: dict, labels: list[str], args, precisions: list[str]) -> list[tuple[str, str | None, Context]]:
    """(label, precision shown or None, context) for every run."""
    from ..checking import Context

    tag = len(precisions) > 1 or precisions != ["float64"]
    jobs = []
    for label in labels:
        if claims[label].kind == "model":
            for p in precisions:
                jobs.append((label, p if tag else None,
                             Context(device=args.device, quick=args.quick, precision=p, model=args.model)))
        else:
            jobs.append((label, None, Context(device=args.device, quick=args.quick, precision=precisions[0],
                                              model=args.model)))
    return jobs


#: the table fits this many columns unless --wide
WIDTH = 120


def _cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, marked with '...' when cut."""
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


class _Table:
    """The verify table, one line per claim as it finishes: label, result, error, tolerance, time, title."""

    def __init__(self, names: list[str], wide: bool):
        self.w = max([len("claim")] + [len(n) for n in names])
        self.wide = wide
        self.fixed = self.w + 1 + 7 + 1 + 9 + 1 + 9 + 1 + 9 + 1 + 7 + 2

    def header(self) -> str:
        return (f"{'claim':<{self.w}} {'result':<7} {'error':>9} {'tolerance':>9} {'compared':>9} {'time':>7}  "
                "title")

    def line(self, name: str, title: str, o, seconds: float, precision: str | None = None) -> str:
        n = "-" if o.compared is None else str(o.compared)
        head = (f"{name:<{self.w}} {o.result(precision):<7} {o.error:>9.2e} {o.tolerance:>9.1e} {n:>9} "
                f"{seconds:>6.1f}s  ")
        if self.wide:
            return head + title + (f"\n{'':<{self.w + 2}}{o.detail}" if o.detail else "")
        return head + _cut(title, max(WIDTH - self.fixed, 10))


def _outcomes(jobs, names, workers: int, bar):
    """(index, outcome, seconds) of every job: in order on this process (``workers`` = 1), or as they finish
    on ``workers`` processes."""
    from ..checking import run_claim
    from ..checking.parallel import run_claims

    if workers > 1:
        yield from run_claims([(label, ctx) for label, _, ctx in jobs], workers)
        return
    for k, (label, _, ctx) in enumerate(jobs):
        bar.set_postfix_str(names[k])
        t0 = time.perf_counter()
        out = run_claim(label, ctx)
        yield k, out, time.perf_counter() - t0


def _list(claims: dict, labels: list[str], as_json: bool) -> int:
    if as_json:
        emit_json([{"label": l, "title": claims[l].title, "page": claims[l].page, "kind": claims[l].kind,
                    "statement": claims[l].statement} for l in labels])
        return 0
    w = max(len(l) for l in labels) if labels else 10
    for l in labels:
        print(_cut(f"{l:<{w}} {claims[l].page:<10} {claims[l].title}", WIDTH))
    return 0


def run(args) -> int:
    from tqdm import tqdm

    from ..checking import all_claims
    from ..checking.parallel import start_server, worker_count

    cuda_or_fail(args.device)
    precisions = precisions_for(args.device, args.precision)
    workers = worker_count(DEFAULT_JOBS[args.device] if args.jobs is None else args.jobs)
    if args.model is not None and args.model not in MODEL_NAMES:
        raise InputError(f"--model must be one of {', '.join(MODEL_NAMES)}, got {args.model!r}")
    if workers > 1 and not args.list and not args.only:
        start_server()              # the workers' imports run while this process reads the registry
    claims = all_claims()
    labels = list(claims)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in claims and not any(l.startswith(w) for l in labels)]
        if unknown:
            raise InputError(f"unknown claim label(s) {', '.join(unknown)}; see `grpo-proofs verify --list`")
        labels = [l for l in labels if any(l == w or l.startswith(w) for w in wanted)]
    if args.list:
        return _list(claims, labels, args.json)
    jobs = _jobs(claims, labels, args, precisions)
    names = [f"{label} [{prec}]" if prec else label for label, prec, _ in jobs]
    processes = min(workers, len(jobs)) if len(jobs) > 1 else 1   # 1: in this process
    table = _Table(names, args.wide)
    results, interrupted = [], False
    bar = tqdm(total=len(jobs), desc="claims", unit="claim", leave=False, file=sys.stderr,
               disable=args.json or not sys.stderr.isatty())
    try:
        if not args.json:
            print(table.header(), flush=True)
        for k, out, seconds in _outcomes(jobs, names, processes, bar):
            name, (label, prec, ctx) = names[k], jobs[k]
            results.append((k, name, label, prec, out, seconds))
            if not args.json:
                bar.write(table.line(name, claims[label].title, out, seconds,
                                     ctx.effective_precision if claims[label].kind == "model" else None),
                          file=sys.stdout)
                sys.stdout.flush()
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    ran = {r[0] for r in results}
    results = [r[1:] for r in sorted(results, key=lambda r: r[0])]  # the registry's order, however they finished
    failed = [n for n, _, _, o, _ in results if not o.passed]
    not_run = [n for k, n in enumerate(names) if k not in ran]
    if args.json:
        emit_json({
            "device": args.device,
            "precisions": precisions,
            "model": args.model,
            "processes": processes,
            "passed": not failed and not interrupted,
            "interrupted": interrupted,
            "not_run": not_run,
            "claims": [
                {"label": l, "row": n, "precision": p, "title": claims[l].title, "page": claims[l].page,
                 "kind": claims[l].kind, "passed": o.passed, "error": o.error, "tolerance": o.tolerance,
                 "result": o.result(p), "compared": o.compared,
                 "seconds": round(t, 3), "detail": o.detail}
                for n, l, p, o, t in results
            ],
        })
    else:
        bounded = sum(o.result(p) == "bounded" for _, _, p, o, _ in results)
        print(f"{len(results) - len(failed)} passed" + (f" ({bounded} bounded)" if bounded else "") + f", {len(failed)} failed"
              + (f", {len(not_run)} not run (interrupted)" if interrupted else "")
              + ("" if args.wide else "; --wide shows every claim's details"))
    if interrupted:
        print(f"grpo-proofs verify: interrupted after {len(results)} of {len(names)} claims; the "
              f"{len(results) - len(failed)} that passed are listed above, {len(not_run)} did not run", file=sys.stderr)
        return 130
    return 1 if failed else 0


def register(sub) -> None:
    p = sub.add_parser(
        "verify", help="run every registered claim; non-zero exit if any fails",
        description="Run every registered claim and print a pass/fail table. Real-model claims run once per "
                    "--precision and are reported as 'label [precision]' rows; on a machine without CUDA, "
                    "--device cuda stops with one line and exit code 2.")
    add_device_flag(p)
    add_json_flag(p)
    p.add_argument("--only", help="comma-separated claim labels (or label prefixes) to run")
    p.add_argument("--list", action="store_true", help="list the registered claims and exit (with --json: as JSON)")
    p.add_argument("--wide", action="store_true", help=f"full titles and each claim's details (default: fit {WIDTH} "
                   "columns)")
    p.add_argument("--quick", action="store_true", help="fewer random examples and smaller models")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="run the claims on N worker processes, one thread each (0: one per CPU core, the default on "
                        "cpu; 1: one after the other in this process, the default on cuda); lines appear as claims "
                        "finish, --json keeps the registry's order")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions of the real-model claims: float64, float32, bf16 (bf16 autocast "
                        "with float32 master weights); default float64 on cpu, float32,bf16 on cuda")
    p.add_argument("--model", default=None,
                   help="policy preset of the real-model claims: tiny, small, qwen2_small, qwen2_0_5b; default: "
                        "each claim's float64 GPT-2 preset on cpu, qwen2_0_5b (G = 16, up to 1024 tokens) on cuda")
    p.set_defaults(func=run)
