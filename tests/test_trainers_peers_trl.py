"""TRL 1.16.0's own GRPOTrainer against grpo_proofs.trainers (the ``peers`` tests).

Oracle: a real ``trl.GRPOTrainer`` (grpo_proofs.trainers.peers.trl.TRLRun: tiny random Qwen2
built offline, tokenizer built in code, in-memory prompts, deterministic rewards, real
GRPOConfig) samples and scores a generation batch through ``_prepare_inputs``; its own
``_compute_loss`` gives the loss of each optimizer step and, by autograd, d loss / d logp.
The project gets the same numbers (log-probs, old and reference log-probs, mask, advantages,
the step's rows) and must give the same loss and gradient, float64, 1e-12 (TRL runs with
float64 as the default dtype: every tensor it creates without a dtype is float64; it casts rewards
and reward weights to float32 itself, so those are float32-exact here). Advantages: the project's
``advantages`` of the rewards the reward functions returned against the ones TRL computed.

Coverage: every loss type (parametrized), with hypothesis drawing the rest per case: token or
sequence ratios, beta (and use_bias_correction_kl given or left at the default), epsilon /
epsilon_high / delta, the off-policy mask, 1 to 3 micro-batches per step, steps_per_generation
S = K or 2K or generation_batch_size, num_iterations 1 or 2, mask_truncated_completions,
scale_rewards, one or two reward functions with weights and both aggregations, vespo and sapo
parameters; the log-probs are moved off the model's by up to 1.5 nats so ratios land on every
clip branch, and the padding holds arbitrary values. Negative controls: TRL 1.9.0's formulas
must *not* match 1.16.0 on S != K (dapo) or at the KL default.
"""

import numpy as np
import pytest

from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.checking.tolerances import CLOSED_FORM
from grpo_proofs.trainers import advantages, loss_and_grad
from grpo_proofs.trainers.peers.trl import HARNESS_KEYS, VERSION, TRLRun, reward_count, reward_length

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not TRLRun.available(), reason=f"needs trl=={VERSION} (peers extra)")]

LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"]
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
F32 = st.sampled_from([0.5, 0.25, 1.0, 2.0, 0.75, 1.5])  # float32-exact reward weights


@st.composite
def trl_configs(draw, loss_type):
    G = draw(st.sampled_from([2, 3, 4]))
    b = G * draw(st.sampled_from([1, 2]))  # rows per micro-batch: whole groups
    K = draw(st.sampled_from([1, 2, 3]))
    cfg = {"loss_type": loss_type, "num_generations": G, "per_device_train_batch_size": b,
           "gradient_accumulation_steps": K, "max_completion_length": draw(st.integers(3, 6))}
    how = draw(st.sampled_from(["default", "spg", "gbs"]))
    if how == "spg":
        cfg["steps_per_generation"] = K * draw(st.sampled_from([1, 2]))
    elif how == "gbs":
        cfg["generation_batch_size"] = b * K * draw(st.sampled_from([1, 2]))
    if draw(st.booleans()):
        cfg["num_iterations"] = 2
    if loss_type != "vespo":
        cfg["importance_sampling_level"] = draw(st.sampled_from(["token", "sequence"]))
    if draw(st.booleans()):
        cfg["beta"] = draw(st.sampled_from([0.04, 0.3]))
        if draw(st.booleans()):
            cfg["use_bias_correction_kl"] = draw(st.booleans())
    cfg["epsilon"] = draw(st.sampled_from([0.1, 0.2, 0.3]))
    if draw(st.booleans()):
        cfg["epsilon_high"] = draw(st.sampled_from([0.28, 0.5, 5.0] if loss_type == "cispo" else [0.28, 0.5]))
    if loss_type in ("grpo", "bnpo", "dr_grpo", "dapo", "luspo") and draw(st.booleans()):
        cfg["delta"] = draw(st.sampled_from([1.1, 1.5, 4.0]))
    if draw(st.booleans()):
        cfg["off_policy_mask_threshold"] = draw(st.sampled_from([0.01, 0.2]))
    cfg["mask_truncated_completions"] = draw(st.booleans())
    cfg["scale_rewards"] = draw(st.sampled_from(["group", "batch", "none", True, False]))
    if loss_type == "sapo":
        cfg["sapo_temperature_pos"] = draw(st.sampled_from([1.0, 0.5]))
        cfg["sapo_temperature_neg"] = draw(st.sampled_from([1.05, 2.0]))
    if loss_type == "vespo":
        cfg["vespo_k_pos"] = draw(st.sampled_from([2.0, 1.0]))
        cfg["vespo_lambda_neg"] = draw(st.sampled_from([2.0, 0.0]))
    funcs = (reward_count, reward_length) if draw(st.booleans()) else (reward_count,)
    if len(funcs) == 2:
        if draw(st.booleans()):
            cfg["reward_weights"] = [draw(F32), draw(F32)]
        cfg["multi_objective_aggregation"] = draw(st.sampled_from(["sum_then_normalize", "normalize_then_sum"]))
    return cfg, funcs, draw(st.integers(0, 2**16)), draw(st.sampled_from([0.3, 1.5]))


