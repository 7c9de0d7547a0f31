"""One test per pitfall of the trainers' losses (explained in docs/trainers.md), for the releases modelled."""

import numpy as np
import pytest

from grpo_proofs.errors import InputError
from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.checking.tolerances import CLOSED_FORM
from grpo_proofs.trainers import advantages, loss_and_grad, propositions, to_variant


def step(seed=0, B=4, T=6, lengths=(2, 6, 3, 5), spread=0.0):
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
    old = -rng.uniform(0.5, 2.0, size=(B, T))
    logp = old + spread * rng.normal(size=(B, T))
    logp[mask == 0] = rng.uniform(-3, 3, size=int((mask == 0).sum()))
    ref = logp + 0.3 * rng.normal(size=(B, T))
    return dict(logp=logp, old_logp=old, ref_logp=ref, mask=mask, advantages=np.array([1.0, -1.0, 0.5, -0.5]))


def test_pitfall_1_weight_depends_on_batch_composition():
    s = step()
    m = s["mask"]
    # TRL bnpo: micro-batch-local token count. Row 0 alone with row 1 (8 tokens) or with row 2 (5 tokens).
    _, g_a = loss_and_grad("trl", {"loss_type": "bnpo"}, micro_batches=[[0, 1], [2, 3]], **s)
    _, g_b = loss_and_grad("trl", {"loss_type": "bnpo"}, micro_batches=[[0, 2], [1, 3]], **s)
    assert g_a[0, 0] == pytest.approx(-1.0 / (2 * 8), rel=1e-15) and g_b[0, 0] == pytest.approx(-1.0 / (2 * 5), rel=1e-15)
    # TRL dapo / verl token-mean: the same row's weight changes when another row joins the batch
    _, g_full = loss_and_grad("verl", {}, **s)
    small = {k: v[:3] for k, v in s.items()}
    _, g_small = loss_and_grad("verl", {}, **small)
    assert g_full[0, 0] == pytest.approx(-1.0 / m.sum(), rel=1e-15)
    assert g_small[0, 0] == pytest.approx(-1.0 / m[:3].sum(), rel=1e-15)
    from grpo_proofs import notation as n

    assert n.N_k in to_variant("trl", {"loss_type": "bnpo"}).weight.free_symbols
    assert {p.label: p.verdict for p in propositions("trl", {"loss_type": "bnpo"})}["prefix"] == "conditional"


def test_pitfall_2_trl_default_is_dapo_not_grpo():
    s = step()
    m, A = s["mask"], s["advantages"][:, None]
    _, default = loss_and_grad("trl", {}, **s)
    _, dapo = loss_and_grad("trl", {"loss_type": "dapo"}, **s)
    _, grpo = loss_and_grad("trl", {"loss_type": "grpo"}, **s)
    assert rel_err(default, dapo) == 0.0
    assert rel_err(default, -A * m / m.sum()) <= CLOSED_FORM  # token mean over the batch
    assert rel_err(grpo, -A * m / (4 * m.sum(-1, keepdims=True))) <= CLOSED_FORM  # 1/(B |o_i|): per-sequence mean
    assert to_variant("trl", {}).matches == ("dapo",)


def test_pitfall_3_on_policy_ratio_is_one_and_clipping_never_acts():
    s = step()
    s["old_logp"] = s["logp"].copy()  # mu = 1, steps_per_generation = GA: old = logp
    m, A = s["mask"], s["advantages"][:, None]
    for cfg in ({"epsilon": 1e-9, "epsilon_high": 1e-9}, {"epsilon": 0.2}, {"epsilon": 5.0, "delta": 1.5}):
        _, g = loss_and_grad("trl", {"loss_type": "dapo", **cfg}, **s)
        assert rel_err(g, -A * m / m.sum()) <= CLOSED_FORM  # -w A whatever the clip
    assert {p.label: p.verdict for p in propositions("trl", {})}["overshoot"] == "not exposed"


def test_pitfall_4_trl_cispo_with_epsilon_high_unset_caps_at_0_2():
    s = step()
    s["old_logp"] = s["logp"].copy()
    m, A = s["mask"], s["advantages"][:, None]
    _, unset = loss_and_grad("trl", {"loss_type": "cispo"}, **s)
    _, five = loss_and_grad("trl", {"loss_type": "cispo", "epsilon_high": 5.0}, **s)
    assert rel_err(five, -A * m / m.sum()) <= CLOSED_FORM
    assert rel_err(unset, 0.2 * five) <= CLOSED_FORM  # min(r, 0.2) = 0.2 at r = 1: every gradient times 0.2
    assert any("pitfall 4" in note for note in to_variant("trl", {"loss_type": "cispo"}).notes)


