"""Every speed and memory figure of the project in one run, each with its goal and ratio (asserts nothing).

Sections (``--only`` picks some; all by default):

* ``gradient`` -- the compiled symbolic gradient (:func:`grpo_proofs.token_gradient`) against the
  hand-written reference loss + autograd (forward and backward) on the same tokens, every registered
  variant, 1e6 and 1e7 tokens (G = 16); the ratio compiled / reference, goal <= 1.0.
* ``scaling`` -- the compiled gradient's time per token at 1e5, 1e6 and 1e7 tokens (token and
  sequence level); the ratio to the 1e5 cost per token, goal <= 1.5 (linear cost).
* ``derive`` -- the exact symbolic gradient of a G = 16 group for all ten Table 1 variants, in a
  fresh process (no caches), goal < 3 s.
* ``cli`` -- whole commands in fresh processes: ``--help`` (goal < 0.5 s), ``check grpo --quick``
  (< 3 s), ``check grpo`` (< 8 s), ``verify --quick`` (< 20 s), ``verify`` (< 90 s), each verify run as it
  runs by default (one worker process per core) and with ``--jobs 1`` (one claim after the other in one
  process). A check's detail also gives the time of its third-party imports alone (:data:`CHECK_IMPORTS`
  in a fresh interpreter), the part of the figure the project cannot remove.
* ``scale`` -- a GPU-size group (G = 64, completions of 8192 tokens) checked on the CPU in float64:
  derived gradient against the reference autograd and the compiled surrogate's autograd for every
  variant; the largest relative error and the process's peak memory, goal <= 8 GiB.
* ``book``, ``tests`` (only when named in ``--only``: minutes each) -- ``make book``'s build and the
  whole test suite, goals < 120 s and < 300 s.

Times are medians over ``--repeats`` runs after a warm-up (the 1e7-token runs: ``--big-repeats``). A
gradient figure alternates the compiled and the reference runs in ``--rounds`` rounds (each a warm-up
and the repeats of one, then of the other); its ratio is the median time of one over the median time of
the other, and its detail gives the range of the rounds' own ratios.
The machine line gives the CPU, the threads and the load average before and after, so figures from a
shared machine can be read with their conditions. The calibration line gives the time of a fixed piece of
work (``import torch`` in a fresh interpreter, part of every command figure) and the share of CPU time
the host of a virtual machine took during the run: two machines that report the same CPU can differ by
a factor of two, and these say which kind of machine a table came from.

Usage: python benchmarks/all.py [--json] [--quick] [--only gradient,derive,...] [--repeats 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CLI = [PY, "-m", "grpo_proofs.cli"]
SECTIONS = ("gradient", "scaling", "derive", "cli", "scale")
GiB = 1024 ** 3


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def alternating_times(fa, fb, rounds: int, repeats: int) -> tuple[float, float, list[float]]:
    """Medians of ``fa`` and ``fb`` timed in alternating blocks (A then B, ``rounds`` times, each block a
    warm-up and ``repeats`` timed runs), and the ratio A/B of each round.

    Each block measures its function warm, and the alternation spreads a drift of the machine's speed
    over both: at a few milliseconds a call, one block of each gives ratios that vary by a factor of
    two from run to run on a shared machine, as the detail's per-round range shows."""
    ta, tb, ratios = [], [], []
    for _ in range(rounds):
        a, b = median_time(fa, repeats), median_time(fb, repeats)
        ta.append(a)
        tb.append(b)
        ratios.append(a / b)
    return statistics.median(ta), statistics.median(tb), ratios


def row(section: str, figure: str, value: float, unit: str, goal: float, detail: str = "") -> dict:
    return {"section": section, "figure": figure, "value": value, "unit": unit, "goal": goal,
            "ratio": value / goal, "met": value <= goal, "detail": detail}


# -- gradient: compiled vs reference + autograd ---------------------------------------------------

def _gradient_case(name: str, tokens: int, G: int = 16):
    import numpy as np
    import torch

    from grpo_proofs.props.gradient.api import padded, random_group
    from grpo_proofs.reference import REFERENCE
    from grpo_proofs.variants import VARIANTS

    v = VARIANTS[name]
    L = tokens // G
    rng = np.random.default_rng(1)
    rewards, _, _ = random_group(rng, v, G=G, max_len=2)
    lengths = [L] * G
    lr = [rng.normal(scale=0.1, size=L) for _ in range(G)]
    old = [-np.abs(rng.normal(-2, 0.5, size=L)) for _ in range(G)]  # log-probabilities: <= 0
    old_t, mask = padded(lengths, old)
    logp0, _ = padded(lengths, [o + x for o, x in zip(old, lr)])
    r = torch.as_tensor(rewards)

    def reference():
        logp = logp0.clone().requires_grad_(True)
        torch.autograd.grad(REFERENCE[name](logp, old_t, r, mask), logp)

    return v, rewards, lengths, lr, old, reference