def _steps(run):
    S = int(run.args.steps_per_generation)
    K = int(run.args.gradient_accumulation_steps)
    return range(S // K)


def _logp(gen, seed, spread):
    rng = np.random.default_rng(seed)
    base = gen.old_logp if gen.old_logp is not None else gen.model_logp
    logp = base + spread * rng.uniform(-1, 1, size=base.shape)
    logp[gen.mask == 0] = rng.uniform(-6, 2, size=int((gen.mask == 0).sum()))  # junk in the padding
    return logp


def _compare(cfg, funcs, seed, spread, version=None):
    run = TRLRun(cfg, reward_funcs=funcs, seed=seed % 97)
    gen = run.generate()
    logp = _logp(gen, seed, spread)
    old = gen.old_logp if gen.old_logp is not None else logp  # TRL: old = logp.detach() when it has none
    worst, compared = 0.0, 0
    for step in _steps(run):
        loss, grad = run.loss_and_grad(gen, logp, step)
        if not np.abs(grad).max() > 0:
            continue  # a step whose advantages are all zero and no KL term: nothing to compare
        compared += 1
        mine, my_grad = loss_and_grad("trl", cfg, logp=logp, old_logp=old, advantages=gen.advantages, mask=gen.mask,
                                      ref_logp=gen.ref_logp, micro_batches=run.step_rows(gen, step), version=version)
        worst = max(worst, rel_err(my_grad, grad), abs(mine - loss) / max(abs(loss), 1e-300) if loss else abs(mine))
    assume(compared > 0)  # drawn batches where TRL's gradient is zero everywhere are discarded, not counted
    return run, gen, worst


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@settings(max_examples=5, **SETTINGS)
@given(data=st.data())
def test_loss_grad_and_advantages_equal_trl_1_16(loss_type, data):
    cfg, funcs, seed, spread = data.draw(trl_configs(loss_type))
    assert not set(cfg) & set(HARNESS_KEYS)
    run, gen, worst = _compare(cfg, funcs, seed, spread)
    assert worst <= CLOSED_FORM, (cfg, worst)
    mine = advantages("trl", cfg, gen.rewards if gen.rewards.shape[1] > 1 else gen.rewards[:, 0], gen.group_ids)
    assert rel_err(mine, gen.trl_advantages) <= CLOSED_FORM, cfg


@settings(max_examples=1, **SETTINGS)
@given(st.just(None))
def test_negative_controls_trl_1_9_0_formulas_do_not_match_1_16_0(_):
    """The 1.9.0 model must fail against the 1.16.0 release where they differ: S != K, and the KL default."""
    cfg = {"loss_type": "dapo", "num_generations": 2, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
           "steps_per_generation": 2, "max_completion_length": 4}
    _, _, worst_new = _compare(cfg, (reward_count,), 3, 0.3)
    _, _, worst_old = _compare(cfg, (reward_count,), 3, 0.3, version="1.9.0")
    assert worst_new <= CLOSED_FORM and worst_old > 0.4  # off by S/K = 2
    cfg = {"loss_type": "grpo", "num_generations": 2, "per_device_train_batch_size": 2, "beta": 0.3, "max_completion_length": 4}
    _, _, worst_new = _compare(cfg, (reward_count,), 4, 0.3)
    _, _, worst_old = _compare(cfg, (reward_count,), 4, 0.3, version="1.9.0")
    assert worst_new <= CLOSED_FORM and worst_old > 1e-4


@pytest.mark.parametrize("cfg", [
    {"steps_per_generation": 2, "generation_batch_size": 16},
    {"generation_batch_size": 12, "per_device_train_batch_size": 8},
    {"num_generations": 1},
    {"per_device_train_batch_size": 4},  # 4 rows do not hold a group of the default 8
    {"per_device_train_batch_size": 6, "num_generations": 3},
    {"generation_batch_size": 9, "per_device_train_batch_size": 3, "num_generations": 3},
])
def test_the_project_refuses_exactly_what_grpoconfig_refuses(cfg, tmp_path):
    import warnings

    from trl import GRPOConfig

    from grpo_proofs.errors import InputError
    from grpo_proofs.trainers import effective_config

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", **cfg)
        trl_ok = True
    except ValueError:
        trl_ok = False
    try:
        effective_config("trl", cfg, version=VERSION)
        mine_ok = True
    except InputError:
        mine_ok = False
    assert mine_ok == trl_ok, cfg


def test_defaults_are_grpoconfig_defaults():
    import dataclasses

    from trl import GRPOConfig

    from grpo_proofs.trainers.trl import spec
    from grpo_proofs.trainers.releases import resolve

    fields = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    checked = 0
    for name, key in spec(resolve("trl", VERSION)).items():
        assert name in fields, name
        assert key.default == fields[name], (name, key.default, fields[name])
        checked += 1
    assert checked >= 30
