"""The benchmark scripts run end to end (figures are printed, never asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_step_smoke_on_cpu():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_step.py"), "--config", "tiny", "--device", "cpu",
         "--G", "3", "--max-len", "16", "--runs", "1", "--warmup", "1", "--precision", "float32"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "overhead ratio confirmation/bare" in out.stdout
    # the instrumented step's derived gradient agrees with autograd in float32
    err = float(out.stdout.split("rel err ")[1].split(";")[0])
    assert err < 1e-5


def test_gpu_step_refuses_cuda_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_step.py"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no CUDA device" in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.slow
def test_audit_overhead_smoke():
    """The audit benchmark runs a real GRPOTrainer with and without ProofsCallback and prints its figures."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "audit_overhead.py"), "--steps", "2", "--repeats", "1"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "TRL 1.16.0 GRPOTrainer" in out.stdout and "overhead ratio audited/bare (medians):" in out.stdout
    share = float(out.stdout.split("ms = ")[1].split("%")[0])
    assert 0 < share < 100  # a figure was measured (its size is the benchmark's to report, not asserted)


def test_all_benchmarks_print_each_figure_with_goal_and_ratio():
    import json

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "all.py"), "--only", "derive", "--repeats", "1", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["machine"]["cores"] >= 1 and len(data["machine"]["load_before"]) == 3
    assert data["machine"]["torch_import_s"] > 0
    steal = data["machine"]["steal_share"]
    assert steal is None or 0 <= steal <= 1
    (fig,) = data["figures"]
    assert fig["section"] == "derive" and fig["unit"] == "s" and fig["goal"] == 3.0
    assert fig["ratio"] == fig["value"] / fig["goal"] and fig["met"] == (fig["value"] <= fig["goal"])


def _bench_all():
    """benchmarks/all.py as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_all", ROOT / "benchmarks" / "all.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_gradient_figures_alternate_compiled_and_reference_runs():
    """Each round times a warm block of one function, then of the other; the figure keeps every round's ratio."""
    bench = _bench_all()
    calls = []
    a, b, ratios = bench.alternating_times(lambda: calls.append("A"), lambda: calls.append("B"), rounds=3, repeats=2)
    assert calls == ["A"] * 3 + ["B"] * 3 + ["A"] * 3 + ["B"] * 3 + ["A"] * 3 + ["B"] * 3  # warm-up + 2 timed each
    assert len(ratios) == 3 and a > 0 and b > 0


def test_check_figures_carry_the_time_of_their_imports():
    """A check row gives its third-party imports' time beside its own; other commands' rows do not."""
    bench = _bench_all()
    bench.import_seconds = lambda code, repeats=3: 2.5 if code == bench.CHECK_IMPORTS else 0.0
    bench._command_time = lambda args, repeats, warmup=1: (4.0 if "check" in args else 1.0, 0)
    rows = {r["figure"]: r for r in bench.cli_rows(1, quick=True)}
    quick = rows["grpo-proofs check grpo --quick"]
    assert quick["imports_s"] == 2.5 and quick["detail"].endswith("the rest 1.50 s") and not quick["met"]
    assert "imports_s" not in rows["grpo-proofs --help"] and "imports" not in rows["grpo-proofs --help"]["detail"]
    assert {r["figure"] for r in rows.values() if "imports_s" in r} == {"grpo-proofs check grpo --quick",
                                                                           "grpo-proofs check grpo"}


@pytest.mark.parametrize("flag", ["--repeats", "--big-repeats", "--rounds"])
def test_all_benchmarks_refuse_a_count_below_one(flag):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "all.py"), flag, "0", "--only", "derive"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines()[-1] == f"all.py: error: argument {flag}: must be a whole number >= 1, got '0'"
