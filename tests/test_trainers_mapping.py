"""Trainer configs as the unified surrogate: symbolic weights, Variant gradients, Table 1 matches, verdicts."""

import numpy as np
import pytest
import sympy as sp

from grpo_proofs import notation as n
from grpo_proofs import token_gradient
from grpo_proofs.checking import Context, all_claims
from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.checking.tolerances import CLOSED_FORM
from grpo_proofs.trainers import advantages, loss_and_grad, propositions, to_variant

K, b_k, N_k, T_k, B, N, S, C, S_g = n.K_acc, n.b_k, n.N_k, n.T_k, n.B_step, n.N_step, n.S_seq, n.C_scale, n.S_gen
G, L, Lsum, Lmax, sigma = n.G, n.L_i, n.L_sum, n.L_max, n.sigma


@pytest.mark.parametrize("trainer,cfg,weight", [
    ("trl", {"loss_type": "grpo"}, 1 / (K * b_k * L)),
    ("trl", {"loss_type": "bnpo"}, 1 / (K * N_k)),
    ("trl", {"loss_type": "dr_grpo"}, 1 / (K * b_k * Lmax)),
    ("trl", {}, 1 / N),
    ("trl", {"loss_type": "luspo", "importance_sampling_level": "sequence"}, 1 / (K * b_k)),
    ("trl", {"loss_type": "luspo"}, 1 / (K * b_k)),
    ("trl", {"loss_type": "luspo", "version": "1.9.0"}, L / (K * b_k * n.T_pad)),
    ("trl", {"loss_type": "dapo", "steps_per_generation": 4, "per_device_train_batch_size": 2, "num_generations": 2}, S_g / (K * N)),
    ("trl", {"loss_type": "dapo", "steps_per_generation": 4, "per_device_train_batch_size": 2, "num_generations": 2,
             "version": "1.9.0"}, 1 / N),
    ("verl", {"loss_agg_mode": "token-sum"}, sp.Integer(1)),
    ("verl", {"loss_agg_mode": "seq-mean-token-sum"}, 1 / B),
    ("verl", {"loss_agg_mode": "seq-mean-token-mean"}, 1 / (B * L)),
    ("verl", {"loss_agg_mode": "seq-mean-token-sum-norm"}, 1 / (B * T_k)),
    ("verl", {"loss_agg_mode": "seq-mean-token-sum-norm", "loss_scale_factor": 512}, 1 / (B * C)),
    ("verl", {"policy_loss": {"loss_mode": "gspo"}, "loss_agg_mode": "token-mean"}, 1 / N),
    ("verl", {"policy_loss": {"loss_mode": "gspo"}, "loss_agg_mode": "seq-mean-token-mean"}, 1 / (B * L)),
    ("verl", {"policy_loss": {"loss_mode": "sapo"}, "loss_agg_mode": "token-mean"}, 1 / (B * L)),
    ("verl", {"policy_loss": {"loss_mode": "geo_mean"}}, 1 / (b_k * L)),
    ("openrlhf", {}, 1 / N),
    ("openrlhf", {"policy_loss_type": "gspo"}, 1 / (S * L)),
    ("openrlhf", {"actor.loss_agg_mode": "seq-mean-token-mean"}, 1 / (S * L)),
])
def test_symbolic_weight_is_the_table_row(trainer, cfg, weight):
    assert sp.cancel(to_variant(trainer, cfg).weight - weight) == 0


def test_reduced_weights_are_table_1_alphas():
    """One group in one micro-batch: TRL grpo -> 1/(G L_i sigma), dapo -> 1/(sigma L_sum), dr_grpo -> 1/(G L_max)."""
    assert sp.cancel(to_variant("trl", {"loss_type": "grpo"}).alpha_clean - 1 / (G * L * sigma)) == 0
    assert sp.cancel(to_variant("trl", {}).alpha_clean - 1 / (sigma * Lsum)) == 0
    assert sp.cancel(to_variant("trl", {"loss_type": "dr_grpo", "scale_rewards": "none"}).alpha_clean - 1 / (G * Lmax)) == 0
    rloo = to_variant("verl", {"adv_estimator": "rloo", "loss_agg_mode": "seq-mean-token-sum"})
    assert sp.cancel(rloo.alpha_clean - 1 / (G - 1)) == 0  # n/(n-1) (R - mean) with weight 1/G


