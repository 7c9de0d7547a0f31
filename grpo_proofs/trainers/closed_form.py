"""The closed-form gradient of a mapped trainer config (numpy; no autograd, no trainer code).

dL/dl_{i,t} = -omega_{i,t} A_i f_{i,t} + (KL part), with omega the SymPy weight of
:class:`~grpo_proofs.trainers.mapping.TrainerMapping` evaluated at the batch's numbers (K, b_k,
N_k, T_k, B, N, S, T_pad, L_i, L_max, C, S_g) and f the branch factor of the surrogate: PPO clip ``r 1`` (1 also requires r < delta for TRL delta, r < c on A < 0 with a
dual clip, |log r| < 20 where the trainer clamps), sequence ratios ``s_i 1_i``, TRL cispo
``min(r, eps_high)``, verl cispo ``clip(r, 1-eps_l, 1+eps_h)``, sapo ``r 4 sigma (1-sigma)``,
vespo ``Phi_i``, gpg ``1``, geo_mean ``coef_i 1^log`` with the token-mean advantage.

This is the mapping's own prediction, computed independently of the torch models in
``trl.py``/``verl.py``/``openrlhf.py``; :func:`mapped_gradient` and
:func:`grpo_proofs.trainers.loss_and_grad` must agree (claim ``trainers-loss-and-grad``).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .. import notation as n
from ..compile import to_numpy
from . import trainer_module
from ._common import prepare
from .mapping import TrainerMapping, to_variant

__all__ = ["mapped_gradient", "symbol_values"]

_ARGS = (n.K_acc, n.b_k, n.N_k, n.T_k, n.B_step, n.N_step, n.S_seq, n.T_pad, n.L_i, n.L_max, n.C_scale, n.S_gen)


def symbol_values(mp: TrainerMapping, mask: np.ndarray, micro_batches, max_completion_length=None) -> dict:
    """Per-token (B, T) arrays of the batch symbols for the step's micro-batches."""
    Bn, T = mask.shape
    L = mask.sum(-1)
    vals = {s: np.ones((Bn, T)) for s in _ARGS}
    vals[n.K_acc][:] = len(micro_batches)
    vals[n.B_step][:] = Bn
    vals[n.N_step][:] = max(mask.sum(), 1.0)
    vals[n.S_seq][:] = max((L > 0).sum(), 1)
    vals[n.T_pad][:] = T
    vals[n.L_i][:] = np.maximum(L, 1)[:, None]
    lmax = mp.constants.get(n.L_max, 1)
    if mp.trainer == "trl" and max_completion_length is not None:
        lmax = max_completion_length
    vals[n.L_max][:] = lmax
    vals[n.C_scale][:] = mp.constants.get(n.C_scale, 1.0)
    vals[n.S_gen][:] = mp.constants.get(n.S_gen, len(micro_batches))
    for rows in micro_batches:
        rows = np.asarray(rows)
        mk = mask[rows]
        active = np.flatnonzero(mk.sum(0))
        vals[n.b_k][rows] = len(rows)
        vals[n.N_k][rows] = max(mk.sum(), 1.0)
        vals[n.T_k][rows] = max_completion_length or (int(active.max()) + 1 if active.size else 1)
    return vals


def _evaluate(expr: sp.Expr, vals: dict, shape) -> np.ndarray:
    fn = to_numpy(_ARGS, expr)
    return np.broadcast_to(np.asarray(fn(*(vals[s] for s in _ARGS)), dtype=np.float64), shape).copy()


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _policy_factor(mp: TrainerMapping, lp, old, A, m) -> np.ndarray:
    """A_i f_{i,t} (the advantage is inside: geo_mean uses its token mean)."""
    c, lr = mp.config, lp - old
    clamps = mp.trainer != "trl"
    lo, hi = (c["epsilon"], c["_eps_high"]) if mp.trainer == "trl" else (c["_eps_low"], c["_eps_high"])
    L = np.maximum(m.sum(-1, keepdims=True), 1.0)
    if mp.surrogate == "geo-mean":
        Lg = np.maximum(m.sum(-1, keepdims=True), 1.0)
        sgn = np.sign(A)
        dprime = sgn * np.minimum(sgn * lr, sgn * np.clip(lr, -lo, hi))
        coef = np.exp((dprime * m).sum(-1, keepdims=True) / Lg)
        inside = np.where(A > 0, lr <= hi, lr >= -lo)
        return (A * m.sum(-1, keepdims=True) / Lg) * coef * inside
    if mp.sequence:
        logs = (lr * m).sum(-1, keepdims=True) / L
        r = np.exp(np.minimum(logs, 10.0)) if mp.trainer == "verl" else np.exp(logs)
        ok = logs <= 10.0 if mp.trainer == "verl" else np.ones_like(logs, dtype=bool)
    else:
        r = np.exp(np.clip(lr, -20, 20)) if clamps else np.exp(lr)
        ok = np.abs(lr) < 20 if clamps else np.ones_like(lr, dtype=bool)
    if mp.surrogate == "ppo-clip":
        ind = ((A > 0) & (r < 1 + hi)) | ((A < 0) & (r > 1 - lo))
        if mp.delta is not None:  # -min(min(r, delta) A, clip(r) A): A > 0 needs r < delta; A < 0 r < max(delta, 1+eps_h)
            ind &= np.where(A > 0, r < mp.delta, r < max(mp.delta, 1 + hi))
        if mp.dual_clip is not None:
            ind &= (A >= 0) | (r < mp.dual_clip)
        return A * r * ind * ok
    if mp.surrogate == "cispo-cap":
        return A * np.minimum(r, hi)
    if mp.surrogate == "cispo-clip":
        return A * np.clip(r, 1 - lo, 1 + hi)
    if mp.surrogate == "sapo":
        key = ("sapo_temperature_pos", "sapo_temperature_neg") if mp.trainer == "trl" else ("tau_pos", "tau_neg")
        tau = np.where(A > 0, c[key[0]], c[key[1]])
        sg = _sigmoid(tau * (r - 1.0))
        return A * r * 4.0 * sg * (1.0 - sg) * ok
    if mp.surrogate == "vespo":
        log_w = np.clip((np.clip(lr, -20, 20) * m).sum(-1, keepdims=True), np.log(1e-8), 20.0)
        pos = A >= 0
        k = np.where(pos, c["vespo_k_pos"], c["vespo_k_neg"])
        lam = np.maximum(np.where(pos, c["vespo_lambda_pos"], c["vespo_lambda_neg"]), 1e-4)
        with np.errstate(over="ignore", invalid="ignore"):
            phi = np.nan_to_num(np.exp(lam + k * log_w - lam * np.exp(log_w)), nan=0.0, posinf=0.0, neginf=0.0)
        return A * phi
    return A * np.ones_like(lr)  # reinforce (gpg)


