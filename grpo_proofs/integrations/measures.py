"""The audit's measurements on one optimizer step's batch (numpy, float64; no trainer code).

Inputs are the step's rows of the generation batch: the completion mask m (B, T), the token ids,
the advantages A (B,), the per-token log-probs the trainer computed and the behaviour log-probs,
plus two per-token gradients of the loss L with respect to the log-probs, each -A omega f:

* ``g_policy``: the trainer's own (its ``_compute_loss`` through autograd, KL part removed);
* the mapped one (:func:`grpo_proofs.trainers.mapped_gradient`), and the mapped weight w (the
  gradient per unit advantage at r = 1).

The loss is minimised, so the objective is J = -L and dJ/dl_{i,t} = A_i omega_{i,t} = -g.

>>> import numpy as np
>>> rows = np.array([0, 1, 2, 3])
>>> keys = [(5,), (5,), (5,), (5,)]
>>> ids = np.array([[1, 2, 3], [1, 2, 0], [1, 3, 0], [1, 2, 2]]); m = np.array([[1, 1, 1], [1, 1, 0], [1, 1, 0], [1, 1, 1]])
>>> [g.tolist() for g in prompt_groups(keys, rows)], common_prefix(ids, m, rows)
([[0, 1, 2, 3]], 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..props.overshoot.api import overshoot_ratio
from ..runtime.adam import noninvariant_threshold

__all__ = ["prompt_groups", "common_prefix", "weight_metrics", "prefix_metrics", "clip_masks", "clip_metrics",
           "OvershootTracker", "scale_metrics", "loss_metrics", "SCALE_TOL", "LENGTH_RTOL", "PPO_LOSSES"]

#: Prop. 2: a coordinate counts as changed when its preconditioned step changes by more than this (relative)
SCALE_TOL = 1e-3
#: a prefix is "pushed by length" when the length-only part of W exceeds this share of sum_i |A_i w_i|
LENGTH_RTOL = 1e-2
#: TRL loss types with the PPO clip (a zero-gradient clipped region; Prop. 4's r = 1 value -sum_i A_i Omega_i)
PPO_LOSSES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo")


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def prompt_groups(keys, rows) -> list[np.ndarray]:
    """The step's rows grouped by identical prompt (``keys[i]``: the prompt's tokens), groups of >= 2 rows."""
    where: dict = {}
    for r in rows:
        where.setdefault(keys[int(r)], []).append(int(r))
    return [np.array(g) for g in where.values() if len(g) >= 2]


def common_prefix(ids: np.ndarray, mask: np.ndarray, group) -> int:
    """k: the completions of ``group`` share their first k tokens (each one inside every completion's mask)."""
    sub_ids, sub_m = ids[group], mask[group] > 0
    same = np.all(sub_ids == sub_ids[:1], axis=0) & np.all(sub_m, axis=0)
    bad = np.flatnonzero(~same)
    return int(bad[0]) if bad.size else int(same.size)


def weight_metrics(w_trainer: np.ndarray, w_mapped: np.ndarray, active: np.ndarray) -> dict:
    """The trainer's per-token weights against the mapped formula, over the step's active tokens.

    ``weight_max_rel`` = max |w_trainer - w_mapped| / max |w_mapped|; ``weight_spread`` = the largest over
    the smallest trainer weight (1 for a token mean, |o|_max/|o|_min for a per-sequence mean).
    """
    wt, wm = w_trainer[active], w_mapped[active]
    if wt.size == 0:
        return {"weight_tokens": 0}
    scale = float(np.max(np.abs(wm)))
    diff = float(np.max(np.abs(wt - wm)))
    low = float(np.min(np.abs(wt)))
    return {"weight_max_rel": diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf),
            "weight_tokens": int(wt.size), "weight_spread": float(np.max(np.abs(wt))) / low if low > 0 else None}


def _cov(a: np.ndarray, b: np.ndarray) -> float:
    """n Cov_pop(a, b) = sum (a - mean a)(b - mean b)."""
    return float(np.sum((a - a.mean()) * (b - b.mean())))


