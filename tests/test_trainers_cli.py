"""``grpo-proofs trainer``: formula, Table 1 match, verdicts, the release; JSON; config files as users
have them (TRL YAML/JSON, verl Hydra YAML and overrides, OpenRLHF argument lines); one-line errors (exit 2)."""

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
    code, out, _ = run(capsys, "trainer", "--verl",
                       "policy_loss.loss_mode=gspo,adv_estimator=grpo,loss_agg_mode=seq-mean-token-mean", "--json")
    d = json.loads(out)
    assert code == 0 and d["trainer"] == "verl" and d["matches"] == ["gspo"]
    assert d["release"]["title"] == "verl 0.9.1"
    assert d["weight"] == "1/(B*L_i)"
    assert {p["label"]: p["verdict"] for p in d["propositions"]}["prefix"] == "bias"
    # verl 0.9.1: gspo follows loss_agg_mode, whose default token-mean is not GSPO's per-sequence mean
    code, out, _ = run(capsys, "trainer", "--verl", "policy_loss.loss_mode=gspo,adv_estimator=grpo", "--json")
    d = json.loads(out)
    assert d["weight"] == "1/N" and d["matches"] == [] and any("pitfall 6" in note for note in d["notes"])


def test_openrlhf_pairs_with_a_list_and_yaml_1_1_exponents(capsys):
    code, out, _ = run(capsys, "trainer", "--openrlhf", "policy_loss_type=gspo,eps_clip_low_high=[3e-4,4e-4],max_epochs=2,"
                       "rollout.batch_size=128", "--json")
    d = json.loads(out)
    assert code == 0 and d["config"]["actor.eps_clip_low_high"] == [3e-4, 4e-4]
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
    (["--trl", "loss_typ=dapo"], "unknown TRL 1.16.0 config key 'loss_typ'; the closest valid key is 'loss_type'"),
    (["--trl", "loss_type=dapo", "--release", "1.12"], "TRL 1.12 is not a supported release; supported: 1.16.0, 1.9.0"),
    (["--trl", "loss_type=dapo,version=2.0"], "TRL 2.0 is not a supported release"),
    (["--verl", "algorithm.adv_estimater=grpo actor_rollout_ref.actor.ppo_epochs=2"], "closest valid key is 'algorithm.adv_estimator'"),
    (["--openrlhf", "--actor.eps_clipp 0.2 --algo.kl.use_loss"], "has no option --actor.eps_clipp; the closest is --actor.eps_clip"),
    (["--openrlhf", "--actor.policy_loss_type ppx --algo.kl.use_loss"], "refuses the argument line"),
    (["--openrlhf", "--actor.dual_clip 0.8 --algo.kl.use_loss"], "dual_clip must be > 1.0"),
    (["--verl", "policy_loss.loss_mode=vanilla,clip_ratio_c=1.0"], "should be greater than 1.0"),
    (["--openrlhf", "--algo.advantage.estimator group_norm --actor.eps_clip 0.2"], "requires n_samples_per_prompt > 1"),
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
    f.write_text("megatron_lm:\n  lr: 1\n")
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


def test_every_output_names_the_release(capsys):
    code, out, _ = run(capsys, "trainer", "--trl", "loss_type=dapo")
    assert code == 0 and out.startswith("TRL 1.16.0 GRPOTrainer") and "release: TRL 1.16.0 (installed)" in out
    code, out, _ = run(capsys, "trainer", "--trl", "loss_type=dapo,beta=0.1", "--release", "1.9.0", "--json")
    d = json.loads(out)
    assert d["release"]["version"] == "1.9.0" and d["release"]["chosen"] == "given"
    assert d["config"]["use_bias_correction_kl"] is False and d["kl"]["estimator"] == "k3"
    code, out, _ = run(capsys, "trainer", "--trl", "loss_type=dapo,beta=0.1", "--json")
    assert json.loads(out)["kl"]["estimator"] == "k3*r"  # 1.16.0: the bias-corrected term by default