@pytest.mark.parametrize("trainer,cfg,matches", [
    ("trl", {"loss_type": "grpo"}, ("grpo",)),
    ("trl", {}, ("dapo",)),
    ("trl", {"loss_type": "dr_grpo", "scale_rewards": "none"}, ("dr_grpo",)),
    ("trl", {"loss_type": "cispo", "epsilon_high": 5.0}, ("cispo",)),
    ("trl", {"loss_type": "grpo", "importance_sampling_level": "sequence"}, ("gspo",)),
    ("trl", {"loss_type": "grpo", "scale_rewards": "none", "beta": 0.04, "use_bias_correction_kl": True}, ("grpo_v32", "gtpo")),
    ("trl", {"loss_type": "sapo"}, ()),
    ("trl", {"loss_type": "dr_grpo"}, ()),
    ("verl", {"adv_estimator": "grpo", "norm_adv_by_std_in_grpo": False, "loss_agg_mode": "seq-mean-token-sum-norm",
              "loss_scale_factor": 4096}, ("dr_grpo",)),
    ("verl", {"adv_estimator": "gpg", "policy_loss": {"loss_mode": "gpg"}}, ("gpg",)),
    ("verl", {"adv_estimator": "grpo", "loss_agg_mode": "seq-mean-token-mean"}, ("grpo",)),
    ("verl", {}, ()),
    ("openrlhf", {"algo.advantage.estimator": "group_norm", "policy_loss_type": "gspo", "rollout.n_samples_per_prompt": 8},
     ("gspo",)),
    ("openrlhf", {"algo.advantage.estimator": "group_norm", "actor.loss_agg_mode": "seq-mean-token-mean",
                  "rollout.n_samples_per_prompt": 8}, ("grpo",)),
])
def test_table_1_match(trainer, cfg, matches):
    assert to_variant(trainer, cfg).matches == matches


def test_no_match_names_the_closest_row():
    assert to_variant("trl", {"loss_type": "dr_grpo"}).closest == ("dr_grpo",)  # differs only by 1/sigma


def batch_symbols(mask, mbs, L_max=None):
    """The batch's numbers per token, computed here from their definitions (K micro-batches, b_k rows, ...)."""
    Bn, T = mask.shape
    out = []
    for k, rows in enumerate(mbs):
        for i in rows:
            for t in range(T):
                if mask[i, t]:
                    longest = max(np.flatnonzero(mask[rows].sum(0))) + 1
                    vals = {K: len(mbs), b_k: len(rows), N_k: mask[rows].sum(), T_k: longest,
                                         B: Bn, N: mask.sum(), S: (mask.sum(-1) > 0).sum(), L: mask[i].sum(),
                            Lmax: L_max, n.T_pad: T, S_g: len(mbs)}
                    out.append(((i, t), {k: v for k, v in vals.items() if v is not None}))
    return out


@pytest.mark.parametrize("trainer,cfg", [
    ("trl", {"loss_type": "grpo"}), ("trl", {"loss_type": "bnpo"}), ("trl", {"loss_type": "dr_grpo"}),
    ("trl", {"loss_type": "dapo"}), ("trl", {"loss_type": "grpo", "importance_sampling_level": "sequence"}),
    ("verl", {"loss_agg_mode": "seq-mean-token-sum-norm"}), ("verl", {"loss_agg_mode": "seq-mean-token-mean"}),
    ("verl", {"policy_loss": {"loss_mode": "gspo"}}), ("openrlhf", {}), ("openrlhf", {"policy_loss_type": "gspo"}),
])
def test_symbolic_weight_times_branch_factor_is_the_gradient(trainer, cfg):
    """Substitute the batch's numbers into the mapped weight (SymPy) and multiply by -A r 1 (s_i 1_i)."""
    rng = np.random.default_rng(3)
    Bn, T = 6, 8
    lengths = np.array([3, 8, 1, 5, 6, 2])
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
    old = -rng.uniform(0.5, 2, size=(Bn, T))
    logp = old + 0.15 * rng.normal(size=(Bn, T))
    logp[mask == 0] = 7.0
    A = rng.normal(size=Bn)
    mbs = [[0, 1, 2], [3, 4, 5]]
    mp = to_variant(trainer, cfg)
    eps_lo, eps_hi = mp.variant.eps_low, mp.variant.eps_up
    _, grad = loss_and_grad(trainer, cfg, logp=logp, old_logp=old, advantages=A, mask=mask, micro_batches=mbs)
    expected = np.zeros_like(grad)
    for (i, t), vals in batch_symbols(mask, mbs, L_max=mp.config.get("max_completion_length")):
        omega = float(mp.weight.subs(vals))
        lr = logp[i] - old[i]
        r = np.exp(lr[t]) if not mp.sequence else np.exp((lr * mask[i]).sum() / mask[i].sum())
        on = (A[i] > 0 and r < 1 + eps_hi) or (A[i] < 0 and r > 1 - eps_lo)
        expected[i, t] = -omega * A[i] * r * on
    assert rel_err(grad, expected) <= CLOSED_FORM


