"""verl 0.9.1: loss and gradient against closed forms written here from its core_algos.

Weights: agg_loss with the engine's global info (dp_size 1, the mini-batch's B rows and N
tokens); seq-mean-token-mean and geo_mean divide by |o_i| (verl's |o_i| + 1e-8 is float32 and
rounds to |o_i|). Gradients: -w A f with the loss mode's branch factor, and the KL estimators'
derivatives. gspo follows loss_agg_mode; sapo forces seq-mean-token-mean. Independent numpy,
junk in the padding, one and two micro-batches, float64, 1e-12. (The release itself: the peers tests.)
"""

import numpy as np
import pytest

from grpo_proofs.errors import InputError
from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.checking.tolerances import CLOSED_FORM
from grpo_proofs.trainers import loss_and_grad

AGG = ["token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
MODES = ["vanilla", "gspo", "sapo", "gpg", "cispo", "geo_mean"]
SPLITS = {"one": None, "two": [[0, 3, 5], [1, 2, 4, 6]]}
LO, HI, C_DUAL = 0.2, 0.28, 1.5


def batch(seed, B=7, T=10, spread=0.3):
    rng = np.random.default_rng(seed)
    L = rng.integers(1, T, size=B)
    L[1] = T - 1
    mask = (np.arange(T)[None, :] < L[:, None]).astype(float)
    logp = -rng.uniform(0.3, 3.0, size=(B, T))
    old = logp + spread * rng.normal(size=(B, T))
    ref = logp + 0.5 * rng.normal(size=(B, T))
    pad = mask == 0
    for a in (logp, old, ref):
        a[pad] = rng.uniform(-4, 4, size=int(pad.sum()))
    return logp, old, ref, mask, rng.normal(size=B)


def agg_weight(mode, mask, mbs, C=None, width=None):
    """w_{i,t} of the agg_loss table (2.1, HEAD): the normalisers are those of the whole mini-batch."""
    B, T = mask.shape
    N, L = mask.sum(), mask.sum(-1)
    w = np.zeros((B, T))
    for rows in mbs or [list(range(B))]:
        longest = max(int(np.flatnonzero(mask[rows].sum(0)).max()) + 1, 1)
        for i in rows:
            w[i] = mask[i] * {
                "token-mean": 1 / N, "token-sum": 1.0, "seq-mean-token-sum": 1 / B,
                "seq-mean-token-mean": 1 / (B * L[i]),
                "seq-mean-token-sum-norm": 1 / (B * (C if C is not None else (width or longest))),
            }[mode]
    return w


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def expected_policy(mode, agg, logp, old, mask, A, mbs, C=None):
    """(loss, gradient) of the policy term, from the loss-mode table."""
    B, T = mask.shape
    a = A[:, None]
    lr = logp - old
    L = mask.sum(-1, keepdims=True)
    if mode == "geo_mean":  # torch.mean over each micro-batch's rows: -A_i coef_i m 1^log / (b_k |o_i|)
        abar = a
        clipped = np.where(a > 0, np.minimum(lr, np.clip(lr, -LO, HI)), np.maximum(lr, np.clip(lr, -LO, HI)))
        coef = np.exp((clipped * mask).sum(-1, keepdims=True) / L)
        inside = np.where(a > 0, lr < HI, lr > -LO)
        grad, loss = np.zeros((B, T)), 0.0
        for rows in mbs or [list(range(B))]:
            b = len(rows)
            grad[rows] = -(abar * coef)[rows] * mask[rows] * inside[rows] / (b * L[rows])
            loss += float(np.mean(-(abar * coef)[rows]))
        return loss, grad
    w = agg_weight("seq-mean-token-mean" if mode == "sapo" else agg, mask, mbs, C)
    r = np.exp(lr)
    if mode == "vanilla":  # dual clip always on: for A < 0 no gradient once r > c
        phi = np.where(a < 0, np.minimum(-a * C_DUAL, np.maximum(-a * r, -a * np.clip(r, 1 - LO, 1 + HI))),
                       np.maximum(-a * r, -a * np.clip(r, 1 - LO, 1 + HI)))
        ind = ((a > 0) & (r < 1 + HI)) | ((a < 0) & (r > 1 - LO) & (r < C_DUAL))
        return float((w * phi).sum()), -w * a * r * ind
    if mode == "gspo":  # -w A s_i 1_i (token-wise gradient of the sequence ratio)
        s = np.exp((lr * mask).sum(-1, keepdims=True) / np.maximum(L, 1))
        ind = ((a > 0) & (s < 1 + HI)) | ((a < 0) & (s > 1 - LO))
        phi = np.maximum(-a * s, -a * np.clip(s, 1 - LO, 1 + HI))
        return float((w * phi).sum()), -w * a * s * ind
    if mode == "sapo":
        tau = np.where(a > 0, 1.0, 1.05)
        sg = sigmoid(tau * (r - 1))
        return float((w * -(4 / tau) * sg * a).sum()), -w * a * r * 4 * sg * (1 - sg)
    if mode == "gpg":
        return float((w * -a * logp).sum()), -w * a
    cl = np.clip(r, 1 - LO, 1 + HI)  # cispo: two-sided clip of the stop-gradient weight
    return float((w * -cl * a * logp).sum()), -w * a * cl


def verl(cfg, logp, old, ref, mask, A, mbs, **kw):
    base = {"clip_ratio_low": LO, "clip_ratio_high": HI, "clip_ratio_c": C_DUAL}
    return loss_and_grad("verl", {**base, **cfg}, logp=logp, old_logp=old, advantages=A, mask=mask, ref_logp=ref,
                         micro_batches=mbs, **kw)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("agg", AGG)
@pytest.mark.parametrize("mode", MODES)
def test_loss_modes_times_aggregation(mode, agg, split):
    logp, old, ref, mask, A = batch(MODES.index(mode) * 10 + AGG.index(agg))
    logp = logp + 0.8 * mask * (np.arange(mask.shape[1]) % 4 == 1)  # some ratios past the dual-clip bound
    mbs = SPLITS[split]
    loss, grad = verl({"policy_loss": {"loss_mode": mode}, "loss_agg_mode": agg}, logp, old, ref, mask, A, mbs)
    exp_loss, exp_grad = expected_policy(mode, agg, logp, old, mask, A, mbs)
    assert rel_err(grad, exp_grad) <= CLOSED_FORM
    assert abs(loss - exp_loss) <= CLOSED_FORM * max(1.0, abs(exp_loss))
    assert np.all(grad[mask == 0] == 0.0)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("mode", ["vanilla", "gpg", "cispo"])
def test_seq_mean_token_sum_norm_with_loss_scale_factor(mode, split):
    logp, old, ref, mask, A = batch(40 + MODES.index(mode))
    mbs = SPLITS[split]
    cfg = {"policy_loss": {"loss_mode": mode}, "loss_agg_mode": "seq-mean-token-sum-norm", "loss_scale_factor": 37}
    loss, grad = verl(cfg, logp, old, ref, mask, A, mbs)
    exp_loss, exp_grad = expected_policy(mode, "seq-mean-token-sum-norm", logp, old, mask, A, mbs, C=37)
    assert rel_err(grad, exp_grad) <= CLOSED_FORM
    assert abs(loss - exp_loss) <= CLOSED_FORM * max(1.0, abs(exp_loss))


def test_seq_mean_token_sum_norm_padded_width_from_max_completion_length():
    logp, old, ref, mask, A = batch(50)
    _, grad = verl({"policy_loss": {"loss_mode": "gpg"}, "loss_agg_mode": "seq-mean-token-sum-norm"},
                   logp, old, ref, mask, A, SPLITS["two"], max_completion_length=64)
    w = agg_weight("seq-mean-token-sum-norm", mask, SPLITS["two"], width=64)
    assert rel_err(grad, -w * A[:, None]) <= CLOSED_FORM


KL = ["kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3", "k1+", "k3+"]


def kl_value_and_grad(kind, logp, ref):
    d = logp - ref
    base = kind.rstrip("+")
    if base in ("kl", "k1"):
        v, g = d, np.ones_like(d)
    elif base == "abs":
        v, g = np.abs(d), np.sign(d)
    elif base in ("mse", "k2"):
        v, g = 0.5 * d**2, d
    else:  # low_var_kl: x = clamp(ref - l, +-20), e^x - x - 1 clamped to [-10, 10]
        x = np.clip(ref - logp, -20, 20)
        raw = np.exp(x) - x - 1
        v, g = np.clip(raw, -10, 10), (1 - np.exp(x)) * (raw < 10) * (np.abs(ref - logp) < 20)
    if kind.endswith("+"):
        g = d  # straight-through: value of the base estimator, gradient of k2
    return v, g


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
@pytest.mark.parametrize("kind", KL)
def test_kl_loss_types(kind, agg, split):
    logp, old, ref, mask, A = batch(60 + KL.index(kind))
    ref = ref + 3.5 * mask * (np.arange(mask.shape[1]) % 3 == 0)  # some k3 values past the clamp at 10
    mbs = SPLITS[split]
    cfg = {"policy_loss": {"loss_mode": "gpg"}, "loss_agg_mode": agg, "use_kl_loss": True, "kl_loss_type": kind,
           "kl_loss_coef": 0.3}
    loss, grad = verl(cfg, logp, old, ref, mask, A, mbs)
    w = agg_weight(agg, mask, mbs)
    v, g = kl_value_and_grad(kind, logp, ref)
    pol_loss, pol_grad = expected_policy("gpg", agg, logp, old, mask, A, mbs)
    assert rel_err(grad, pol_grad + 0.3 * w * g) <= CLOSED_FORM
    assert abs(loss - (pol_loss + 0.3 * float((w * v).sum()))) <= CLOSED_FORM * max(1.0, abs(loss))


def test_kl_uses_loss_agg_mode_even_when_sapo_forces_its_own():
    logp, old, ref, mask, A = batch(70)
    mbs = SPLITS["two"]
    cfg = {"policy_loss": {"loss_mode": "sapo"}, "loss_agg_mode": "token-sum", "use_kl_loss": True,
           "kl_loss_type": "k1", "kl_loss_coef": 0.5}
    _, grad = verl(cfg, logp, old, ref, mask, A, mbs)
    _, pol = expected_policy("sapo", "token-sum", logp, old, mask, A, mbs)
    assert rel_err(grad, pol + 0.5 * mask) <= CLOSED_FORM


def test_per_token_advantages_are_accepted():
    logp, old, ref, mask, A = batch(71)
    _, g1 = verl({"policy_loss": {"loss_mode": "gpg"}}, logp, old, ref, mask, A, None)
    At = A[:, None] * mask + 9.0 * (mask == 0)  # (B, T) with junk in the padding
    _, g2 = verl({"policy_loss": {"loss_mode": "gpg"}}, logp, old, ref, mask, At, None)
    assert rel_err(g1, g2) == 0.0


@pytest.mark.parametrize("mode", ["clip_cov", "kl_cov", "dppo_tv", "dro"])
def test_unmodelled_loss_modes_are_refused(mode):
    logp, old, ref, mask, A = batch(72)
    with pytest.raises(InputError, match="modelled loss modes"):
        verl({"policy_loss": {"loss_mode": mode}}, logp, old, ref, mask, A, None)
