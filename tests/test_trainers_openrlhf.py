"""OpenRLHF 0.11.2 (PolicyLoss, aggregate_loss, compute_approx_kl) against closed forms written here.

ppo with --actor.loss_agg_mode token-mean: w = m/N over the whole optimizer step, gradient
-w A r 1 (1 also needs r < c with a dual clip and |log r| < 20); gspo, or seq-mean-token-mean:
w = m/(|o_i| S) (gspo: the full-gradient sequence ratio, gradient -A s_i 1_i / (|o_i| S)); KL
k1-k3 (k3's log-ratio floored at -10) clamped to +-10, in the loss with ``algo.kl.use_loss``, a
token mean whatever the policy aggregation; with ``algo.kl.unbiased_gradient`` the gradient is
min(r, 10) (l - l_ref). Junk padding, one and two micro-batches. (The release itself: the peers tests.)
"""

import numpy as np
import pytest

from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.checking.tolerances import CLOSED_FORM
from grpo_proofs.trainers import loss_and_grad

SPLITS = {"one": None, "two": [[0, 1, 5], [2, 3, 4]]}
LO, HI = 0.2, 0.28


def batch(seed, B=6, T=8):
    rng = np.random.default_rng(seed)
    L = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < L[:, None]).astype(float)
    logp = -rng.uniform(0.3, 3.0, size=(B, T))
    old = logp + 0.3 * rng.normal(size=(B, T))
    old[0, 0] -= 25.0  # a log-ratio beyond the +-20 clamp
    ref = logp + 0.5 * rng.normal(size=(B, T))
    ref[1, :2] += 4.0  # k3 beyond its clamp at 10
    pad = mask == 0
    for a in (logp, old, ref):
        a[pad] = rng.uniform(-4, 4, size=int(pad.sum()))
    return logp, old, ref, mask, rng.normal(size=B)


def expected(policy, dual, logp, old, mask, A, agg="token-mean"):
    a = A[:, None]
    lr = logp - old
    L = mask.sum(-1, keepdims=True)
    if policy == "ppo":
        r = np.exp(np.clip(lr, -20, 20))
        inside = np.abs(lr) < 20
    else:
        r = np.broadcast_to(np.exp((lr * mask).sum(-1, keepdims=True) / np.maximum(L, 1)), mask.shape)
        inside = np.ones_like(r, bool)
    if policy == "ppo" and agg == "token-mean":
        w = mask / mask.sum()
    else:
        w = mask / (np.maximum(L, 1) * (L > 0).sum())
    clip = np.clip(r, 1 - LO, 1 + HI)
    ppo = np.minimum(r * a, clip * a)
    phi = -np.where((a < 0) & (dual is not None), np.maximum(ppo, (dual or 0) * a), ppo)
    ind = ((a > 0) & (r < 1 + HI)) | ((a < 0) & (r > 1 - LO) & ((dual is None) | (r < (dual or 0))))
    return float((w * phi).sum()), -w * a * r * ind * inside, w


def kl(kind, logp, ref, old=None):
    d = logp - ref
    k = np.maximum(d, -10)
    v = {"k1": d, "k2": d**2 / 2, "k3": np.exp(-k) - 1 + k}[kind]
    g = {"k1": np.ones_like(d), "k2": d, "k3": (1 - np.exp(-d)) * (d > -10)}[kind]
    if old is not None:  # unbiased gradient: value of the estimator, gradient of min(r, 10) d^2 / 2
        return np.clip(v, -10, 10), np.minimum(np.exp(logp - old), 10.0) * d
    return np.clip(v, -10, 10), g * (np.abs(v) < 10)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("dual", [None, 1.4])
@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
@pytest.mark.parametrize("policy", ["ppo", "gspo"])
def test_policy_loss_token_and_sample_level_and_dual_clip(policy, agg, dual, split):
    logp, old, ref, mask, A = batch(hash((policy, dual, split)) % 2**32)
    logp = logp + 0.7 * mask * (np.arange(mask.shape[1]) % 3 == 2)
    cfg = {"policy_loss_type": policy, "eps_clip_low_high": [LO, HI], "dual_clip": dual, "actor.loss_agg_mode": agg}
    loss, grad = loss_and_grad("openrlhf", cfg, logp=logp, old_logp=old, advantages=A, mask=mask, micro_batches=SPLITS[split])
    exp_loss, exp_grad, _ = expected(policy, dual, logp, old, mask, A, agg)
    assert rel_err(grad, exp_grad) <= CLOSED_FORM
    assert abs(loss - exp_loss) <= CLOSED_FORM * max(1.0, abs(exp_loss))
    assert np.all(grad[mask == 0] == 0.0)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("policy", ["ppo", "gspo"])
@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_estimators_in_the_loss_are_a_token_mean(kind, policy, unbiased, split):
    logp, old, ref, mask, A = batch(11 + ["k1", "k2", "k3"].index(kind))
    ref[2, :3] += 12.0  # k3's log-ratio below its floor of -10
    cfg = {"policy_loss_type": policy, "eps_clip_low_high": [LO, HI], "use_kl_loss": True, "kl_estimator": kind,
           "init_kl_coef": 0.2, "algo.kl.unbiased_gradient": unbiased}
    loss, grad = loss_and_grad("openrlhf", cfg, logp=logp, old_logp=old, advantages=A, mask=mask, ref_logp=ref,
                               micro_batches=SPLITS[split])
    pol_loss, pol_grad, _ = expected(policy, None, logp, old, mask, A)
    w = mask / mask.sum()  # the KL loss: a token mean over the step, also for gspo
    v, g = kl(kind, logp, ref, old if unbiased else None)
    assert rel_err(grad, pol_grad + 0.2 * w * g) <= CLOSED_FORM
    assert abs(loss - (pol_loss + 0.2 * float((w * v).sum()))) <= CLOSED_FORM * max(1.0, abs(loss))


def test_no_kl_term_without_a_positive_coefficient():
    logp, old, ref, mask, A = batch(30)
    kw = dict(logp=logp, old_logp=old, advantages=A, mask=mask)
    _, g0 = loss_and_grad("openrlhf", {}, **kw)
    _, g1 = loss_and_grad("openrlhf", {"algo.kl.use_loss": True, "algo.kl.init_coef": 0.0}, ref_logp=ref, **kw)
    assert rel_err(g1, g0) == 0.0


def test_eps_clip_is_symmetric_without_low_high_and_dotted_names_work():
    logp, old, ref, mask, A = batch(20)
    kw = dict(logp=logp, old_logp=old, advantages=A, mask=mask)
    _, g1 = loss_and_grad("openrlhf", {"eps_clip": 0.1}, **kw)
    _, g2 = loss_and_grad("openrlhf", {"actor.eps_clip_low_high": [0.1, 0.1]}, **kw)
    assert rel_err(g1, g2) == 0.0
