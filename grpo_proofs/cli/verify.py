"""``grpo-proofs verify``: run every registered claim and print a pass/fail table.

Real-model claims (kind ``model``) run once per precision of ``--precision`` and are reported as
``label [precision]`` rows when more than one precision (or a precision other than float64) runs:
``float64`` is the CPU default, ``float32,bf16`` the CUDA default (bf16 = bf16 autocast with float32
master weights). ``--model`` picks their policy preset (default: each check's float64 GPT-2 on the CPU,
the Qwen2-0.5B shape with G = 16 completions of up to 1024 tokens on CUDA). Every other claim runs once.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from ..claims import Context, all_claims, run_claim
from ..errors import InputError
from .common import add_device_flag, add_json_flag, emit_json

__all__ = ["register", "cuda_or_fail", "precisions_for", "DEFAULT_PRECISIONS"]

#: --precision default by device
DEFAULT_PRECISIONS = {"cpu": "float64", "cuda": "float32,bf16"}
_PRECISIONS = ("float64", "float32", "bf16")
_MODELS = ("tiny", "small", "qwen2_small", "qwen2_0_5b")


def cuda_or_fail(device: str) -> None:
    """Refuse ``--device cuda`` on a machine without CUDA, in one line."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but this machine has no CUDA device; use --device cpu")


def precisions_for(device: str, text: str | None) -> list[str]:
    """The precisions real-model claims run in: ``text`` (comma-separated) or the device's default.

    >>> precisions_for("cuda", None), precisions_for("cpu", "bf16,float32")
    (['float32', 'bf16'], ['bf16', 'float32'])
    """
    items = [s.strip() for s in (text or DEFAULT_PRECISIONS[device]).split(",") if s.strip()]
    bad = [s for s in items if s not in _PRECISIONS]
    if bad or not items:
        raise InputError(f"--precision takes a comma-separated list of {', '.join(_PRECISIONS)}; got {text!r}")
    return list(dict.fromkeys(items))


def _jobs(claims: dict, labels: list[str], args, precisions: list[str]) -> list[tuple[str, str | None, Context]]:
    """(label, precision shown or None, context) for every run."""
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


def run(args) -> int:
    cuda_or_fail(args.device)
    precisions = precisions_for(args.device, args.precision)
    if args.model is not None and args.model not in _MODELS:
        raise InputError(f"--model must be one of {', '.join(_MODELS)}, got {args.model!r}")
    claims = all_claims()
    labels = list(claims)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in claims and not any(l.startswith(w) for l in labels)]
        if unknown:
            raise InputError(f"unknown claim label(s) {', '.join(unknown)}; see `grpo-proofs verify --list`")
        labels = [l for l in labels if any(l == w or l.startswith(w) for w in wanted)]
    if args.list:
        for l in labels:
            print(f"{l:<40} {claims[l].page:<12} {claims[l].title}")
        return 0
    jobs = _jobs(claims, labels, args, precisions)
    results = []
    bar = tqdm(jobs, desc="claims", unit="claim", disable=args.json or not sys.stderr.isatty(), file=sys.stderr)
    for label, prec, ctx in bar:
        name = f"{label} [{prec}]" if prec else label
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        out = run_claim(label, ctx)
        results.append((name, label, prec, out, time.perf_counter() - t0))
    failed = [n for n, _, _, o, _ in results if not o.passed]
    if args.json:
        emit_json({
            "device": args.device,
            "precisions": precisions,
            "model": args.model,
            "passed": not failed,
            "claims": [
                {"label": l, "row": n, "precision": p, "title": claims[l].title, "page": claims[l].page,
                 "kind": claims[l].kind, "passed": o.passed, "error": o.error, "tolerance": o.tolerance,
                 "seconds": round(t, 3), "detail": o.detail}
                for n, l, p, o, t in results
            ],
        })
    else:
        w = max([40] + [len(n) for n, *_ in results])
        print(f"{'claim':<{w}} {'result':<6} {'error':>10} {'tolerance':>10} {'time':>7}  detail")
        for n, _, _, o, t in results:
            print(f"{n:<{w}} {'PASS' if o.passed else 'FAIL':<6} {o.error:>10.2e} {o.tolerance:>10.1e} {t:>6.1f}s  "
                  f"{o.detail}")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
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
    p.add_argument("--list", action="store_true", help="list the registered claims and exit")
    p.add_argument("--quick", action="store_true", help="fewer random examples and smaller models")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions of the real-model claims: float64, float32, bf16 (bf16 autocast "
                        "with float32 master weights); default float64 on cpu, float32,bf16 on cuda")
    p.add_argument("--model", default=None,
                   help="policy preset of the real-model claims: tiny, small, qwen2_small, qwen2_0_5b; default: "
                        "each claim's float64 GPT-2 preset on cpu, qwen2_0_5b (G = 16, up to 1024 tokens) on cuda")
    p.set_defaults(func=run)