def gradient_rows(sizes: list[int], repeats: int, big_repeats: int, rounds: int) -> list[dict]:
    from grpo_proofs.evaluate import token_gradient
    from grpo_proofs.variants import VARIANTS

    rows = []
    for tokens in sizes:
        reps = repeats if tokens <= 1_000_000 else big_repeats
        for name in VARIANTS:  # Table 1 and the later formulations
            v, rewards, lengths, lr, old, reference = _gradient_case(name, tokens)
            extra = {"old_logp": old} if v.needs_old_logp else {}  # the same pi_old as the reference

            def compiled():
                token_gradient(v, rewards, lengths, lr, **extra)

            a, b, ratios = alternating_times(compiled, reference, rounds, reps)
            rows.append(row("gradient", f"{name} {tokens:.0e} tokens: compiled / reference+autograd", a / b, "x", 1.0,
                            f"compiled {a:.4f} s, reference {b:.4f} s; {rounds} rounds: "
                            f"{min(ratios):.2f}-{max(ratios):.2f}"))
    return rows


def scaling_rows(repeats: int, big_repeats: int) -> list[dict]:
    from grpo_proofs.evaluate import token_gradient

    rows = []
    for name in ("grpo", "gspo"):
        per_token = {}
        for tokens in (100_000, 1_000_000, 10_000_000):
            v, rewards, lengths, lr, _, _ = _gradient_case(name, tokens)
            secs = median_time(lambda: token_gradient(v, rewards, lengths, lr), repeats if tokens <= 1_000_000 else big_repeats)
            per_token[tokens] = secs / tokens
        base = per_token[100_000]
        for tokens, cost in per_token.items():
            rows.append(row("scaling", f"{name} {tokens:.0e} tokens: cost per token / cost per token at 1e5", cost / base,
                            "x", 1.5, f"{cost * 1e9:.1f} ns per token"))
    return rows


# -- derive: all ten Table 1 gradients, fresh process ---------------------------------------------

_DERIVE = """
import time, numpy as np
t0 = time.perf_counter()
from grpo_proofs.gradient import group_gradient
from grpo_proofs.objective import surrogate
from grpo_proofs.variants import REGISTRY
t1 = time.perf_counter()
lengths = np.random.default_rng(0).integers(1, 65, size=16)
for v in REGISTRY.values():
    group_gradient(surrogate(v, lengths))
t2 = time.perf_counter()
print(t2 - t1, t1 - t0, int(lengths.sum()))
"""


def derive_rows(repeats: int) -> list[dict]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([PY, "-c", _DERIVE], capture_output=True, text=True, check=True)
        runs.append([float(x) for x in out.stdout.split()])
    secs = statistics.median(r[0] for r in runs)
    return [row("derive", "ten Table 1 symbolic gradients, G = 16 (fresh process)", secs, "s", 3.0,
                f"{int(runs[0][2])} tokens; imports {statistics.median(r[1] for r in runs):.2f} s not counted")]


# -- whole commands --------------------------------------------------------------------------------

def _command_time(args: list[str], repeats: int, warmup: int = 1) -> tuple[float, int]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    codes = []

    def once():
        codes.append(subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode)

    return median_time(once, repeats, warmup), max(codes)


#: the third-party imports every ``check`` makes before its own work: torch, torch._dynamo (the first
#: torch.optim optimizer loads it), sympy, and transformers' GPT-2 (the policy the confirmations run on)
CHECK_IMPORTS = "import torch, torch._dynamo, sympy; from transformers import GPT2LMHeadModel"


def cli_rows(repeats: int, quick: bool) -> list[dict]:
    floor = import_seconds(CHECK_IMPORTS, max(repeats, 3))  # the part of a check figure the project cannot remove
    cases = [
        ("--help", ["--help"], 0.5, max(repeats, 5)),
        ("check grpo --quick", ["check", "grpo", "--quick"], 3.0, repeats),
        ("check grpo", ["check", "grpo"], 8.0, 1),
        ("verify --quick", ["verify", "--quick"], 20.0, 1),
        ("verify --quick --jobs 1", ["verify", "--quick", "--jobs", "1"], 20.0, 1),
    ]
    if not quick:
        cases.append(("verify", ["verify"], 90.0, 1))
        cases.append(("verify --jobs 1", ["verify", "--jobs", "1"], 90.0, 1))
    rows = []
    for label, argv, goal, reps in cases:
        secs, code = _command_time(CLI + argv, reps, warmup=1 if reps > 1 else 0)
        detail, extra = f"exit code {code}, median of {reps}", {}
        if argv[0] == "check":
            detail += (f"; its imports alone {floor:.2f} s (torch, torch._dynamo, sympy, transformers' GPT-2), "
                       f"the rest {secs - floor:.2f} s")
            extra = {"imports_s": floor}
        rows.append({**row("cli", f"grpo-proofs {label}", secs, "s", goal, detail), **extra})
    return rows


# -- scale: G = 64 completions of 8k tokens, float64, CPU ------------------------------------------