def _kl_grad(mp: TrainerMapping, lp, ref, old):
    kind, d = mp.kl, lp - ref
    if mp.trainer == "trl":
        return 1.0 - np.exp(ref - lp)
    if mp.trainer == "openrlhf":
        if kind.endswith("+w"):  # unbiased_gradient: d/dl of min(r, 10) (l - l_ref)^2 / 2, weight detached
            return np.minimum(np.exp(lp - old), 10.0) * d
        k = np.maximum(d, -10.0)
        value = {"k1": d, "k2": d**2 / 2, "k3": np.exp(-k) - 1 + k}[kind]
        grad = {"k1": np.ones_like(d), "k2": d, "k3": (1.0 - np.exp(-d)) * (d > -10)}[kind]
        return grad * (np.abs(value) < 10)
    base = kind[:-1] if kind.endswith("+") else kind
    if kind.endswith("+") or base in ("mse", "k2"):
        return d
    if base in ("kl", "k1"):
        return np.ones_like(d)
    if base == "abs":
        return np.sign(d)
    x = ref - lp
    return (1.0 - np.exp(x)) * (np.abs(x) < 20) * (np.exp(x) - x - 1 < 10)


def mapped_gradient(trainer, config, *, logp, old_logp, advantages, mask, ref_logp=None, micro_batches=None,
                    max_completion_length=None, version=None) -> np.ndarray:
    """The gradient predicted by :func:`~grpo_proofs.trainers.to_variant` for one optimizer step.

    Same arguments as :func:`~grpo_proofs.trainers.loss_and_grad`; advantages must be one per
    completion (B,).
    """
    mp = to_variant(trainer, config, version=version)
    mod = trainer_module(trainer)
    bt = prepare(logp, old_logp, advantages, mask, ref_logp, micro_batches, max_completion_length,
                 per_token_advantages=False, cover_all_rows=mod.NAME != "trl", need_ref=mod.needs_ref(mp.config))
    lp, old, m = (x.detach().numpy() for x in (bt.logp, bt.old, bt.mask))
    Bn, T = m.shape
    A = np.broadcast_to(bt.adv.numpy()[:, None], (Bn, T))
    mbs = [r.numpy() for r in bt.micro_batches]
    in_step = np.zeros((Bn, 1), dtype=bool)
    in_step[np.concatenate(mbs)] = True
    vals = symbol_values(mp, m, mbs, bt.max_completion_length)
    c = mp.config
    luspo = mp.trainer == "trl" and c["loss_type"] == "luspo" and not mp.release.at_least("1.10")
    pol_pos = in_step & ((m > 0) | (luspo and not mp.sequence))
    factor = _policy_factor(mp, lp, old, A, m)
    if mp.trainer == "trl" and c["off_policy_mask_threshold"] is not None:
        drift = ((old - lp) * m).sum(-1, keepdims=True) / np.maximum(m.sum(-1, keepdims=True), 1.0)
        factor = factor * ((A >= 0) | (drift <= c["off_policy_mask_threshold"]))
    grad = np.where(pol_pos, -_evaluate(mp.weight, vals, m.shape) * factor, 0.0)
    if mp.kl is not None:
        ref = bt.ref.numpy()
        kl_pos = in_step & ((m > 0) | luspo)
        wk = np.where(kl_pos, _evaluate(mp.kl_weight, vals, m.shape), 0.0)
        dk = _kl_grad(mp, lp, ref, old)
        cross = 0.0
        if mp.kl == "k3*r":  # TRL bias-corrected: d(r k3) with r the token or the sequence ratio
            k3 = np.exp(ref - lp) - (ref - lp) - 1
            lr = lp - old
            if mp.sequence:  # s_i depends on every active token of row i: d s_i / d l_t = s_i m_t / |o_i|
                Lc = np.maximum(m.sum(-1, keepdims=True), 1.0)
                s = np.exp((lr * m).sum(-1, keepdims=True) / Lc)
                dk = s * dk
                cross = (s / Lc) * m * (wk * k3).sum(-1, keepdims=True)
            else:
                dk = np.exp(lr) * (k3 + dk)
        grad = grad + mp.kl_coef * (wk * dk + cross)
    return grad
