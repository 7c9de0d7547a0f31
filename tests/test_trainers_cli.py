"""``grpo-proofs trainer``: formula, Table 1 match, verdicts; JSON; YAML configs; one-line errors (exit 2)."""

import json

import pytest

from grpo_proofs.cli import main
from grpo_proofs.cli.trainer import parse_pairs


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_trl_table(capsys):
    code, out, err = run(capsys, "trainer", "--trl", "loss_type=dapo,epsilon_high=0.28,num_iterations=4")
    assert code == 0 and err == ""
    assert "omega_i,t = 1/N" in out and "generation batch" in out
    assert "Table 1 method" in out and "dapo" in out
    assert "CANCELS" in out and "INVARIANT" in out and "EXPOSED" in out and "mu = 4" in out


def test_verl_json(capsys):
    code, out, _ = run(capsys, "trainer", "--verl", "policy_loss.loss_mode=gspo,adv_estimator=grpo,loss_agg_mode=token-mean",
                       "--json")
    d = json.loads(out)
    assert code == 0 and d["trainer"] == "verl" and d["matches"] == ["gspo"]
    assert d["weight"] == "1/(B*(L_i + 1e-8))"
    assert {p["label"]: p["verdict"] for p in d["propositions"]}["prefix"] == "bias"
    assert any("pitfall 6" in note for note in d["notes"])


def test_openrlhf_pairs_with_a_list_and_yaml_1_1_exponents(capsys):
    code, out, _ = run(capsys, "trainer", "--openrlhf", "policy_loss_type=gspo,eps_clip_low_high=[3e-4,4e-4],max_epochs=2",
                       "--json")
    d = json.loads(out)
    assert code == 0 and d["config"]["eps_clip_low_high"] == [3e-4, 4e-4]
    assert {p["label"]: p["verdict"] for p in d["propositions"]}["overshoot"] == "exposed"


def test_no_match_is_said(capsys):
    code, out, _ = run(capsys, "trainer", "--trl", "loss_type=sapo")
    assert code == 0 and "Table 1 method" in out and "none" in out


def test_config_file(capsys, tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("verl:\n  actor_rollout_ref:\n    actor:\n      loss_agg_mode: seq-mean-token-sum-norm\n"
                 "      loss_scale_factor: 4096\n  algorithm:\n    adv_estimator: grpo\n    norm_adv_by_std_in_grpo: false\n")
    code, out, _ = run(capsys, "trainer", "--config", str(f), "--json")
    d = json.loads(out)
    assert code == 0 and d["matches"] == ["dr_grpo"] and d["weight"] == "1/(B*C)"


def test_defaults_with_a_bare_flag(capsys):
    code, out, _ = run(capsys, "trainer", "--trl")
    assert code == 0 and "all defaults" in out and "pitfall 2" in out


@pytest.mark.parametrize("argv,match", [
    (["--trl", "loss_typ=dapo"], "unknown TRL config key 'loss_typ'"),
    (["--trl", "epsilon=abc"], "epsilon must be a number"),
    (["--trl", "loss_type"], "expected key=value"),
    (["--verl", "clip_ratio_c=[1,"], "unbalanced brackets"),
    (["--trl", "epsilon=0.1,epsilon=0.2"], "given twice"),
    (["--config", "/nonexistent/run.yaml"], "cannot read"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, match):
    code, out, err = run(capsys, "trainer", *argv)
    assert code == 2 and out == ""
    assert match in err and err.count("\n") == 1


def test_bad_config_files(capsys, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("deepspeed:\n  lr: 1\n")
    code, _, err = run(capsys, "trainer", "--config", str(f))
    assert code == 2 and "trl, verl or openrlhf" in err
    f.write_text("trl: [1, 2\n")
    code, _, err = run(capsys, "trainer", "--config", str(f))
    assert code == 2 and "not valid YAML" in err and err.count("\n") == 1


def test_parse_pairs_reads_yaml_scalars_only_on_values():
    d = parse_pairs("a=1,b=true,c=null,d=seq-mean-token-mean,e=[0.2, 0.28],f=3e-4")
    assert d == {"a": 1, "b": True, "c": None, "d": "seq-mean-token-mean", "e": [0.2, 0.28], "f": 3e-4}


def test_unsafe_yaml_tags_are_refused():
    from grpo_proofs.errors import InputError

    with pytest.raises(InputError):
        parse_pairs("a=!!python/object/apply:os.system [echo]")


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["trainer", "--help"])
    assert e.value.code == 0 and "--openrlhf" in capsys.readouterr().out
