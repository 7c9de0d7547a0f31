"""TRL 1.16.0 and 1.9.0: loss and gradient against closed forms written here from GRPOTrainer._compute_loss.

The expected values below are computed in numpy from each loss type's per-token weight w_{i,t}
and its closed-form gradient (PPO clip -w A r 1, cispo -w A min(r, eps_high), sapo
-w A r 4 sigma (1 - sigma), vespo -w Phi_i A; the sequence-level rule -c_i A s_i 1_i m/|o_i|; the
k3 KL term with and without the ratio); nothing is shared with the torch model in
grpo_proofs/trainers/trl.py. The releases differ in luspo (1.16.0 masks it: m/(K b_k); 1.9.0
averages over padding: |o_i|/(K b_k T)) and in dapo/cispo/vespo's S/K factor (tested apart).
Padding holds junk, float64, 1e-12. (The release itself: the peers tests.)
"""

import numpy as np
import pytest

from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.checking.tolerances import CLOSED_FORM
from grpo_proofs.trainers import loss_and_grad

LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"]
SPLITS = {"one": None, "two": [[0, 2, 3], [1, 4, 5, 6]]}
L_MAX = 13


def batch(seed, B=7, T=10):
    rng = np.random.default_rng(seed)
    L = rng.integers(1, T + 1, size=B)
    L[0] = T - 2  # padding everywhere, some rows long
    mask = (np.arange(T)[None, :] < L[:, None]).astype(float)
    logp = -rng.uniform(0.3, 3.0, size=(B, T))
    old = logp + 0.3 * rng.normal(size=(B, T))
    ref = logp + 0.4 * rng.normal(size=(B, T))
    pad = mask == 0
    for a in (logp, old, ref):
        a[pad] = rng.uniform(-4, 4, size=int(pad.sum()))  # junk: a masking error shows up
    A = rng.normal(size=B)
    return logp, old, ref, mask, A


def table_weight(loss_type, mask, mbs, L_max, version="1.16.0"):
    """w_{i,t} (token level); luspo's covers every t (padding included) in 1.9.0."""
    B, T = mask.shape
    mbs = mbs or [list(range(B))]
    K, N_gen = len(mbs), max(mask.sum(), 1.0)
    w = np.zeros((B, T))
    for rows in mbs:
        b, N_k = len(rows), max(mask[rows].sum(), 1.0)
        for i in rows:
            Li = mask[i].sum()
            if loss_type in ("grpo", "sapo"):
                w[i] = mask[i] / (K * b * max(Li, 1.0))
            elif loss_type == "bnpo":
                w[i] = mask[i] / (K * N_k)
            elif loss_type == "dr_grpo":
                w[i] = mask[i] / (K * b * L_max)
            elif loss_type in ("dapo", "cispo", "vespo"):
                w[i] = mask[i] / N_gen
            elif version == "1.16.0":  # luspo: (L * m).sum(-1).mean() / K
                w[i] = mask[i] / (K * b)
            else:  # luspo, 1.9.0: mean over b*T entries of L * |o_i|
                w[i] = Li / (K * b * T)
    return w


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def expected(loss_type, level, beta, bias, logp, old, ref, mask, A, mbs, eps=0.2, eps_high=0.28, delta=None,
             version="1.16.0"):
    """(loss, gradient) from the closed forms."""
    B, T = mask.shape
    mbs = mbs or [list(range(B))]
    w = table_weight(loss_type, mask, mbs, L_MAX, version)
    rows_in = np.zeros((B, 1), bool)
    rows_in[sum(mbs, [])] = True
    b_of = np.zeros((B, 1))
    for rows in mbs:
        b_of[rows] = len(rows)
    Acol = A[:, None]
    lr = logp - old
    Lc = np.maximum(mask.sum(-1, keepdims=True), 1.0)
    s = np.exp((lr * mask).sum(-1, keepdims=True) / Lc)
    ratio = np.exp(lr) if level == "token" else np.broadcast_to(s, (B, T))
    clip = np.clip(ratio, 1 - eps, 1 + eps_high)
    if loss_type in ("grpo", "bnpo", "dr_grpo", "dapo", "luspo"):
        rt = np.minimum(ratio, delta) if delta else ratio
        phi = -np.minimum(rt * Acol, clip * Acol)
        ind = ((Acol > 0) & (ratio < 1 + eps_high)) | ((Acol < 0) & (ratio > 1 - eps))
        if delta:
            ind &= ratio < delta
        f = ratio * ind
    elif loss_type == "cispo":
        phi = -np.minimum(ratio, eps_high) * Acol * logp
        f = np.minimum(ratio, eps_high)
    elif loss_type == "sapo":
        tau = np.where(Acol > 0, 1.0, 1.05)
        sg = sigmoid(tau * (ratio - 1))
        phi = -(4 / tau) * sg * Acol
        f = ratio * 4 * sg * (1 - sg)
    else:  # vespo: Phi_i from the clamped *sum* of token log-ratios; no ratio level
        logw = np.clip((np.clip(lr, -20, 20) * mask).sum(-1, keepdims=True), np.log(1e-8), 20)
        k, lam = np.where(Acol >= 0, 2.0, 3.0), np.where(Acol >= 0, 3.0, 2.0)
        Phi = np.exp(lam + k * logw - lam * np.exp(logw))
        phi = -Phi * Acol * logp
        f = np.broadcast_to(Phi, (B, T))
    if level == "sequence" and loss_type not in ("vespo", "cispo"):
        # the (B, 1) value phi_i(s_i) is broadcast: sequence weight c_i, gradient -c_i A s_i 1_i m / |o_i|
        c = mask.sum(-1, keepdims=True) / (len(mbs) * b_of) if loss_type == "luspo" else (w * mask).sum(-1, keepdims=True)
        c = c * rows_in
        grad = -(c / Lc) * Acol * f * mask
        loss = float((c * phi[:, :1]).sum())
    else:
        grad = -w * Acol * f * rows_in
        loss = float((w * phi * rows_in).sum())
    if beta:
        x = ref - logp
        k3 = np.exp(x) - x - 1
        dk3 = 1 - np.exp(x)
        wk = w * rows_in
        if not bias:
            grad = grad + beta * wk * dk3
            loss += beta * float((wk * k3).sum())
        elif level == "token":
            r = np.exp(lr)
            grad = grad + beta * wk * r * (k3 + dk3)
            loss += beta * float((wk * r * k3).sum())
        else:  # beta * sum_t w_t s_i k3_t, with s_i depending on every active token of the row
            grad = grad + beta * (wk * s * dk3 + (s / Lc) * mask * (wk * k3).sum(-1, keepdims=True))
            loss += beta * float((wk * s * k3).sum())
    return loss, grad


