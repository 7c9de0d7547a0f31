"""Advantage estimators of TRL, verl 0.9.1 and OpenRLHF 0.11.2, against per-group loops written here.

The loops are written from the releases' estimator code (TRL ``_generate_and_score_completions``,
verl ``core_algos.compute_*_outcome_advantage`` as ``compute_advantage`` calls them, OpenRLHF
``compute_advantages_and_returns``) in plain Python; the peers tests run the releases themselves.
"""

import math
import statistics

import numpy as np
import pytest

from grpo_proofs.errors import InputError
from grpo_proofs.trainers import advantages

R = [1.0, 0.0, 0.5, 2.0, 3.0, 3.0, -1.0, 0.0, 4.0]
IDS = [0, 0, 0, 1, 1, 1, 2, 2, 2]
LENS = [3, 5, 2, 7, 1, 4, 6, 6, 2]


def by_group(r, ids):
    out = {}
    for i, g in enumerate(ids):
        out.setdefault(g, []).append(i)
    return out


def close(a, b):
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("scale", ["group", "batch", "none", True, False])
def test_trl_scale_rewards(scale):
    got = advantages("trl", {"scale_rewards": scale}, R, IDS)
    groups = by_group(R, IDS)
    exp = []
    for i, g in enumerate(IDS):
        vals = [R[j] for j in groups[g]]
        a = R[i] - statistics.fmean(vals)
        if scale in ("group", True):
            a /= statistics.stdev(vals) + 1e-4
        elif scale == "batch":
            a /= statistics.stdev(R) + 1e-4
        exp.append(a)
    assert close(got, exp)


def test_trl_several_reward_functions():
    rng = np.random.default_rng(0)
    Rm = rng.normal(size=(9, 2))
    w = [1.0, 0.5]
    got = advantages("trl", {"reward_weights": w}, Rm, IDS)
    total = Rm @ np.array(w)
    assert close(got, advantages("trl", {}, total, IDS))
    got = advantages("trl", {"reward_weights": w, "multi_objective_aggregation": "normalize_then_sum"}, Rm, IDS)
    groups = by_group(total, IDS)
    x = []
    for i, g in enumerate(IDS):
        s = 0.0
        for j in range(2):
            vals = [Rm[k, j] for k in groups[g]]
            s += w[j] * (Rm[i, j] - statistics.fmean(vals)) / (statistics.stdev(vals) + 1e-4)
        x.append(s)
    assert close(got, [(v - statistics.fmean(x)) / (statistics.stdev(x) + 1e-4) for v in x])


def verl_loop(est, r, ids, lens=None, norm=True):
    eps = 1e-6
    groups = by_group(r, ids)
    out = [0.0] * len(r)
    for g, rows in groups.items():
        vals = [r[i] for i in rows]
        n = len(vals)
        mean = statistics.fmean(vals) if n > 1 else 0.0
        for i in rows:
            if est == "grpo":
                std = statistics.stdev(vals) if n > 1 else 1.0
                out[i] = (r[i] - mean) / (std + eps) if norm else r[i] - mean
            elif est == "rloo":
                out[i] = r[i] - statistics.fmean([r[j] for j in rows if j != i]) if n > 1 else r[i]
            elif est == "rloo_vectorized":
                out[i] = r[i] - statistics.fmean([r[j] for j in rows if j != i]) if n > 1 else 0.0
            elif est == "opo":
                base = sum(lens[j] * r[j] for j in rows) / sum(lens[j] for j in rows) if n > 1 else 0.0
                out[i] = r[i] - base
            elif est == "gpg":
                alpha = len(r) / max(sum(1 for v in r if v != 0), 1)
                out[i] = alpha * (r[i] - mean)
            elif est == "reinforce_plus_plus_baseline":
                out[i] = r[i] - mean
        if est == "grpo_passk":
            order = sorted(rows, key=lambda j: -r[j])
            out[order[0]] = (r[order[0]] - r[order[1]]) / ((statistics.stdev(vals) + eps) if norm else 1.0)
    if est == "reinforce_plus_plus_baseline":  # masked_whiten over every token: unbiased var, rsqrt(var + 1e-8)
        toks = [out[i] for i in range(len(r)) for _ in range(lens[i])]
        mu, var = statistics.fmean(toks), statistics.variance(toks)
        out = [(v - mu) / math.sqrt(var + 1e-8) for v in out]
    return out