def test_trl_grpo_config_yaml_and_training_args_json(capsys, tmp_path):
    f = tmp_path / "grpo.yaml"
    f.write_text("model_name_or_path: Qwen/Qwen2-0.5B-Instruct\ndataset_name: trl-lib/tldr\nreward_funcs: [accuracy]\n"
                 "learning_rate: 1.0e-6\nloss_type: grpo\nnum_generations: 8\nenv:\n  WANDB_PROJECT: x\n")
    code, out, _ = run(capsys, "trainer", "--trl", str(f), "--json")
    d = json.loads(out)
    assert code == 0 and d["weight"] == "1/(K*L_i*b_k)" and d["given"] == ["loss_type", "num_generations"]
    assert d["ignored"] == ["dataset_name", "learning_rate", "model_name_or_path", "reward_funcs"]
    j = tmp_path / "training_args.json"
    j.write_text(json.dumps({"output_dir": "out", "learning_rate": 1e-6, "lr_scheduler_type": "linear",
                             "loss_type": "dapo", "steps_per_generation": 4, "gradient_accumulation_steps": 2,
                             "per_device_train_batch_size": 8, "num_generations": 8, "beta": 0.0,
                             "epsilon_high": None, "report_to": ["wandb"]}))
    code, out, _ = run(capsys, "trainer", "--config", str(j), "--json")
    d = json.loads(out)
    assert code == 0 and d["trainer"] == "trl" and d["weight"] == "S_g/(K*N)"
    assert "output_dir" in d["ignored"] and any("S/(K N)" in note for note in d["notes"])


def test_verl_hydra_yaml_with_interpolations_and_overrides(capsys, tmp_path):
    f = tmp_path / "ppo.yaml"
    f.write_text("defaults:\n  - ppo_trainer\n  - _self_\ndata:\n  train_batch_size: 512\n  max_response_length: 1024\n"
                 "algorithm:\n  adv_estimator: grpo\n  norm_adv_by_std_in_grpo: false\n"
                 "actor_rollout_ref:\n  rollout:\n    n: 8\n  actor:\n    ppo_mini_batch_size: 128\n"
                 "    loss_agg_mode: seq-mean-token-sum-norm\n    loss_scale_factor: ${data.max_response_length}\n"
                 "    optim:\n      lr: 1e-6\ntrainer:\n  total_epochs: 2\n")
    code, out, _ = run(capsys, "trainer", "--config", str(f), "--json")
    d = json.loads(out)
    assert code == 0 and d["config"]["loss_scale_factor"] == 1024 and d["matches"] == ["dr_grpo"] and d["mu"] == 4
    sh = tmp_path / "run.sh"
    sh.write_text("set -x\nHYDRA_FULL_ERROR=1 python3 -m verl.trainer.main_ppo \\\n  algorithm.adv_estimator=rloo \\\n"
                  "  data.train_files=$HOME/data/train.parquet \\\n  actor_rollout_ref.actor.ppo_epochs=2 \\\n"
                  "  +actor_rollout_ref.actor.fsdp_config.foo=1 $@\n")
    code, out, _ = run(capsys, "trainer", "--verl", str(sh), "--json")
    d = json.loads(out)
    assert code == 0 and d["config"]["adv_estimator"] == "rloo" and d["mu"] == 2
    assert "data.train_files" in d["ignored"]


def test_openrlhf_argument_line_and_script(capsys, tmp_path):
    sh = tmp_path / "train_grpo.sh"
    sh.write_text("#!/bin/bash\nray job submit -- python3 -m openrlhf.cli.train_ppo_ray \\\n"
                  "   --actor.model_name_or_path Qwen/Qwen3-1.7B \\\n   --algo.advantage.estimator group_norm \\\n"
                  "   --rollout.n_samples_per_prompt 8 --rollout.batch_size 128 --train.batch_size 128 \\\n"
                  "   --actor.eps_clip_low_high 0.2 0.28 --algo.kl.use_loss --algo.kl.estimator k3 \\\n"
                  "   --actor.adam.lr 5e-7   # comment\n")
    code, out, _ = run(capsys, "trainer", "--config", str(sh), "--json")
    d = json.loads(out)
    assert code == 0 and d["trainer"] == "openrlhf" and d["config"]["actor.eps_clip_low_high"] == [0.2, 0.28]
    assert d["kl"]["estimator"] == "k3" and d["kl"]["weight"] == "1/N" and d["mu"] == 8
    assert d["ignored"] == ["actor.adam.lr", "actor.model_name_or_path"]
    code, out, _ = run(capsys, "trainer", "--openrlhf", "--actor.policy_loss_type gspo --rollout.n_samples_per_prompt 4 "
                       "--algo.advantage.estimator dr_grpo", "--json")
    d = json.loads(out)
    assert code == 0 and d["weight"] == "1/(L_i*S)"


def test_undecided_default_estimator_says_which_key_decides(capsys):
    code, out, _ = run(capsys, "trainer", "--verl", "", "--json")
    d = json.loads(out)
    prefix = {p["label"]: p for p in d["propositions"]}["prefix"]
    assert prefix["verdict"] == "undecided" and "algorithm.adv_estimator decides it" in prefix["reason"]
    assert dict(map(tuple, prefix["choices"]))["grpo"] == "cancels"