def run(cfg, logp, old, ref, mask, A, mbs, version="1.16.0"):
    return loss_and_grad("trl", {**cfg, "max_completion_length": L_MAX}, logp=logp, old_logp=old, advantages=A,
                         mask=mask, ref_logp=ref, micro_batches=mbs, version=version)


@pytest.mark.parametrize("version", ["1.16.0", "1.9.0"])
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_every_loss_type_both_levels(loss_type, level, split, version):
    logp, old, ref, mask, A = batch(hash((loss_type, level, split)) % 2**32)
    mbs = SPLITS[split]
    cfg = {"loss_type": loss_type, "importance_sampling_level": level, "epsilon_high": 0.28}
    loss, grad = run(cfg, logp, old, ref, mask, A, mbs, version)
    exp_loss, exp_grad = expected(loss_type, level, 0.0, False, logp, old, ref, mask, A, mbs, version=version)
    assert rel_err(grad, exp_grad) <= CLOSED_FORM
    assert abs(loss - exp_loss) <= CLOSED_FORM * max(1.0, abs(exp_loss))
    if not (loss_type == "luspo" and level == "token" and version == "1.9.0"):
        assert np.all(grad[mask == 0] == 0.0)


@pytest.mark.parametrize("version", ["1.16.0", "1.9.0"])
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo", "cispo", "luspo"])
def test_kl_in_the_loss_with_and_without_bias_correction(loss_type, level, bias, split, version):
    logp, old, ref, mask, A = batch(7 + LOSS_TYPES.index(loss_type))
    mbs = SPLITS[split]
    cfg = {"loss_type": loss_type, "importance_sampling_level": level, "epsilon_high": 0.28, "beta": 0.07,
           "use_bias_correction_kl": bias}
    loss, grad = run(cfg, logp, old, ref, mask, A, mbs, version)
    exp_loss, exp_grad = expected(loss_type, level, 0.07, bias, logp, old, ref, mask, A, mbs, version=version)
    assert rel_err(grad, exp_grad) <= CLOSED_FORM
    assert abs(loss - exp_loss) <= CLOSED_FORM * max(1.0, abs(exp_loss))


@pytest.mark.parametrize("split", SPLITS)
def test_delta_two_sided_clip(split):
    logp, old, ref, mask, A = batch(3)
    logp = logp + 1.6 * mask * (np.arange(mask.shape[1]) % 3 == 0)  # ratios far above 1 + eps, some above delta
    mbs = SPLITS[split]
    loss, grad = run({"loss_type": "grpo", "epsilon_high": 0.28, "delta": 4.0}, logp, old, ref, mask, A, mbs)
    exp_loss, exp_grad = expected("grpo", "token", 0, False, logp, old, ref, mask, A, mbs, delta=4.0)
    r = np.exp(logp - old)
    assert ((r > 4.0) & (mask > 0) & (A[:, None] < 0)).any()  # the delta cap is exercised
    assert rel_err(grad, exp_grad) <= CLOSED_FORM
    assert abs(loss - exp_loss) <= CLOSED_FORM * max(1.0, abs(exp_loss))