def test_pitfall_5_trl_1_9_0_luspo_token_level_averages_over_padding():
    """TRL 1.9.0: (L * |o_i|).mean() over every entry, padding included; 1.16.0 masks it."""
    s = step(spread=0.1)
    m = s["mask"]
    s["logp"] = np.where(m == 0, s["old_logp"] + 0.05, s["logp"])  # padding ratios inside the clip range
    old = {"loss_type": "luspo", "version": "1.9.0"}
    _, g = loss_and_grad("trl", old, **s)
    assert np.all(g[m == 0] != 0.0)  # padding positions receive gradient
    junk = dict(s, logp=s["logp"] + 0.5 * (m == 0))
    l1, _ = loss_and_grad("trl", old, **s)
    l2, _ = loss_and_grad("trl", old, **junk)
    assert l1 != l2  # the loss depends on what sits in the padding
    wide = {k: np.pad(v, ((0, 0), (0, 6)), constant_values=0.0 if k == "mask" else -1.0) if v.ndim == 2 else v
            for k, v in s.items()}
    _, g_wide = loss_and_grad("trl", old, **wide)
    assert rel_err(g_wide[:, :6] * m, g * m * 6 / 12) <= CLOSED_FORM  # weight |o_i|/(K b_k T): T doubled, halved
    # sequence level without KL: no padding effect; with beta != 0 the KL term reaches the padding again
    _, gs = loss_and_grad("trl", {**old, "importance_sampling_level": "sequence"}, **s)
    assert np.all(gs[m == 0] == 0.0)
    _, gk = loss_and_grad("trl", {**old, "importance_sampling_level": "sequence", "beta": 0.1}, **s)
    assert np.all(gk[m == 0] != 0.0)
    # 1.16.0: (L * m).sum(-1).mean() / K -- no padding, weight 1/(K b_k) whatever the width
    _, new = loss_and_grad("trl", {"loss_type": "luspo"}, **s)
    _, new_wide = loss_and_grad("trl", {"loss_type": "luspo"}, **wide)
    assert np.all(new[m == 0] == 0.0) and rel_err(new_wide[:, :6], new) <= CLOSED_FORM
    assert any("pitfall 5" in x for x in to_variant("trl", old).notes)
    assert not any("pitfall 5" in x for x in to_variant("trl", {"loss_type": "luspo"}).notes)