@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("est", ["grpo", "grpo_vectorized", "grpo_passk", "rloo", "rloo_vectorized",
                                 "reinforce_plus_plus_baseline", "opo", "gpg"])
def test_verl_estimators(est, norm):
    got = advantages("verl", {"adv_estimator": est, "norm_adv_by_std_in_grpo": norm}, R, IDS, lengths=LENS)
    # grpo_vectorized is called without norm_adv_by_std_in_grpo by verl: it always divides by the std
    exp = verl_loop("grpo" if est == "grpo_vectorized" else est, R, IDS, LENS, norm or est == "grpo_vectorized")
    assert close(got, exp)


@pytest.mark.parametrize("est", ["group_norm", "dr_grpo", "rloo", "reinforce_baseline", "flash_reinforce"])
@pytest.mark.parametrize("no_std", [False, True])
@pytest.mark.parametrize("scale", [1.0, 7.0])
def test_openrlhf_estimators(est, no_std, scale):
    r = [scale * x for x in R]  # 7: shaped rewards past the clip range [-10, 10]
    cfg = {"algo.advantage.estimator": est, "algo.advantage.no_std_norm": no_std, "rollout.n_samples_per_prompt": 3}
    got = advantages("openrlhf", cfg, r, IDS, lengths=LENS)
    groups = by_group(r, IDS)
    exp = []
    for i, g in enumerate(IDS):
        vals = [r[j] for j in groups[g]]
        if est == "group_norm":
            x = (r[i] - statistics.fmean(vals)) / (statistics.stdev(vals) + 1e-9)
        elif est == "rloo":
            x = r[i] - statistics.fmean([r[j] for j in groups[g] if j != i])
        elif est == "flash_reinforce":
            x = r[i] - statistics.fmean(r)
        else:
            x = r[i] - statistics.fmean(vals)
        exp.append(min(max(x, -10.0), 10.0))  # --reward.clip_range (-10, 10), applied to the shaped reward
    if est == "reinforce_baseline":  # whitened over all action tokens, biased variance, rsqrt(max(var, 1e-8))
        toks = [exp[i] for i in range(len(R)) for _ in range(LENS[i])]
        mu, var = statistics.fmean(toks), statistics.pvariance(toks)
        exp = [v - mu if no_std else (v - mu) / math.sqrt(max(var, 1e-8)) for v in exp]
    assert close(got, exp)


def test_openrlhf_group_estimators_need_more_than_one_sample_per_prompt():
    with pytest.raises(InputError, match="n_samples_per_prompt > 1"):
        advantages("openrlhf", {"algo.advantage.estimator": "group_norm"}, R, IDS)
    with pytest.raises(InputError, match="n_samples_per_prompt=4 but the groups have 3"):
        advantages("openrlhf", {"algo.advantage.estimator": "rloo", "rollout.n_samples_per_prompt": 4}, R, IDS)


def test_token_weighted_estimators_need_lengths():
    with pytest.raises(InputError, match="lengths"):
        advantages("verl", {"adv_estimator": "opo"}, R, IDS)


@pytest.mark.parametrize("trainer,cfg", [("verl", {}), ("openrlhf", {}), ("verl", {"adv_estimator": "remax"})])
def test_critic_and_other_estimators_are_refused(trainer, cfg):
    with pytest.raises(InputError, match="group estimators"):
        advantages(trainer, cfg, R, IDS)


@pytest.mark.parametrize("bad", [[1.0, float("nan")], [[1.0, 2.0]], "ab"])
def test_bad_rewards(bad):
    with pytest.raises(InputError):
        advantages("trl", {}, bad, [0, 0])
