"""The float32 / bf16 tolerance policy, measured: the same confirmations in float64 and in lower precision.

For each confirmation of :mod:`grpo_proofs.props.tolerance` (the gradient identity through the
model, Prop. 2's Adam step ratio, the Props 3/7 premise step, Prop. 2's trajectory limit), every
precision and every seed, on the same device and model preset (default ``qwen2_small``), it collects
the error samples and prints their distribution (median, 99th percentile, max) and the bound it
recommends for each tolerance kind (10x the max observed over the kind's confirmations, rounded up
to a power of ten). ``bf16`` is bf16 autocast with float32 master weights. Prints figures; asserts
nothing. The float64 rows show the same confirmation at the precision of the CPU claims.

    python benchmarks/tolerance.py --device cpu                          # this machine
    python benchmarks/tolerance.py --device cuda                         # a GPU: float64 too, on the GPU
    python benchmarks/tolerance.py --device cpu --precisions float32 --seeds 2 --only gradient-identity
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    import torch
    from tqdm import tqdm

    from grpo_proofs.checking import tolerances
    from grpo_proofs.props.tolerance import CONFIRMATIONS, KINDS, measure, recommend, summarise
    from grpo_proofs.runtime.precision import MODELS, PRECISIONS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated (default: all three)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    p.add_argument("--model", choices=sorted(MODELS), default="qwen2_small")
    p.add_argument("--only", help="comma-separated confirmations: " + ", ".join(CONFIRMATIONS))
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("tolerance: --device cuda but this machine has no CUDA device; use --device cpu", file=sys.stderr)
        return 2
    precisions = [s.strip() for s in args.precisions.split(",") if s.strip()]
    names = [s.strip() for s in (args.only or ",".join(CONFIRMATIONS)).split(",") if s.strip()]
    bad = [x for x in precisions if x not in PRECISIONS] + [x for x in names if x not in CONFIRMATIONS]
    if bad or not precisions or args.seeds < 1:
        print(f"tolerance: unknown precision/confirmation {', '.join(bad) or '(none given)'} or --seeds < 1",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    bar = tqdm(total=len(names) * len(precisions) * args.seeds, desc="confirmations", file=sys.stderr,
               disable=not sys.stderr.isatty())
    samples = measure(device=args.device, precisions=precisions, seeds=range(args.seeds), model=args.model,
                      confirmations=names, progress=bar)
    bar.close()
    rows = [{"confirmation": c, "kind": KINDS[c], "precision": pr, **summarise(samples[c][pr])}
            for c in names for pr in precisions]
    kinds = {}
    for r in rows:
        k = kinds.setdefault((r["kind"], r["precision"]), {"max": 0.0, "from": []})
        k["max"] = max(k["max"], r["max"])
        k["from"].append(r["confirmation"])
    bounds = [{"kind": k, "precision": pr, "observed_max": v["max"], "recommended": recommend(v["max"]),
               "current": tolerances.BY_PRECISION[(k, pr)], "from": v["from"]} for (k, pr), v in kinds.items()]
    dev = (torch.cuda.get_device_name() if args.device == "cuda"
           else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
    meta = {"device": dev, "torch": torch.__version__, "cuda": torch.version.cuda, "model": args.model,
            "seeds": args.seeds, "date": datetime.date.today().isoformat(),
            "seconds": round(time.perf_counter() - t0, 1)}
    if args.json:
        json.dump({"meta": meta, "rows": rows, "bounds": bounds}, sys.stdout, indent=2)
        print()
        return 0
    print(f"device: {dev}; torch {torch.__version__}; CUDA {torch.version.cuda}; model {args.model}; "
          f"seeds 0..{args.seeds - 1}; {meta['date']}; {meta['seconds']} s")
    print(f"{'confirmation':<19} {'kind':<10} {'precision':<9} {'n':>4} {'median':>9} {'p99':>9} {'max':>9} "
          f"{'10x max ->':>10}")
    for r in rows:
        print(f"{r['confirmation']:<19} {r['kind']:<10} {r['precision']:<9} {r['n']:>4} {r['median']:>9.2e} "
              f"{r['p99']:>9.2e} {r['max']:>9.2e} {r['recommended']:>10.0e}")
    print(f"\n{'kind':<10} {'precision':<9} {'observed max':>12} {'recommended':>11} {'in table':>9}  from")
    for b in bounds:
        print(f"{b['kind']:<10} {b['precision']:<9} {b['observed_max']:>12.2e} {b['recommended']:>11.0e} "
              f"{b['current']:>9.0e}  {', '.join(b['from'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
