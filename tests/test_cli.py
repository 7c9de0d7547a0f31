"""The command line: tables, JSON, exit codes, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from grpo_proofs.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_variants_table_and_json(capsys):
    code, out, _ = run(capsys, "variants")
    assert code == 0 and "gspo" in out and "sequence-geomean" in out
    code, out, _ = run(capsys, "variants", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows][:3] == ["grpo", "grpo_v32", "gspo"]


def test_gradient_json_matches_worked_example(capsys):
    code, out, _ = run(capsys, "gradient", "--variant", "grpo", "--rewards", "1,0,0,1", "--lengths", "10,30,20,40", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["advantages"] == [0.5, -0.5, -0.5, 0.5]
    # 1/96 by hand: 1/40 - 1/120 - 1/80 + 1/160
    assert sum(g[0] for g in data["gradient"]) == pytest.approx(1 / 96, rel=1e-14)


def test_gradient_table(capsys):
    code, out, _ = run(capsys, "gradient", "--variant", "dapo", "--rewards", "1,0", "--lengths", "2,3",
                       "--log-ratios", "0.1;0,0,0.5", "--sigma", "sample")
    assert code == 0 and "sum over the group" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["gradient", "--variant", "nope", "--rewards", "1,0", "--lengths", "1,2"], "unknown variant"),
        (["gradient", "--variant", "grpo", "--rewards", "1", "--lengths", "1"], "G >= 2"),
        (["gradient", "--variant", "grpo", "--rewards", "1,x", "--lengths", "1,2"], "comma-separated numbers"),
        (["gradient", "--variant", "grpo", "--rewards", "1,1", "--lengths", "1,2"], "all rewards are equal"),
        (["gradient", "--variant", "grpo", "--rewards", "1,0", "--lengths", "1,0"], ">= 1 token"),
        (["gradient", "--variant", "grpo", "--rewards", "1,nan", "--lengths", "1,2"], "NaN"),
        (["verify", "--only", "no-such-claim"], "unknown claim"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_verify_only_and_list(capsys):
    code, out, _ = run(capsys, "verify", "--list")
    assert code == 0 and "eq15-gradient" in out
    code, out, _ = run(capsys, "verify", "--only", "eq15-gradient", "--quick", "--json")
    data = json.loads(out)
    assert code == 0 and data["passed"] and data["claims"][0]["label"] == "eq15-gradient"


def test_verify_jobs_gives_the_sequential_outcomes_in_registry_order(capsys):
    """Two worker processes run the same claims as this process does, and --json lists them in the
    registry's order whatever order they finished in."""
    only = "prop5-advantage-scaling,prop6-moment-scaling,prop2-shift-invariance"
    runs = {}
    for jobs in ("1", "2"):
        code, out, _ = run(capsys, "verify", "--only", only, "--quick", "--json", "--jobs", jobs)
        runs[jobs] = (code, json.loads(out))
    (c1, one), (c2, two) = runs["1"], runs["2"]
    assert c1 == c2 == 0 and len(one["claims"]) == 3
    assert one["processes"] == 1 and two["processes"] == 2
    assert [c["label"] for c in two["claims"]] == [c["label"] for c in one["claims"]]
    assert [(c["error"], c["compared"], c["passed"]) for c in two["claims"]] == \
        [(c["error"], c["compared"], c["passed"]) for c in one["claims"]]


def test_verify_uses_one_worker_per_core_by_default_on_the_cpu(capsys):
    cores = len(os.sched_getaffinity(0))
    code, out, _ = run(capsys, "verify", "--only", "prop5-advantage-scaling,prop6-moment-scaling", "--quick", "--json")
    data = json.loads(out)
    assert code == 0 and data["passed"] and data["processes"] == min(cores, 2)


def test_verify_negative_jobs_exit_2(capsys):
    code, out, err = run(capsys, "verify", "--jobs", "-1")
    assert code == 2 and "--jobs" in err and err.count("\n") == 1 and out == ""


def test_console_script_installed():
    exe = subprocess.run([sys.executable, "-m", "grpo_proofs.cli", "--help"], capture_output=True, text=True)
    assert exe.returncode == 0 and "verify" in exe.stdout


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["check", "grpo", "--quick", "--json"],
    ["verify", "--only", "prop1-real-model", "--quick", "--json"],
])
def test_no_library_warning_reaches_the_user(argv):
    """A command that runs the real transformer prints its JSON and nothing else: no library noise."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run([sys.executable, "-m", "grpo_proofs.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == "", f"stderr is not empty: {proc.stderr[:500]}"
    json.loads(proc.stdout)
    assert "warning" not in proc.stdout.lower()
