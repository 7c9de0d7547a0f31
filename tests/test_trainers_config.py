"""Config keys and inputs: the release's defaults, aliases, versions, and one clear InputError per mistake."""

import numpy as np
import pytest

from grpo_proofs.errors import InputError
from grpo_proofs.trainers import effective_config, loss_and_grad

MASK = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
KW = dict(logp=np.zeros((2, 3)), old_logp=np.zeros((2, 3)), advantages=[1.0, -1.0], mask=MASK)


@pytest.mark.parametrize("trainer,key,value", [
    ("trl", "loss_type", "dapo"), ("trl", "epsilon", 0.2), ("trl", "epsilon_high", None), ("trl", "beta", 0.0),
    ("trl", "importance_sampling_level", "token"), ("trl", "scale_rewards", "group"), ("trl", "num_iterations", 1),
    ("trl", "max_completion_length", 512), ("trl", "sapo_temperature_neg", 1.05), ("trl", "use_bias_correction_kl", True),
    ("trl", "num_generations", 8),
    ("verl", "clip_ratio_low", 0.2), ("verl", "clip_ratio_high", 0.2), ("verl", "clip_ratio_c", 3.0),
    ("verl", "loss_agg_mode", "token-mean"), ("verl", "loss_scale_factor", None), ("verl", "kl_loss_type", "low_var_kl"),
    ("verl", "kl_loss_coef", 0.001), ("verl", "policy_loss.loss_mode", "vanilla"), ("verl", "adv_estimator", "gae"),
    ("verl", "norm_adv_by_std_in_grpo", True), ("verl", "tau_neg", 1.05),
    ("verl", "policy_loss.ppo_kl_coef", 0.1),
    ("openrlhf", "actor.policy_loss_type", "ppo"), ("openrlhf", "actor.eps_clip", 0.2), ("openrlhf", "actor.dual_clip", None),
    ("openrlhf", "algo.kl.estimator", "k1"), ("openrlhf", "algo.kl.init_coef", 0.01), ("openrlhf", "algo.kl.use_loss", False),
    ("openrlhf", "actor.loss_agg_mode", "token-mean"), ("openrlhf", "rollout.batch_size", 1024),
    ("openrlhf", "train.batch_size", 128), ("openrlhf", "reward.clip_range", [-10.0, 10.0]),
])
def test_defaults_are_the_trainers(trainer, key, value):
    assert effective_config(trainer, {})[key] == value


def test_defaults_follow_the_release():
    assert effective_config("trl", {}, "1.9.0")["use_bias_correction_kl"] is False
    assert effective_config("trl", {"version": "1.9.0"})["_release"].version == "1.9.0"
    assert effective_config("trl", {"trl_version": "1.16"})["_release"].version == "1.16.0"
    with pytest.raises(InputError, match="supported: 1.16.0, 1.9.0") as e:
        effective_config("trl", {}, "1.10.0")
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="given twice"):
        effective_config("trl", {"version": "1.9.0"}, "1.16.0")
    with pytest.raises(InputError, match="another trainer"):
        effective_config("verl", {"trl_version": "1.16.0"})


@pytest.mark.parametrize("trainer,key,closest", [
    ("trl", "learnin_rate", "learning_rate"), ("trl", "loss_typ", "loss_type"),
    ("verl", "clip_ratio_lo", "clip_ratio_low"), ("verl", "algorithm.adv_estimater", "algorithm.adv_estimator"),
    ("openrlhf", "actor.eps_clipp", "actor.eps_clip"), ("openrlhf", "algo.kl.use_los", "algo.kl.use_loss"),
])
def test_unknown_key_names_it_and_the_closest_valid_one(trainer, key, closest):
    with pytest.raises(InputError) as e:
        effective_config(trainer, {key: 1})
    msg = str(e.value)
    assert f"{key!r}" in msg and f"the closest valid key is {closest!r}" in msg and "\n" not in msg


@pytest.mark.parametrize("trainer,key", [
    ("trl", "learning_rate"), ("trl", "output_dir"), ("trl", "model_name_or_path"), ("trl", "deepspeed.zero_optimization"),
    ("verl", "actor_rollout_ref.actor.optim.lr"), ("verl", "trainer.total_epochs"), ("verl", "optim.lr"),
    ("verl", "data.train_files"), ("openrlhf", "actor.adam.lr"), ("openrlhf", "ckpt.path"),
])
def test_options_the_loss_does_not_read_are_accepted_and_listed(trainer, key):
    c = effective_config(trainer, {key: 1})
    assert c["_ignored"] == (key,) and key not in c["_given"]