_SCALE = """
import resource, sys, time
import numpy as np
from grpo_proofs.props.gradient.claims import check_variant
from grpo_proofs.variants import REGISTRY
G, L = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
worst, t0 = 0.0, time.perf_counter()
for v in REGISTRY.values():
    rewards = rng.normal(size=G)
    lr = [rng.normal(scale=0.05, size=L) for _ in range(G)]
    worst = max(worst, check_variant(v, rewards, [L] * G, lr))
print(worst, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def scale_rows(G: int = 64, L: int = 8192) -> list[dict]:
    out = subprocess.run([PY, "-c", _SCALE, str(G), str(L)], capture_output=True, text=True, check=True)
    err, secs, peak = (float(x) for x in out.stdout.split())
    return [row("scale", f"G = {G}, |o_i| = {L}: peak memory of the float64 gradient check, all variants", peak / GiB,
                "GiB", 8.0, f"{G * L:,} tokens, largest relative error {err:.2e}, {secs:.1f} s")]


# -- optional: book and test suite -----------------------------------------------------------------

def book_rows() -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg",
                   IPYTHONDIR=str(ROOT / "book" / "_ipython"))
        jb = str(Path(PY).with_name("jupyter-book"))
        t0 = time.perf_counter()
        code = subprocess.run([jb, "build", "book", "--path-output", out, "--all", "-W", "-n", "--keep-going"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        secs = time.perf_counter() - t0
    return [row("book", "book build (every page executed)", secs, "s", 120.0, f"exit code {code}")]


def test_rows() -> list[dict]:
    """The suite as ``make test`` runs it once the environment is installed: one pytest-xdist worker per core,
    each test file on one worker (the Makefile's PYTEST_PARALLEL)."""
    t0 = time.perf_counter()
    code = subprocess.run([PY, "-m", "pytest", "-n", "auto", "--dist", "loadfile"], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return [row("tests", "whole test suite as make test runs it (after install)", time.perf_counter() - t0, "s", 300.0,
                f"exit code {code}")]


def cpu_ticks() -> tuple[int, int] | None:
    """(all, stolen) CPU ticks since boot from /proc/stat (None where there is none): a virtual machine's
    host can take time from it ("steal"), and the same CPU model then runs the same work slower."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time the host took between two :func:`cpu_ticks` readings."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return (after[1] - before[1]) / (after[0] - before[0])


def import_seconds(code: str, repeats: int = 3) -> float:
    """Median wall time of a fresh interpreter running ``code`` (imports): ``import torch`` is the
    calibration, a fixed piece of work that every command figure contains, so tables of machines with the
    same CPU name can be compared; :data:`CHECK_IMPORTS` is the floor of a check figure."""
    def once():
        subprocess.run([PY, "-c", code], check=True)
    return median_time(once, repeats)


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpu": _cpu_model(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_before": os.getloadavg(),
            "torch_import_s": import_seconds("import torch")}


def print_table(info: dict, rows: list[dict]) -> None:
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['torch_threads']} threads), "
          f"Python {info['python']}; load average {'/'.join(f'{x:.1f}' for x in info['load_before'])} before, "
          f"{'/'.join(f'{x:.1f}' for x in info['load_after'])} after")
    steal = info["steal_share"]
    print(f"calibration: import torch in a fresh interpreter {info['torch_import_s']:.2f} s (median of 3); "
          f"CPU time taken by the host during the run: {'unknown' if steal is None else f'{steal:.1%}'}")
    w = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{w}}  {'value':>9} {'unit':<4} {'goal':>7}  {'ratio':>6}  met  detail")
    for r in rows:
        print(f"{r['figure']:<{w}}  {r['value']:>9.3f} {r['unit']:<4} {r['goal']:>7.3g}  {r['ratio']:>6.2f}  "
              f"{'yes' if r['met'] else 'NO ':<3}  {r['detail']}")


def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quick", action="store_true", help="no 1e7-token runs and no full verify")
    p.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}, book, tests")
    p.add_argument("--repeats", type=_positive, default=3, help="runs per figure after a warm-up (default 3)")
    p.add_argument("--big-repeats", type=_positive, default=1, help="runs of the 1e7-token figures (default 1)")
    p.add_argument("--rounds", type=_positive, default=3, help="alternating rounds of compiled and reference runs of "
                   "each gradient figure (default 3)")
    args = p.parse_args()
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = set(chosen) - set(SECTIONS) - {"book", "tests"}
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}")
    ticks = cpu_ticks()
    info = machine()
    rows: list[dict] = []
    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]
    for section in chosen:
        if section == "gradient":
            rows += gradient_rows(sizes, args.repeats, args.big_repeats, args.rounds)
        elif section == "scaling":
            rows += scaling_rows(args.repeats, args.big_repeats)
        elif section == "derive":
            rows += derive_rows(args.repeats)
        elif section == "cli":
            rows += cli_rows(args.repeats, args.quick)
        elif section == "scale":
            rows += scale_rows()
        elif section == "book":
            rows += book_rows()
        elif section == "tests":
            rows += test_rows()
        print(f"[{section} done]", file=sys.stderr, flush=True)
    info["load_after"] = os.getloadavg()
    info["steal_share"] = steal_share(ticks, cpu_ticks())
    if args.json:
        print(json.dumps({"machine": info, "figures": rows}, indent=1))
    else:
        print_table(info, rows)


if __name__ == "__main__":
    main()
