"""The command line never crashes, floods or runs away: each case through a real subprocess.

Every refusal is checked the same way: exit code 2, exactly one line on stderr naming the problem,
nothing on stdout, nothing written. Sizes far past any machine's memory are refused from an estimate
before anything is allocated (the test would be killed otherwise).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_env() -> dict[str, str]:
    """The environment a user's command runs in: offline, no display, and Python's warning filters as shipped."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    return env


def cli(*argv, timeout=300):
    env = user_env()
    proc = subprocess.run([sys.executable, "-m", "grpo_proofs.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def refused(rc, out, err, fragment):
    assert rc == 2, (rc, out[-500:], err[-2000:])
    assert out == "", out[-500:]
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err


def blocked_dir(tmp_path):
    """A folder path that cannot be created: its parent is a regular file."""
    f = tmp_path / "a_file"
    f.write_text("keep")
    return f / "plots"


# -- sizes ---------------------------------------------------------------------------------------

def test_gradient_of_two_billion_tokens_is_refused_from_the_estimate():
    rc, out, err = cli("gradient", "--variant", "grpo", "--rewards", "1,0", "--lengths", "1000000000,1000000000")
    refused(rc, out, err, "2,000,000,000 tokens need about")
    assert "GB" in err and "give shorter completions" in err


def test_prefix_of_two_billion_tokens_is_refused_from_the_estimate():
    rc, out, err = cli("prefix", "--variant", "grpo", "--rewards", "1,0", "--lengths", "1000000000,1000000000")
    refused(rc, out, err, "per-token weights of 2,000,000,000 tokens need about")


def test_per_token_json_past_its_limit_is_refused_before_any_work():
    rc, out, err = cli("gradient", "--variant", "grpo", "--rewards", "1,0", "--lengths", "5000000,5000000",
                       "--json", "--per-token")
    refused(rc, out, err, "MB limit")


def test_long_groups_are_summarised():
    rc, out, err = cli("gradient", "--variant", "dr_grpo", "--rewards", "1,0,1", "--lengths", "8000,5000,2000",
                       "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["per_token"] is False and "gradient" not in data and data["tokens"] == 15000
    s = data["gradient_summary"]
    # Dr. GRPO at s = 1: every token of completion i has coefficient A_i / G (by hand: A = 1/3, -2/3, 1/3)
    assert [x["tokens"] for x in s] == [8000, 5000, 2000]
    assert s[1]["first"] == pytest.approx(-2 / 9, rel=1e-14) and s[1]["sum"] == pytest.approx(-5000 * 2 / 9, rel=1e-12)


def test_negative_values_are_values_not_flags():
    rc, out, err = cli("gradient", "--variant", "dr_grpo", "--rewards", "-1,0,1", "--lengths", "1,1,1", "--json")
    assert rc == 0, err
    assert json.loads(out)["advantages"] == [-1.0, 0.0, 1.0]


def test_ten_thousand_completions_print_a_short_table():
    G = 10_000
    rewards = ",".join(str(i % 2) for i in range(G))
    lengths = ",".join(str(1 + i % 7) for i in range(G))
    rc, out, err = cli("gradient", "--variant", "grpo", "--rewards", rewards, "--lengths", lengths)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) <= 26 and "--top N" in out and f"{G - 20} more" in out


# -- bad values ----------------------------------------------------------------------------------

BAD_VALUES = [
    (["gradient", "--variant", "grpo", "--rewards", "1e300,0,-1e300", "--lengths", "1,2,3"], "overflow float64"),
    (["gradient", "--variant", "grpo", "--rewards", "1,0,,1", "--lengths", "1,2,3,4"], "field 3 of '1,0,,1' is empty"),
    (["gradient", "--variant", "grpo", "--rewards", "1,0", "--lengths", "1,2", "--top", "-1"], "--top"),
    (["gradient", "--variant", "grpo", "--rewards", "-1,0,1", "--lengths", "-1,2,3"], "lengths must be >= 1 token, got -1"),
    (["check", "grpo", "--symbolic", "--eps", "-1e-8"], "--eps must be in (0, 1), got '-1e-8'"),
    (["check", "grpo", "--symbolic", "--colour", "red"], "unrecognized arguments: --colour red"),
    (["check", "examples/trl_dapo.yaml", "--symbolic", "--T", "5", "--k", "4"], "past the mu = 2 optimizer steps"),
    (["check", "grpo", "--symbolic", "--mu", "1", "--T", "2"], "no overshoot step exists"),
    (["overshoot", "--k", "200000"], "--k must be in [0, 100000]"),
    (["overshoot", "--beta1", "-0.5"], "--beta1 must be in (0, 1)"),
]


@pytest.mark.parametrize("argv, fragment", BAD_VALUES)
def test_bad_values_one_line(argv, fragment):
    refused(*cli(*argv), fragment)


def test_overshoot_k_20000_neither_crashes_nor_floods():
    rc, out, err = cli("overshoot", "--k", "20000")
    assert rc == 0, err
    assert len(out.splitlines()) < 25 and "left out (--json lists every row)" in out
    assert "< 1e-308" in out          # C_(5,20000) ~ 0.92^20001 underflows float64; never printed as 0
    rc, out, _ = cli("overshoot", "--k", "20000", "--json")
    table = json.loads(out)["table"]
    assert len(table) == 20001 and table[10]["C_Tk"] > 0


# -- output folders ------------------------------------------------------------------------------

#: commands that write into a folder; the folder is the last argument
WRITERS = [
    ["scale", "--variant", "grpo", "--phi", "10", "--plot"],
    ["prefix", "--train", "--plot"],
    ["overshoot", "--simulate", "--plot"],
    ["check", "grpo", "--symbolic", "--report"],
]


@pytest.mark.parametrize("argv", WRITERS)
def test_uncreatable_output_folder_is_refused_up_front(tmp_path, argv):
    target = blocked_dir(tmp_path)
    refused(*cli(*argv, str(target)), "cannot be created there")
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_refusals_come_before_torch_is_imported(tmp_path):
    """The refusals above are answered before torch, transformers or matplotlib is imported: one process
    runs them in turn and lists those libraries after each, trainer configs' refusals included (reading a
    config imports no torch; computing a trainer's loss does)."""
    huge = ["--variant", "grpo", "--rewards", "1,0", "--lengths", "1000000000,1000000000"]
    target = str(blocked_dir(tmp_path))
    cases = ([["gradient", *huge], ["prefix", *huge],
              ["gradient", "--variant", "grpo", "--rewards", "1,0", "--lengths", "5000000,5000000", "--json",
               "--per-token"]]
             + [argv for argv, _ in BAD_VALUES]
             + [["trainer", "--trl", "loss_type=bogus"], ["trainer", "--verl", "algorithm.adv_estimator=nope"],
                ["scale", "--variant", "grpo", "--phi", "0"], ["scale", "--variant", "grpo", "--phi", "10", "--eps", "0"],
                ["overshoot", "--simulate", "--optimizer", "bogus"], ["overshoot", "--simulate", "--mitigation", "x"],
                ["prefix", "--variant", "grpo", "--rewards", "1,0", "--lengths", "2,3", "--shared", "7"],
                ["prefix", "--variant", "grpo", "--rewards", "1,0", "--lengths", "2,3", "--ratio", "0"],
                ["prefix", "--variant", "gspo", "--rewards", "1,0", "--lengths", "2,3", "--sequence-ratios", "1,-2"]]
             + [[*argv, target] for argv in WRITERS])
    code = ("import json, sys\n"
            "from grpo_proofs.cli import main\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    rc = main(argv)\n"
            "    print(json.dumps([argv, rc, [m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules]]))\n")
    env = user_env()
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [argv for argv, _, _ in seen] == cases
    for argv, rc, heavy in seen:
        assert rc == 2 and heavy == [], (argv, rc, heavy)
    assert proc.stderr.count("\n") == len(cases)                    # one line each


def test_report_folder_with_files_needs_force(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "stale.png").write_text("an earlier run")
    rc, out, err = cli("check", "grpo", "--symbolic", "--report", str(report))
    refused(rc, out, err, "already holds files (stale.png)")
    assert os.listdir(report) == ["stale.png"]
    rc, out, err = cli("check", "grpo", "--symbolic", "--report", str(report), "--force")
    assert rc == 0, err
    assert sorted(os.listdir(report)) == ["check.json", "summary.md"]     # replaced whole: no stale file


def test_results_are_printed_when_the_report_cannot_be_written(capsys, tmp_path, monkeypatch):
    import grpo_proofs.check.report as report
    from grpo_proofs.cli import main

    def fail(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "r"))

    monkeypatch.setattr(report, "write_report", fail)
    rc = main(["check", "dr_grpo", "--symbolic", "--report", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert rc == 2 and "Shared prefix (Prop. 1)" in out            # the card is printed
    assert err.count("\n") == 1 and "could not write the report folder" in err and "No space left" in err
    assert not (tmp_path / "r").exists()


# -- verify --------------------------------------------------------------------------------------

def test_verify_list_json_and_width():
    rc, out, _ = cli("verify", "--list", "--json")
    rows = json.loads(out)
    assert rc == 0 and rows[0]["label"] == "eq15-gradient" and {"title", "page", "kind", "statement"} <= set(rows[0])
    rc, out, _ = cli("verify", "--list")
    assert rc == 0 and max(len(line) for line in out.splitlines()) <= 120


def test_verify_streams_fits_120_columns_and_shows_titles():
    rc, out, err = cli("verify", "--only", "eq15-gradient,prop1-prefix-coefficient", "--quick", "--jobs", "1")
    assert rc == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert lines[1].startswith("eq15-gradient") and "Gradient of the unified surrogate" in lines[1]
    assert lines[-1].startswith("2 passed, 0 failed")


@pytest.mark.slow
def test_verify_ctrl_c_keeps_what_passed():
    env = user_env()
    # Ctrl-C in a terminal: the child starts with SIGINT at its default action, however this suite was started
    # (a shell starts background jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen([sys.executable, "-m", "grpo_proofs.cli", "verify", "--quick", "--jobs", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    head = [proc.stdout.readline(), proc.stdout.readline()]      # the header and the first claim
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert head[1].startswith("eq15-gradient") and " PASS " in head[1]
    assert "not run (interrupted)" in rest
    assert err.count("\n") == 1 and "interrupted after" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 2], ids=["while-the-workers-start", "while-claims-run"])
def test_verify_ctrl_c_to_the_terminal_stops_the_workers_without_a_traceback(after, running_in_group):
    """Ctrl-C typed in a terminal reaches every process of the run (parent, fork server, workers): the
    parent alone answers it, whether it comes while the workers are being started (after the header) or
    while claims run (after the first claim), and no process of the run is left behind."""
    env = user_env()
    proc = subprocess.Popen([sys.executable, "-m", "grpo_proofs.cli", "verify", "--quick", "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            start_new_session=True,         # its own process group, as a terminal's job
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    head = [proc.stdout.readline() for _ in range(after)]
    os.killpg(proc.pid, signal.SIGINT)
    try:
        rest, err = proc.communicate(timeout=120)    # returns once every process holding the pipes has ended
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)          # a run that hangs is not left behind by its test
        proc.communicate()
        pytest.fail("verify did not stop within 120 s of the Ctrl-C")
    assert proc.returncode == 130, err[-2000:]
    assert head[0].startswith("claim ") and all(" PASS " in line for line in head[1:])
    assert "not run (interrupted)" in rest
    assert err.count("\n") == 1 and "interrupted after" in err and "Traceback" not in err, err[-2000:]
    assert running_in_group(proc.pid) == []       # nothing of the run is left (ended processes may await reaping)


def test_running_in_group_sees_a_process_that_stays_and_not_one_that_ended(running_in_group):
    """The check above can fail: a process of the group still running after the grace is reported."""
    with subprocess.Popen(["sleep", "60"], start_new_session=True) as proc:
        try:
            staying = running_in_group(proc.pid, grace=0.5)
        finally:
            proc.kill()
        ended = running_in_group(proc.pid)          # killed, not yet reaped: a zombie counts as ended
    assert len(staying) == 1 and ended == []


def test_a_reader_that_stops_early_gets_no_traceback():
    G = 20_000
    env = user_env()
    proc = subprocess.Popen([sys.executable, "-m", "grpo_proofs.cli", "gradient", "--variant", "grpo", "--top", "0",
                             "--rewards", ",".join(str(i % 2) for i in range(G)), "--lengths", ",".join(["3"] * G)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    with proc:
        first = proc.stdout.readline()                           # like `| head -1`
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=120)
    assert first.startswith("variant grpo") and "Traceback" not in err and err == ""
    assert proc.returncode == 141



def test_the_names_checked_before_torch_are_the_runs_own():
    """The optimizer and mitigation names a command checks before importing torch are those its runs take."""
    from grpo_proofs.props.overshoot import model as overshoot
    from grpo_proofs.props.reward_scale import model as reward_scale
    from grpo_proofs.runtime.choices import MITIGATIONS, OVERSHOOT_OPTIMIZERS, SCALE_OPTIMIZERS

    assert tuple(reward_scale.OPTIMIZERS) == SCALE_OPTIMIZERS
    assert {name for name, _ in overshoot.ROWS} == set(OVERSHOOT_OPTIMIZERS)
    assert {m for _, m in overshoot.ROWS} == set(MITIGATIONS)
