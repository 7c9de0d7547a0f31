"""``grpo-proofs check`` on the three shipped examples, and its refusals (exit 2, nothing written).

Expected verdict values are derived here by hand from the paper (worked example, C_(T,k) formula),
never copied from the command's output.
"""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from grpo_proofs.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
PNG = b"\x89PNG\r\n\x1a\n"


def run_check(capsys, *argv):
    rc = main(["check", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def C_Tk(T, k, b1, b2):
    """C_{T,k} of the paper (App. D), typed from the text."""
    return (b1 ** (k + 1) * (1 - b1 ** (T - 1)) / (1 - b1 ** (T + k))
            * math.sqrt((1 - b2 ** (T + k)) / (b2 ** (k + 1) * (1 - b2 ** (T - 1)))))


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Each example checked once (quick mode, real policy), report written."""
    out = {}
    base = tmp_path_factory.mktemp("reports")
    cases = {"python": ["--variant-file", os.path.join(EXAMPLES, "length_aware.py") + ":LENGTH_AWARE"],
             "yaml": [os.path.join(EXAMPLES, "token_mean.yaml")],
             "trainer": [os.path.join(EXAMPLES, "trl_dapo.yaml")]}
    import contextlib
    import io
    for name, args in cases.items():
        folder = base / name
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["check", *args, "--quick", "--json", "--report", str(folder)])
        out[name] = (rc, json.loads(buf.getvalue()), folder)
    return out


@pytest.mark.parametrize("name", ["python", "yaml", "trainer"])
def test_example_runs_and_every_confirmation_holds(reports, name):
    rc, payload, folder = reports[name]
    assert rc == 0
    assert payload["passed"] is True and payload["failed"] == []
    confirmations = payload["confirmations"]
    assert {c["name"] for c in confirmations} >= {"prefix", "prefix_cases", "loss", "reward_scale", "grad_clip",
                                                 "overshoot_premise", "trajectories", "C_Tk"}
    for c in confirmations:  # every row is a comparison: a finite error within a stated tolerance
        assert c["passed"] is True and math.isfinite(c["error"]) and c["error"] <= c["tolerance"], c
    files = sorted(os.listdir(folder))
    assert files == sorted(["check.json", "summary.md", "prefix_gradient.png", "reward_scale_step_ratio.png",
                            "ratio_trajectories.png"])
    for f in files:
        if f.endswith(".png"):
            with open(folder / f, "rb") as fh:
                assert fh.read(8) == PNG
    with open(folder / "check.json") as fh:
        assert json.load(fh)["verdicts"] == payload["verdicts"]
    assert "## Shared prefix (Prop. 1)" in (folder / "summary.md").read_text()


def test_full_check_of_grpo_holds(capsys):
    """The default (full) check: the larger model, four reward scales, three AdamW steps; every coordinate
    compared is resolved to the optimizer tolerance, so rounding of barely-resolved gradients cannot fail it."""
    rc, out, _ = run_check(capsys, "grpo", "--json")
    payload = json.loads(out)
    assert rc == 0 and payload["passed"] is True, payload["failed"]
    rows = {c["name"]: c for c in payload["confirmations"]}
    assert rows["reward_scale"]["error"] <= rows["reward_scale"]["tolerance"] / 10
    assert "3 AdamW steps" in rows["reward_scale"]["detail"]


def test_length_aware_verdicts(reports):
    _, p, _ = reports["python"]
    v = p["verdicts"]
    # worked example by hand: A = +-1/2, sigma_pop = 1/2, G = 4: W = sum_i A_i / (G sqrt(L_i) sigma)
    A, L = [0.5, -0.5, -0.5, 0.5], [10, 30, 20, 40]
    W = sum(a / (4 * math.sqrt(l) * 0.5) for a, l in zip(A, L))
    assert abs(v["prefix"]["worked"]["value"] - W) < 1e-15 and W > 0
    assert v["prefix"]["cancels"] is False
    assert v["loss"]["regime"] == "covariance"          # Omega_i = sqrt(L_i)/(G sigma)
    assert v["reward_scale"]["verdict"] == "invariant"   # 1/sigma in the weight
    assert v["overshoot"]["exposed"] is True
    # --quick without a spec mu: mu = 6 inner steps; the default covers every reachable step, T = 2, k = mu - 2
    assert (v["overshoot"]["T"], v["overshoot"]["k"], v["overshoot"]["mu"]) == (2, 4, 6)
    assert abs(v["overshoot"]["C_Tk"] - C_Tk(2, 4, 0.9, 0.999)) < 1e-12
    assert v["equivalence"]["matches"] == []             # no Table 1 weight goes like 1/sqrt(L_i)


def test_token_mean_is_dapo(reports):
    _, p, _ = reports["yaml"]
    v = p["verdicts"]
    assert [(m["name"], m["factor"]) for m in v["equivalence"]["matches"]] == [("dapo", "1")]
    assert v["prefix"]["cancels"] is True and v["prefix"]["worked"]["value"] == 0.0
    assert v["loss"]["regime"] == "length"               # Omega_i = L_i / (sigma L_sum)
    assert p["options"]["mu"] == 4 and p["options"]["sigma"] == "sample"


def test_trl_config_is_mapped(reports):
    _, p, _ = reports["trainer"]
    v = p["verdicts"]
    assert p["origin"] == "trainer" and p["mu"] == 2
    assert (p["options"]["beta1"], p["options"]["beta2"]) == (0.9, 0.99)
    # mu = 2: the gradient can vanish at inner step 2 only, so C_(2,0) is the one reachable overshoot number
    assert [r["k"] for r in v["overshoot"]["table"]] == [0] and v["overshoot"]["T"] == 2
    assert abs(v["overshoot"]["C_Tk"] - C_Tk(2, 0, 0.9, 0.99)) < 1e-12
    assert abs(v["overshoot"]["total_drift"] - C_Tk(2, 0, 0.9, 0.99)) < 1e-12
    assert v["reward_scale"]["verdict"] == "invariant up to the sigma constant"   # TRL: std + 1e-4
    assert [t["verdict"] for t in p["trainer_verdicts"]] == ["cancels", "invariant", "exposed"]


def test_table_output_and_symbolic_mode(capsys):
    rc, out, _ = run_check(capsys, "grpo", "--symbolic")
    assert rc == 0
    assert "W = 1/96 = 0.0104167" in out and "DOES NOT CANCEL" in out
    assert "Numerical confirmation" not in out


def test_callable_variant_and_toml(capsys, tmp_path):
    rc, out, _ = run_check(capsys, "--variant-file", os.path.join(EXAMPLES, "length_aware.py") + ":make_variant",
                           "--symbolic", "--json")
    assert rc == 0 and json.loads(out)["variant"]["name"] == "length_aware"
    spec = tmp_path / "drg.toml"
    spec.write_text('alpha = "1/(G*L_max)"\nratio = "token"\nclip = 0.2\nadvantage = "centered"\n')
    rc, out, _ = run_check(capsys, str(spec), "--symbolic", "--json")
    eq = json.loads(out)["verdicts"]["equivalence"]["matches"]
    assert rc == 0 and [(m["name"], m["factor"]) for m in eq] == [("dr_grpo", "1/L_max")]


def test_failed_confirmation_exits_1_and_still_reports(capsys, tmp_path, monkeypatch):
    import grpo_proofs.check.confirm as confirm

    def fake(spec, verdicts, opts, progress=None):
        return [confirm.Confirmation("prefix", "t", "p", 1.0, 0.0)]

    monkeypatch.setattr(confirm, "run_all", fake)
    rc, out, _ = run_check(capsys, "dr_grpo", "--report", str(tmp_path / "r"))
    assert rc == 1 and "FAIL" in out
    assert json.loads((tmp_path / "r" / "check.json").read_text())["failed"] == ["prefix"]


SPEC_OK = 'alpha: "1/(G*L_i*sigma)"\nratio: token\nclip: [0.2, 0.28]\nadvantage: std-sample\n'


@pytest.mark.parametrize("content, fragment", [
    ('alpha: "1/(G*Q)"\nratio: token\nclip: 0.2\nadvantage: centered\n', "unknown symbol 'Q'"),
    ('alpha: "pi_theta/G"\nratio: token\nclip: 0.2\nadvantage: centered\n', "must not depend on theta"),
    ('alpha: "1/G"\nratio: token\nadvantage: centered\n', "missing the field 'clip'"),
    ('alpha: "1/G"\nratio: tokn\nclip: 0.2\nadvantage: centered\n', "ratio must be one of"),
    ('alpha: "1/G"\nratio: token\nclip: 0.2\nadvantage: std-pop\n', "must contain 1/sigma"),
    ('alpha: "1/G"\nratio: token\nclip: [0.2]\nadvantage: centered\n', "clip must be"),
    ('alpha: "1/G"\nratio: token\nclip: 0.2\nadvantage: centered\nbeta: 0.1\n', "regularizer is none"),
    ('alpha: "1/G"\nratio: token\nclip: 0.2\nadvantage: centered\ncolour: red\n', "unknown field"),
    ('alpha: "0*G"\nratio: token\nclip: 0.2\nadvantage: centered\n', "identically zero"),
    ("alpha: [unclosed\n", "not valid YAML"),
    ("", "is empty"),
    ("trl:\n  loss_typo: dapo\n", "loss_typo"),
    ("trl: {}\nalpha: '1/G'\n", "exactly one top-level key"),
])
def test_bad_spec_exit_2_nothing_written(capsys, tmp_path, content, fragment):
    spec = tmp_path / "spec.yaml"
    spec.write_text(content)
    report = tmp_path / "report"
    rc, out, err = run_check(capsys, str(spec), "--report", str(report), "--quick")
    assert rc == 2 and out == ""
    assert fragment in err and err.count("\n") == 1, err
    assert not report.exists()


def test_malicious_formula_in_a_spec_runs_nothing(capsys, tmp_path):
    target = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"alpha: \"__import__('os').system('touch {target}')\"\nratio: token\nclip: 0.2\n"
                    "advantage: centered\n")
    rc, _, err = run_check(capsys, str(spec), "--symbolic")
    assert rc == 2 and "not allowed" in err and not target.exists()


@pytest.mark.parametrize("argv, fragment", [
    (["nope.yaml"], "does not exist"),
    (["not_a_method"], "neither a registry variant"),
    (["--variant-file", "missing.py:V"], "does not exist"),
    (["--variant-file", os.path.join(EXAMPLES, "length_aware.py") + ":Nope"], "defines no 'Nope'"),
    (["--variant-file", os.path.join(EXAMPLES, "length_aware.py")], "FILE.py:NAME"),
    (["grpo", "--variant-file", os.path.join(EXAMPLES, "length_aware.py") + ":LENGTH_AWARE"], "name one variant"),
    ([], "name one variant"),
    (["grpo", "--beta1", "1.5"], "--beta1"),
    (["grpo", "--T", "1"], "--T"),
    (["grpo", "--mu", "0"], "--mu"),
])
def test_bad_arguments_exit_2(capsys, tmp_path, argv, fragment):
    report = tmp_path / "report"
    rc, out, err = run_check(capsys, *argv, "--report", str(report))
    assert rc == 2 and fragment in err and err.count("\n") == 1, err
    assert not report.exists()


def test_python_file_that_raises(capsys, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("X = 1 / 0\n")
    rc, _, err = run_check(capsys, "--variant-file", f"{bad}:X")
    assert rc == 2 and "raised ZeroDivisionError" in err
    notv = tmp_path / "notv.py"
    notv.write_text("X = 3\n")
    rc, _, err = run_check(capsys, "--variant-file", f"{notv}:X")
    assert rc == 2 and "must be a Variant" in err


def test_report_path_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "taken"
    f.write_text("keep me")
    rc, _, err = run_check(capsys, "grpo", "--report", str(f), "--symbolic")
    assert rc == 2 and "not a folder" in err and f.read_text() == "keep me"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_refused_without_cuda(capsys, tmp_path):
    rc, _, err = run_check(capsys, "grpo", "--device", "cuda", "--report", str(tmp_path / "r"))
    assert rc == 2 and "CUDA" in err and not (tmp_path / "r").exists()


@pytest.mark.gpu
def test_cuda_quick_check(capsys, tmp_path):
    rc, out, _ = run_check(capsys, "dr_grpo", "--device", "cuda", "--quick", "--json")
    assert rc == 0 and json.loads(out)["passed"] is True


# -- the symbolic verdicts against the paper, method by method ----------------------------------

@pytest.mark.parametrize("name, cancels, W, regime, scale, exposed", [
    # Worked example of the prefix page: GRPO (pop std) W = +1/96; Dr. GRPO and DAPO W = 0
    ("grpo", False, "1/96", "zero", "invariant", True),
    ("dr_grpo", True, "0", "length", "invariant up to eps", True),
    ("dapo", True, "0", "length", "invariant", True),
    # centered with beta = 0.04 (iw-k3): scale is an inverse KL coefficient (Sec. 5)
    ("grpo_v32", False, None, "zero", "not invariant", True),
    # GPG and CISPO have no zero-gradient region (Sec. 6); their J is a log-likelihood
    ("gpg", True, "0", "log-likelihood", "invariant up to eps", False),
    ("cispo", True, "0", "log-likelihood", "invariant", False),
    # GCPO: a sequence-product ratio makes omega_i = |o_i| alpha even at s = 1 (Sec. 3)
    ("gcpo", False, None, "length", "invariant", True),
])
def test_registry_verdicts_follow_theory(name, cancels, W, regime, scale, exposed):
    from grpo_proofs.check.verdict import derive

    d = derive(name)
    assert d.prefix["cancels"] is cancels
    if W is not None:
        assert d.prefix["worked"]["exact"] == W
    assert d.loss["regime"] == regime
    assert d.reward_scale["verdict"] == scale
    assert d.overshoot["exposed"] is exposed
    assert [m["name"] for m in d.equivalence["matches"]][:1] == [name] or name in [m["name"] for m in d.equivalence["matches"]]


def test_cppo_without_pruning_is_grpo():
    """gamma = 0 keeps every completion with A_i != 0 (the others contribute A_i omega_i = 0 anyway)."""
    from grpo_proofs.check.verdict import equivalents

    assert "cppo" in [m["name"] for m in equivalents("grpo")["matches"]]


def test_claim_check_equivalence_registry():
    from grpo_proofs.checking import run_claim

    o = run_claim("check-equivalence-registry")
    assert o.passed, o.detail