def prefix_metrics(keys, rows, ids, mask, A, g_policy, a_omega, w, length_rtol: float = LENGTH_RTOL) -> dict:
    """Prop. 1 on every group of the step whose completions share a prefix (arXiv 2601.05002, Sec. 4).

    Per group S (the step's completions of one prompt, those with A_i != 0) and prefix position t < k:
    W_t = -sum_{i in S} g_policy[i, t] (the trainer's own gradient), its covariance form
    |S| Cov_S(A, omega) + |S| mean_S(A) mean_S(omega) with A_i omega_i = ``a_omega`` (the mapped
    gradient), and the length-only part sum_{i in S} (A_i - mean A)(w_i - mean w) with the r = 1
    weights. Per group: the mean over its prefix positions; the group is *pushed by length* when
    |length part| > ``length_rtol`` * sum_i |A_i| w_i. Groups with no common first token, or with
    all-zero advantages, are not measured (``prefix_groups`` counts the measured ones).
    """
    out = {"W": [], "W_abs": [], "cov": [], "mean": [], "rel": [], "len": [], "pushed": [], "k": []}
    for g in prompt_groups(keys, rows):
        k = common_prefix(ids, mask, g)
        g = g[A[g] != 0]
        if k == 0 or g.size == 0:
            continue
        Ag = A[g]
        W_t = -g_policy[g, :k].sum(0)                                   # (k,)
        gross = np.abs(g_policy[g, :k]).sum(0)
        omega = a_omega[g, :k] / Ag[:, None]
        cov = np.array([_cov(Ag, omega[:, t]) for t in range(k)])
        mean = g.size * Ag.mean() * omega.mean(0)
        length = np.array([_cov(Ag, w[g, t]) for t in range(k)])
        gross_len = (np.abs(Ag)[:, None] * w[g, :k]).sum(0)
        out["W"].append(float(W_t.mean()))
        out["W_abs"].append(float(np.abs(W_t.mean())))
        out["cov"].append(float(cov.mean()))
        out["mean"].append(float(mean.mean()))
        ok = gross > 0
        out["rel"].append(float(np.mean(np.abs(W_t[ok]) / gross[ok])) if ok.any() else None)
        out["len"].append(float(length.mean()))
        out["pushed"].append(float(abs(length.mean()) > length_rtol * gross_len.mean()))
        out["k"].append(k)
    n = len(out["W"])
    res = {"prefix_groups": n}
    if n:
        res.update(prefix_len_mean=float(np.mean(out["k"])), prefix_W_mean=_mean(out["W"]),
                   prefix_W_abs_mean=_mean(out["W_abs"]), prefix_W_cov_mean=_mean(out["cov"]),
                   prefix_W_meanterm_mean=_mean(out["mean"]), prefix_W_rel=_mean(out["rel"]),
                   prefix_W_length_mean=_mean(out["len"]), prefix_length_share=_mean(out["pushed"]))
    return res


def clip_masks(logp, old, mask, A, eps_low: float, eps_high: float, sequence: bool):
    """(x, region, beyond, excursion): the log of the ratio the clip acts on (token, or sequence broadcast),
    TRL's clipped region (r < 1 - eps_low and A < 0, or r > 1 + eps_high and A > 0: no advantage
    gradient), tokens beyond either bound, and the distance past the bound (ratio units, 0 elsewhere)."""
    lr = logp - old
    if sequence:
        lr = np.broadcast_to(((lr * mask).sum(-1) / np.maximum(mask.sum(-1), 1.0))[:, None], lr.shape)
    r, a = np.exp(lr), A[:, None]
    act = mask > 0
    low, high = r < 1 - eps_low, r > 1 + eps_high
    region = act & ((low & (a < 0)) | (high & (a > 0)))
    beyond = act & (low | high)
    excursion = np.where(region, np.where(a > 0, r - (1 + eps_high), (1 - eps_low) - r), 0.0)
    return lr, region, beyond, excursion


def clip_metrics(region, beyond, excursion, active) -> dict:
    """Share of the step's active tokens in the clipped region / beyond a bound; mean excursion of the clipped ones."""
    n = int(active.sum())
    if n == 0:
        return {}
    out = {"clip_share": float(region.sum() / n), "clip_beyond_share": float(beyond.sum() / n)}
    if region.any():
        out["clip_excursion"] = float(excursion[region].mean())
    return out


@dataclass
class _Visit:
    x: np.ndarray        # (b, T) log-ratio the clip acts on
    region: np.ndarray   # (b, T) clipped region
    t: int               # the optimizer's step counter of the step that used this visit
    lr: float            # the learning rate of that step