def test_verl_nested_dotted_and_hydra_paths_are_the_same_key():
    a = effective_config("verl", {"policy_loss": {"loss_mode": "gspo"}})
    b = effective_config("verl", {"policy_loss.loss_mode": "gspo"})
    c = effective_config("verl", {"actor_rollout_ref": {"actor": {"policy_loss": {"loss_mode": "gspo"}}}})
    d = effective_config("verl", {"algorithm": {"adv_estimator": "rloo"}, "data.train_batch_size": 512})
    assert a["policy_loss.loss_mode"] == b["policy_loss.loss_mode"] == c["policy_loss.loss_mode"] == "gspo"
    assert d["adv_estimator"] == "rloo" and d["train_batch_size"] == 512
    with pytest.raises(InputError, match="twice"):
        effective_config("verl", {"clip_ratio_c": 2.0, "actor.clip_ratio_c": 3.0})


def test_openrlhf_option_names_and_the_earlier_flat_names():
    c = effective_config("openrlhf", {"actor.policy_loss_type": "gspo", "algo.kl.estimator": "k3", "algo.kl.use_loss": True})
    d = effective_config("openrlhf", {"policy_loss_type": "gspo", "kl_estimator": "k3", "use_kl_loss": True})
    for x in (c, d):
        assert (x["actor.policy_loss_type"], x["algo.kl.estimator"], x["algo.kl.use_loss"]) == ("gspo", "k3", True)


@pytest.mark.parametrize("trainer,cfg,match", [
    ("trl", {"loss_type": "ppo"}, "loss_type must be one of"),
    ("trl", {"epsilon": -0.1}, "epsilon must be > 0"),
    ("trl", {"epsilon": True}, "epsilon must be a number"),
    ("trl", {"num_iterations": 1.5}, "whole number"),
    ("trl", {"top_entropy_quantile": 0.2}, "not modelled"),
    ("trl", {"use_vllm": True}, "not modelled"),
    ("verl", {"clip_ratio_c": 1.0}, "clip_ratio_c for dual-clip PPO should be greater than 1.0"),
    ("verl", {"algorithm": {"rollout_correction": {"bypass_mode": True}}}, "not modelled"),
    ("openrlhf", {"algo.advantage.is_correction_level": "token"}, "not modelled"),
    ("openrlhf", {"actor.entropy_coef": 0.01}, "not modelled"),
    ("openrlhf", {"algo.advantage.estimator": "rloo"}, "n_samples_per_prompt > 1"),
    ("trl", {"per_device_train_batch_size": 4}, "divisible by num_generations"),
    ("trl", {"steps_per_generation": 2, "generation_batch_size": 16}, "can not be both configured"),
    ("verl", {"kl_loss_type": "full"}, "not implemented"),
    ("verl", {"entropy_coeff": 0.01}, "not modelled"),
    ("openrlhf", {"eps_clip_low_high": [0.2]}, "two numbers"),
    ("openrlhf", {"dual_clip": 0.5}, "dual_clip must be > 1"),
    ("openrlhf", {"actor.dual_clip": 1.0}, "dual_clip must be > 1"),
    ("trl", ["loss_type"], "mapping"),
])
def test_bad_values(trainer, cfg, match):
    with pytest.raises(InputError, match=match):
        effective_config(trainer, cfg)


@pytest.mark.parametrize("change,match", [
    ({"logp": np.zeros((2, 4))}, "shape"),
    ({"mask": np.array([[1, 2, 0], [1, 0, 0]])}, "only 0 and 1"),
    ({"old_logp": np.array([[0.0, np.nan, 0.0], [0, 0, 0]])}, "NaN"),
    ({"advantages": [1.0]}, "shape"),
    ({"micro_batches": [[0], [0, 1]]}, "two micro-batches"),
    ({"micro_batches": [[0, 5]]}, "outside"),
    ({"micro_batches": [[]]}, "non-empty"),
    ({"micro_batches": "01"}, "row-index lists"),
    ({"max_completion_length": 0}, "max_completion_length"),
])
def test_bad_inputs(change, match):
    with pytest.raises(InputError, match=match):
        loss_and_grad("trl", {}, **{**KW, **change})


def test_verl_and_openrlhf_steps_cover_every_row_and_kl_needs_ref():
    with pytest.raises(InputError, match="no micro-batch"):
        loss_and_grad("verl", {}, **KW, micro_batches=[[0]])
    with pytest.raises(InputError, match="ref_logp"):
        loss_and_grad("trl", {"beta": 0.1}, **KW)
    with pytest.raises(InputError, match="unknown trainer"):
        loss_and_grad("deepspeed-chat", {}, **KW)


def test_verl_dual_clip_bound_is_checked_only_where_verl_checks_it():
    assert effective_config("verl", {"policy_loss": {"loss_mode": "gpg"}, "clip_ratio_c": 0.5})["clip_ratio_c"] == 0.5