def test_delta_below_one_plus_eps_keeps_the_clip_for_negative_advantages():
    """-min(min(r, d) A, clip(r) A): for A < 0 the clip term carries the gradient up to max(d, 1 + eps_high)."""
    logp, old, ref, mask, A = batch(4)
    old = logp - np.log(1.15)  # every ratio 1.15: between delta = 1.1 and 1 + eps_high = 1.28
    _, grad = run({"loss_type": "dapo", "epsilon_high": 0.28, "delta": 1.1}, logp, old, ref, mask, A, None)
    w = mask / mask.sum()
    exp = np.where(A[:, None] < 0, -w * A[:, None] * 1.15, 0.0)
    assert rel_err(grad, exp) <= CLOSED_FORM


def test_off_policy_sequence_mask():
    logp, old, ref, mask, A = batch(5)
    old = logp + np.linspace(0.0, 0.6, len(A))[:, None] + 0.05 * np.sin(np.arange(mask.shape[1]))  # drifts 0..0.6
    drift = ((old - logp) * mask).sum(-1) / mask.sum(-1)
    thr = 0.3
    _, grad = run({"loss_type": "dapo", "off_policy_mask_threshold": thr}, logp, old, ref, mask, A, None)
    _, plain = run({"loss_type": "dapo"}, logp, old, ref, mask, A, None)
    keep = (A >= 0) | (drift <= thr)
    assert not keep.all() and keep.any()
    assert rel_err(grad, plain * keep[:, None]) <= CLOSED_FORM


def test_sequence_token_rows_left_out_belong_to_other_steps():
    """dapo divides by the whole generation batch even when the step sees only part of it."""
    logp, old, ref, mask, A = batch(6)
    _, part = run({"loss_type": "dapo"}, logp, old, ref, mask, A, [[0, 1, 2]])
    _, full = run({"loss_type": "dapo"}, logp, old, ref, mask, A, [[0, 1, 2], [3, 4, 5, 6]])
    assert np.all(part[3:] == 0) and rel_err(part[:3], full[:3]) <= CLOSED_FORM


def test_max_completion_length_keyword_and_config_must_agree():
    from grpo_proofs.errors import InputError

    logp, old, ref, mask, A = batch(8)
    kw = dict(logp=logp, old_logp=old, advantages=A, mask=mask)
    _, g1 = loss_and_grad("trl", {"loss_type": "dr_grpo"}, max_completion_length=20, **kw)
    _, g2 = loss_and_grad("trl", {"loss_type": "dr_grpo", "max_completion_length": 20}, **kw)
    assert rel_err(g1, g2) == 0.0
    with pytest.raises(InputError, match="max_completion_length"):
        loss_and_grad("trl", {"loss_type": "dr_grpo", "max_completion_length": 30}, max_completion_length=20, **kw)


@pytest.mark.parametrize("loss_type", ["dapo", "cispo", "vespo"])
def test_steps_per_generation_rescales_the_token_mean_in_1_16_only(loss_type):
    """1.16.0 divides by num_items_in_batch * K / S: two slices per step of a 4-slice generation weigh 4/(2 N)."""
    logp, old, ref, mask, A = batch(12)
    cfg = {"loss_type": loss_type, "steps_per_generation": 4, "per_device_train_batch_size": 2, "num_generations": 2}
    mbs = [[0, 1], [2, 3]]  # K = 2 of the S = 4 slices (rows 4-6 belong to the other optimizer step)
    _, new = run(cfg, logp, old, ref, mask, A, mbs)
    _, old_formula = run(cfg, logp, old, ref, mask, A, mbs, "1.9.0")
    assert np.any(new != 0) and np.all(new[4:] == 0) and rel_err(new, 2.0 * old_formula) <= CLOSED_FORM
    if loss_type == "dapo":  # 1.9.0: 1/N_gen
        exp = expected("dapo", "token", 0, False, logp, old, ref, mask, A, mbs, eps_high=0.2)[1]
        assert rel_err(old_formula, exp) <= CLOSED_FORM


def test_kl_default_follows_the_release():
    logp, old, ref, mask, A = batch(13)
    cfg = {"loss_type": "grpo", "beta": 0.07, "epsilon_high": 0.28}
    _, g16 = run(cfg, logp, old, ref, mask, A, None)
    _, g19 = run(cfg, logp, old, ref, mask, A, None, "1.9.0")
    assert rel_err(g16, expected("grpo", "token", 0.07, True, logp, old, ref, mask, A, None)[1]) <= CLOSED_FORM
    assert rel_err(g19, expected("grpo", "token", 0.07, False, logp, old, ref, mask, A, None)[1]) <= CLOSED_FORM