@pytest.mark.parametrize("trainer,cfg", [
    ("trl", {"loss_type": "grpo"}), ("trl", {"loss_type": "dapo", "epsilon_high": 0.28}),
    ("trl", {"loss_type": "cispo", "epsilon_high": 5.0}), ("trl", {"loss_type": "luspo", "importance_sampling_level": "sequence"}),
    ("verl", {"adv_estimator": "grpo", "policy_loss": {"loss_mode": "gspo"}}),
    ("verl", {"adv_estimator": "rloo", "loss_agg_mode": "seq-mean-token-sum"}),
    ("openrlhf", {"advantage_estimator": "group_norm", "rollout.n_samples_per_prompt": 5}),
])
def test_token_gradient_of_the_variant_is_minus_the_trainer_gradient(trainer, cfg):
    rng = np.random.default_rng(11)
    rewards, lengths = np.array([1.0, 0.0, 2.0, 0.0, 1.0]), np.array([4, 1, 7, 3, 5])
    T = lengths.max()
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
    log_ratios = [0.12 * rng.normal(size=k) for k in lengths]
    old = -rng.uniform(0.5, 2, size=(5, T))
    logp = old + 3.0 * (mask == 0)
    for i, lr in enumerate(log_ratios):
        logp[i, : lengths[i]] += lr
    adv = advantages(trainer, cfg, rewards, [0] * 5)
    _, grad = loss_and_grad(trainer, cfg, logp=logp, old_logp=old, advantages=adv, mask=mask)
    sym = token_gradient(to_variant(trainer, cfg).variant, rewards, lengths, log_ratios=log_ratios, sigma="sample")
    assert rel_err(grad[mask > 0], -np.concatenate(sym)) <= CLOSED_FORM


def test_verdicts():
    v = {p.label: p.verdict for p in propositions("trl", {"loss_type": "grpo", "num_iterations": 2})}
    assert v == {"prefix": "bias", "reward_scale": "invariant", "overshoot": "exposed"}
    v = {p.label: p.verdict for p in propositions("trl", {"loss_type": "bnpo", "scale_rewards": "none", "beta": 0.04})}
    assert v == {"prefix": "conditional", "reward_scale": "not invariant", "overshoot": "not exposed"}
    v = {p.label: p.verdict for p in propositions("verl", {"adv_estimator": "grpo", "norm_adv_by_std_in_grpo": False,
                                                           "policy_loss": {"loss_mode": "cispo"}, "ppo_epochs": 4})}
    assert v == {"prefix": "cancels", "reward_scale": "eps-limit", "overshoot": "no zero-gradient region"}
    v = {p.label: p.verdict for p in propositions("openrlhf", {"advantage_estimator": "reinforce_baseline",
                                                               "rollout.n_samples_per_prompt": 4})}
    assert v["prefix"] == "bias" and v["reward_scale"] == "not invariant"  # whitening shift; KL in the reward
    v = {p.label: p.verdict for p in propositions("trl", {"steps_per_generation": 4, "gradient_accumulation_steps": 2})}
    assert v["overshoot"] == "exposed"  # mu = 2 optimizer steps per generation although num_iterations = 1


def test_overshoot_drift_uses_the_trainers_adam_betas():
    (ov,) = [p for p in propositions("openrlhf", {"max_epochs": 2}) if p.label == "overshoot"]
    rho = 0.9 / 0.95**0.5
    assert f"{rho / (1 - rho):.2f}" in ov.reason


@pytest.mark.parametrize("label", ["trainers-loss-and-grad", "trainers-variant-mapping", "trainers-cross-library-equivalence"])
def test_claims_pass(label):
    claims = all_claims()
    c = claims[label]
    assert c.page == "trainers"
    out = c.run(Context(quick=True))
    assert out.passed, out.detail
    assert out.error <= CLOSED_FORM