def test_pitfall_6_verl_sapo_ignores_loss_agg_mode_gspo_follows_it_and_geo_mean_ignores_the_global_batch():
    s = step(spread=0.2)
    grads = [loss_and_grad("verl", {"policy_loss": {"loss_mode": "sapo"}, "loss_agg_mode": agg}, **s)[1]
             for agg in ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-sum-norm")]
    assert all(rel_err(g, grads[0]) == 0.0 for g in grads)
    # verl 0.9.1: gspo aggregates with loss_agg_mode; its default token-mean is 1/N, not GSPO's 1/(B |o_i|)
    m, A = s["mask"], s["advantages"][:, None]
    on = dict(s, logp=s["old_logp"].copy())
    _, tm = loss_and_grad("verl", {"policy_loss": {"loss_mode": "gspo"}}, **on)
    _, sm = loss_and_grad("verl", {"policy_loss": {"loss_mode": "gspo"}, "loss_agg_mode": "seq-mean-token-mean"}, **on)
    assert rel_err(tm, -A * m / m.sum()) <= CLOSED_FORM
    assert rel_err(sm, -A * m / (4 * m.sum(-1, keepdims=True))) <= CLOSED_FORM
    assert any("pitfall 6" in x for x in to_variant("verl", {"policy_loss": {"loss_mode": "gspo"}}).notes)
    twice = {k: np.concatenate([v, v]) for k, v in s.items()}
    l1, g1 = loss_and_grad("verl", {"policy_loss": {"loss_mode": "geo_mean"}}, **s)
    l2, g2 = loss_and_grad("verl", {"policy_loss": {"loss_mode": "geo_mean"}}, micro_batches=[[0, 1, 2, 3], [4, 5, 6, 7]], **twice)
    assert l2 == pytest.approx(2 * l1, rel=1e-14)  # a sum of K means: 2 micro-batches = 2x the loss
    assert rel_err(g2[:4], g1) <= CLOSED_FORM  # each row keeps the 1/b_k of its own micro-batch
    l3, _ = loss_and_grad("verl", {"policy_loss": {"loss_mode": "gspo"}}, micro_batches=[[0, 1, 2, 3], [4, 5, 6, 7]], **twice)
    l4, _ = loss_and_grad("verl", {"policy_loss": {"loss_mode": "gspo"}}, **s)
    assert l3 == pytest.approx(l4, rel=1e-14)  # gspo is normalised by the global batch


def test_pitfall_7_verl_dual_clip_is_on_by_default():
    s = step()
    s["logp"] = s["old_logp"] + np.log(4.0)  # r = 4 > c = 3 everywhere
    m = s["mask"]
    _, verl = loss_and_grad("verl", {}, **s)
    _, orl = loss_and_grad("openrlhf", {}, **s)
    neg = s["advantages"] < 0
    assert np.all(verl[neg] == 0.0) and np.all(orl[neg][m[neg] > 0] != 0.0)  # A < 0, r > 3: verl stops
    _, orl3 = loss_and_grad("openrlhf", {"actor.dual_clip": 3.0}, **s)
    assert rel_err(verl, orl3) <= CLOSED_FORM


def test_pitfall_8_seq_mean_token_sum_norm_changed_meaning_and_defaults_to_the_padded_width():
    s = step(lengths=(2, 6, 3, 4))
    A = s["advantages"][:, None]
    m = s["mask"]
    cfg = {"policy_loss": {"loss_mode": "gpg"}, "loss_agg_mode": "seq-mean-token-sum-norm"}
    _, g = loss_and_grad("verl", cfg, micro_batches=[[0, 1], [2, 3]], **s)
    # verl 0.9.1: 1/(B C) with C the longest response of each micro-batch (6, then 4): not the same constant
    expected = -A * m / (4 * np.array([[6], [6], [4], [4]]))
    assert rel_err(g, expected) <= CLOSED_FORM
    legacy = -A * m / (2 * np.array([[6], [6], [4], [4]]))  # legacy dp_actor: 1/(K T_k), no 1/B
    assert rel_err(g, legacy) > 0.4
    _, g512 = loss_and_grad("verl", {**cfg, "loss_scale_factor": 512}, micro_batches=[[0, 1], [2, 3]], **s)
    assert rel_err(g512, -A * m / (4 * 512)) <= CLOSED_FORM


def test_pitfall_9_singleton_groups():
    r, ids = [2.0, 1.0, 3.0, 5.0], [0, 0, 1, 2]  # groups 1 and 2 are singletons
    grpo = advantages("verl", {"adv_estimator": "grpo"}, r, ids)
    assert grpo[2] == pytest.approx(3.0 / (1 + 1e-6), rel=1e-15) and grpo[3] == pytest.approx(5.0 / (1 + 1e-6), rel=1e-15)
    assert advantages("verl", {"adv_estimator": "rloo"}, r, ids)[2:].tolist() == [3.0, 5.0]
    assert advantages("verl", {"adv_estimator": "rloo_vectorized"}, r, ids)[2:].tolist() == [0.0, 0.0]
    with pytest.raises(InputError, match="num_generations"):
        advantages("trl", {}, r, ids)
    with pytest.raises(InputError, match="n_samples_per_prompt > 1"):
        advantages("openrlhf", {"advantage_estimator": "group_norm"}, [1.0, 2.0], [0, 1])
    with pytest.raises(InputError, match="n_samples_per_prompt > 1"):
        advantages("openrlhf", {"advantage_estimator": "group_norm", "rollout.n_samples_per_prompt": 1}, [1.0, 2.0], [0, 1])


def test_pitfall_10_kl_estimators_differ():
    s = step()
    s["old_logp"] = s["logp"].copy()
    s["advantages"] = np.zeros(4)
    s["ref_logp"] = s["logp"] + 4.0 * s["mask"]  # ref - l = 4: k3 = e^4 - 5 = 49.6 > 10
    m = s["mask"]
    _, trl = loss_and_grad("trl", {"loss_type": "dapo", "beta": 1.0, "use_bias_correction_kl": False}, **s)
    assert rel_err(trl, m * (1 - np.exp(4.0)) / m.sum()) <= CLOSED_FORM  # TRL: unclamped k3 gradient
    _, trl16 = loss_and_grad("trl", {"loss_type": "dapo", "beta": 1.0}, **s)  # 1.16.0 default: r k3, r = 1 here
    k3 = np.exp(4.0) - 4.0 - 1
    assert rel_err(trl16, m * (k3 + 1 - np.exp(4.0)) / m.sum()) <= CLOSED_FORM
    _, lowvar = loss_and_grad("verl", {"use_kl_loss": True, "kl_loss_coef": 1.0}, **s)
    assert np.all(lowvar == 0.0)  # verl low_var_kl: value clamped to 10, no gradient
    _, plus = loss_and_grad("verl", {"use_kl_loss": True, "kl_loss_coef": 1.0, "kl_loss_type": "k3+"}, **s)
    assert rel_err(plus, m * (-4.0) / m.sum()) <= CLOSED_FORM  # k3+: straight-through k2 gradient l - ref
    l1, g1 = loss_and_grad("openrlhf", {}, **s)
    l2, g2 = loss_and_grad("openrlhf", {}, **dict(s, ref_logp=s["ref_logp"] + 3.0))
    assert (l1, rel_err(g1, g2)) == (l2, 0.0)  # OpenRLHF default: KL (k1) in the reward, not the loss
    assert to_variant("openrlhf", {}).kl_in_reward == "k1"
    # OpenRLHF with the KL in the loss: k3 clamped at 10 too, but its log-ratio is floored at -10 first
    _, o3 = loss_and_grad("openrlhf", {"algo.kl.use_loss": True, "algo.kl.estimator": "k3", "algo.kl.init_coef": 1.0}, **s)
    assert np.all(o3 == 0.0)


def test_pitfall_11_trl_1_16_rescales_dapo_cispo_vespo_by_s_over_k():
    s = step()
    s["old_logp"] = s["logp"].copy()
    m, A = s["mask"], s["advantages"][:, None]
    cfg = {"loss_type": "dapo", "steps_per_generation": 4, "per_device_train_batch_size": 1, "num_generations": 2}
    _, new = loss_and_grad("trl", cfg, micro_batches=[[0], [1]], **s)  # K = 2 of the S = 4 slices
    _, old = loss_and_grad("trl", cfg, micro_batches=[[0], [1]], version="1.9.0", **s)
    assert rel_err(new[:2], -2 * A[:2] * m[:2] / m.sum()) <= CLOSED_FORM  # S/(K N) = 2/N
    assert rel_err(old[:2], -A[:2] * m[:2] / m.sum()) <= CLOSED_FORM  # 1/N
    assert any("S/(K N)" in x for x in to_variant("trl", cfg).notes)


def test_pitfall_12_verl_grpo_vectorized_ignores_norm_adv_by_std_in_grpo():
    r = [1.0, 0.0, 0.0, 1.0]
    vec = advantages("verl", {"adv_estimator": "grpo_vectorized", "norm_adv_by_std_in_grpo": False}, r, [0] * 4)
    plain = advantages("verl", {"adv_estimator": "grpo", "norm_adv_by_std_in_grpo": False}, r, [0] * 4)
    assert plain.tolist() == [0.5, -0.5, -0.5, 0.5]
    assert vec[0] == pytest.approx(0.5 / (np.std(r, ddof=1) + 1e-6), rel=1e-14)
    cfg = {"adv_estimator": "grpo_vectorized", "norm_adv_by_std_in_grpo": False}
    assert to_variant("verl", cfg).advantage_kind == "std-group" and any("grpo_vectorized" in x for x in to_variant("verl", cfg).notes)


def test_pitfall_13_openrlhf_defaults_train_off_policy_and_clamp_rewards():
    assert to_variant("openrlhf", {}).mu == 8  # 1024 prompts x 1 sample / 128 per step
    assert {p.label: p.verdict for p in propositions("openrlhf", {})}["overshoot"] == "exposed"
    a = advantages("openrlhf", {"algo.advantage.estimator": "dr_grpo", "rollout.n_samples_per_prompt": 4}, [100.0, 0, 0, 0], [0] * 4)
    assert a.tolist() == [10.0, -10.0, -10.0, -10.0]  # 75, -25: clamped to --reward.clip_range [-10, 10]
