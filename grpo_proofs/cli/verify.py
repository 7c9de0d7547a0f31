"""``grpo-proofs verify``: run every registered claim and print a pass/fail table."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from ..claims import Context, all_claims, run_claim
from ..errors import InputError
from .common import add_device_flag, add_json_flag, emit_json

__all__ = ["register", "cuda_or_fail"]


def cuda_or_fail(device: str) -> None:
    """Refuse ``--device cuda`` on a machine without CUDA, in one line."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but this machine has no CUDA device; use --device cpu")


def run(args) -> int:
    cuda_or_fail(args.device)
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
    ctx = Context(device=args.device, quick=args.quick)
    results = []
    bar = tqdm(labels, desc="claims", unit="claim", disable=args.json or not sys.stderr.isatty(), file=sys.stderr)
    for label in bar:
        bar.set_postfix_str(label)
        t0 = time.perf_counter()
        out = run_claim(label, ctx)
        results.append((label, out, time.perf_counter() - t0))
    failed = [l for l, o, _ in results if not o.passed]
    if args.json:
        emit_json({
            "device": args.device,
            "passed": not failed,
            "claims": [
                {"label": l, "title": claims[l].title, "page": claims[l].page, "kind": claims[l].kind,
                 "passed": o.passed, "error": o.error, "tolerance": o.tolerance, "seconds": round(t, 3),
                 "detail": o.detail}
                for l, o, t in results
            ],
        })
    else:
        print(f"{'claim':<40} {'result':<6} {'error':>10} {'tolerance':>10} {'time':>7}  detail")
        for l, o, t in results:
            print(f"{l:<40} {'PASS' if o.passed else 'FAIL':<6} {o.error:>10.2e} {o.tolerance:>10.1e} {t:>6.1f}s  {o.detail}")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def register(sub) -> None:
    p = sub.add_parser("verify", help="run every registered claim; non-zero exit if any fails")
    add_device_flag(p)
    add_json_flag(p)
    p.add_argument("--only", help="comma-separated claim labels (or label prefixes) to run")
    p.add_argument("--list", action="store_true", help="list the registered claims and exit")
    p.add_argument("--quick", action="store_true", help="fewer random examples and smaller models")
    p.set_defaults(func=run)