@dataclass
class OvershootTracker:
    """Props. 3, 7 on revisited rows: tokens clipped at a slice's previous visit, at this visit.

    The momentum premise (every gradient zero from step T on) predicts that the parameters, hence a
    clipped token's log-ratio, keep moving the same way: the step T + k is C_{T,k} times the last step
    before T. Measured here, for each slice of the generation batch visited again (num_iterations > 1):

    * ``overshoot_share``: of the tokens in the clipped region at the previous visit, the share whose
      log-ratio moved further past the bound since (``overshoot_tokens`` of them);
    * ``overshoot_ratio``: for the tokens that entered the region at the previous visit, the median of
      (x_now - x_prev)/(x_prev - x_before), their move after they clipped over their last move
      before; ``overshoot_C`` = C_{T,0} with T the previous visit's step counter and the optimizer's
      betas, and ``overshoot_pred`` = C_{T,0} lr_T / lr_{T-1}, the move momentum alone makes under
      the run's learning-rate schedule. Both only when consecutive visits are one optimizer step apart
      (steps_per_generation = gradient_accumulation_steps); on a network the other tokens' gradients
      add to the momentum, so the measurement is the prediction only where the premise holds.
    """

    visits: dict = field(default_factory=dict)
    batch: object = None

    def visit(self, batch, s: int, x, region, A, active, t: int, lr: float, betas) -> dict:
        if batch is not self.batch:  # a new generation batch: its rows are new
            self.batch, self.visits = batch, {}
        seen = self.visits.setdefault(s, [])
        out: dict = {}
        if seen:
            prev = seen[-1]
            a = A[:, None]
            was = prev.region & active
            further = np.where(a > 0, x > prev.x, x < prev.x)
            if was.any():
                out = {"moved": further[was], "tokens": int(was.sum())}
            if len(seen) >= 2 and t - prev.t == 1 and prev.t - seen[-2].t == 1 and prev.t >= 2:
                new = was & ~seen[-2].region
                if new.any():
                    out["ratio"] = ((x - prev.x)[new] / (prev.x - seen[-2].x)[new])
                    out["C"] = overshoot_ratio(prev.t, 0, betas[0], betas[1])
                    out["pred"] = out["C"] * prev.lr / seen[-2].lr if seen[-2].lr > 0 else None
        seen.append(_Visit(np.array(x, copy=True), np.array(region, copy=True), t, lr))
        return out

    @staticmethod
    def combine(parts: list[dict]) -> dict:
        """The step's metrics from its slices' visits."""
        moved = [p["moved"] for p in parts if "moved" in p]
        out: dict = {}
        if moved:
            allm = np.concatenate(moved)
            out = {"overshoot_share": float(allm.mean()), "overshoot_tokens": int(allm.size)}
        ratios = [p["ratio"] for p in parts if "ratio" in p]
        if ratios:
            out["overshoot_ratio"] = float(np.median(np.concatenate(ratios)))
            first = next(p for p in parts if "ratio" in p)
            out["overshoot_C"] = float(first["C"])
            out["overshoot_pred"] = first["pred"]
        return out


def scale_metrics(optimizer, phi: float, tol: float = SCALE_TOL) -> dict:
    """Prop. 2 from Adam's own state: the share of coordinates whose preconditioned step m_hat/(sqrt(v_hat)+eps)
    would change by more than ``tol`` (relative) if every gradient were scaled by ``phi``.

    The change is R - 1 with R = phi (sqrt(v_hat) + eps)/(|phi| sqrt(v_hat) + eps) (``adam_step_ratio``);
    |R - 1| > tol exactly when sqrt(v_hat) < ``noninvariant_threshold(phi, eps, tol)``, i.e.
    v < threshold^2 (1 - beta2^t). Counted over coordinates with a nonzero step (v > 0, m != 0).
    """
    import torch

    changed = total = 0
    threshold = None
    with torch.no_grad():
        for group in optimizer.param_groups:
            thr = noninvariant_threshold(phi, group["eps"], tol)
            threshold = thr if threshold is None else threshold
            for p in group["params"]:
                st = optimizer.state.get(p)
                if not st or "exp_avg_sq" not in st:
                    continue
                t = float(st["step"])
                bound = thr * thr * -math.expm1(t * math.log(group["betas"][1]))
                v, m = st["exp_avg_sq"], st["exp_avg"]
                live = (v > 0) & (m != 0)
                total += int(live.sum())
                changed += int((live & (v < bound)).sum())
    if total == 0:
        return {}
    return {"scale_share": changed / total, "scale_threshold": threshold, "scale_coords": total}


def loss_metrics(loss: float, A, w_mapped, rows, active, loss_kl: float, ppo: bool) -> dict:
    """Prop. 4's split of the step's loss: loss = loss_length + loss_ratio + loss_kl.

    loss_length = -sum_i A_i Omega_i, Omega_i = sum_t w_{i,t} (the loss at r = 1 without KL: a
    statistic of the completions' lengths and advantages, no reward signal); loss_kl the KL part
    (the trainer's loss at A = 0); loss_ratio the rest, which importance ratios r != 1 make
    (0 on-policy). For PPO-clip losses only (others: the total and the KL part).
    """
    out = {"loss": float(loss), "loss_kl": float(loss_kl)}
    if ppo:
        omega = np.where(active, w_mapped, 0.0)[rows].sum(-1)
        out["loss_length"] = float(-(A[rows] * omega).sum())
        out["loss_ratio"] = float(loss - out["loss_length"] - loss_kl)
    return out
