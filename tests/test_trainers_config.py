"""Config keys and inputs: defaults, aliases, and one clear InputError per mistake."""

import numpy as np
import pytest

from grpo_proofs.errors import InputError
from grpo_proofs.trainers import effective_config, loss_and_grad

MASK = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
KW = dict(logp=np.zeros((2, 3)), old_logp=np.zeros((2, 3)), advantages=[1.0, -1.0], mask=MASK)


@pytest.mark.parametrize("trainer,key,value", [
    ("trl", "loss_type", "dapo"), ("trl", "epsilon", 0.2), ("trl", "epsilon_high", None), ("trl", "beta", 0.0),
    ("trl", "importance_sampling_level", "token"), ("trl", "scale_rewards", "group"), ("trl", "num_iterations", 1),
    ("trl", "max_completion_length", 512), ("trl", "sapo_temperature_neg", 1.05), ("trl", "use_bias_correction_kl", False),
    ("verl", "clip_ratio_low", 0.2), ("verl", "clip_ratio_high", 0.2), ("verl", "clip_ratio_c", 3.0),
    ("verl", "loss_agg_mode", "token-mean"), ("verl", "loss_scale_factor", None), ("verl", "kl_loss_type", "low_var_kl"),
    ("verl", "kl_loss_coef", 0.001), ("verl", "policy_loss.loss_mode", "vanilla"), ("verl", "adv_estimator", "gae"),
    ("verl", "norm_adv_by_std_in_grpo", True), ("verl", "tau_neg", 1.05),
    ("openrlhf", "policy_loss_type", "ppo"), ("openrlhf", "eps_clip", 0.2), ("openrlhf", "dual_clip", None),
    ("openrlhf", "kl_estimator", "k1"), ("openrlhf", "init_kl_coef", 0.01), ("openrlhf", "use_kl_loss", False),
])
def test_defaults_are_the_trainers(trainer, key, value):
    assert effective_config(trainer, {})[key] == value


@pytest.mark.parametrize("trainer", ["trl", "verl", "openrlhf"])
def test_unknown_key_names_it_and_lists_the_valid_ones(trainer):
    with pytest.raises(InputError) as e:
        effective_config(trainer, {"learnin_rate": 1e-6})
    msg = str(e.value)
    assert "'learnin_rate'" in msg and "valid keys:" in msg and "\n" not in msg


def test_verl_nested_dotted_and_hydra_paths_are_the_same_key():
    a = effective_config("verl", {"policy_loss": {"loss_mode": "gspo"}})
    b = effective_config("verl", {"policy_loss.loss_mode": "gspo"})
    c = effective_config("verl", {"actor_rollout_ref": {"actor": {"policy_loss": {"loss_mode": "gspo"}}}})
    d = effective_config("verl", {"algorithm": {"adv_estimator": "rloo"}, "data.train_batch_size": 512})
    assert a["policy_loss.loss_mode"] == b["policy_loss.loss_mode"] == c["policy_loss.loss_mode"] == "gspo"
    assert d["adv_estimator"] == "rloo" and d["train_batch_size"] == 512
    with pytest.raises(InputError, match="twice"):
        effective_config("verl", {"clip_ratio_c": 2.0, "actor.clip_ratio_c": 3.0})


def test_openrlhf_dotted_cli_names():
    c = effective_config("openrlhf", {"actor.policy_loss_type": "gspo", "algo.kl.estimator": "k3", "algo.kl.use_loss": True})
    assert (c["policy_loss_type"], c["kl_estimator"], c["use_kl_loss"]) == ("gspo", "k3", True)


@pytest.mark.parametrize("trainer,cfg,match", [
    ("trl", {"loss_type": "ppo"}, "loss_type must be one of"),
    ("trl", {"epsilon": -0.1}, "epsilon must be > 0"),
    ("trl", {"epsilon": True}, "epsilon must be a number"),
    ("trl", {"num_iterations": 1.5}, "whole number"),
    ("trl", {"top_entropy_quantile": 0.2}, "not modelled"),
    ("trl", {"use_vllm": True}, "not modelled"),
    ("verl", {"clip_ratio_c": 1.0}, "clip_ratio_c must be > 1"),
    ("verl", {"kl_loss_type": "full"}, "not implemented"),
    ("verl", {"entropy_coeff": 0.01}, "not modelled"),
    ("openrlhf", {"eps_clip_low_high": [0.2]}, "two numbers"),
    ("openrlhf", {"dual_clip": 0.5}, "dual_clip must be > 1"),
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
