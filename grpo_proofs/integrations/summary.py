"""The summary of an audited run: each finding's numbers over the run, and one sentence that states them.

:func:`summarize` takes the run header (:attr:`ProofsCallback.run`, or None when only the logged
metrics are known) and the per-step records (``{"step": n, "proofs/...": value}``); every sentence
in ``lines`` is written from the numbers beside it, so a verdict never says more than they show.

>>> s = summarize(None, [{"step": 1, "proofs/prefix_groups": 2, "proofs/prefix_length_share": 0.5}])
>>> s["prefix_groups"], s["prefix_length_share"]
(2, 0.5)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["summarize", "jsonable", "METRIC_DOCS"]

#: every ``proofs/`` metric and what it is (the book and the README list them from here)
METRIC_DOCS = {
    "weight_max_rel": "max |w_trainer - w_mapped| / max |w_mapped| over the step's tokens (per-token weights: "
                      "the trainer's own loss against the mapped Table 1 formula)",
    "weight_tokens": "tokens compared",
    "weight_spread": "largest over smallest per-token weight of the step",
    "prefix_groups": "groups (completions of one prompt in the step) with a common first token and a nonzero advantage",
    "prefix_len_mean": "mean length of their common completion prefix",
    "prefix_W_mean": "Prop. 1's W, mean over the prefix positions and the groups (the trainer's gradient)",
    "prefix_W_abs_mean": "mean |W| over the groups",
    "prefix_W_cov_mean": "the covariance form |S| Cov_S(A, omega) of W (mapped omega), mean over the groups",
    "prefix_W_meanterm_mean": "the subset term |S| mean_S(A) mean_S(omega) (0 when the whole group is in the step)",
    "prefix_W_rel": "|W| / sum_i |A_i omega_i|: 0 = the push cancels, 1 = it is one-sided",
    "prefix_W_length_mean": "the length part sum_i (A_i - mean A)(w_i - mean w) with the r = 1 weights",
    "prefix_length_share": "share of the groups whose prefix is pushed by length (length part > 1% of sum_i |A_i| w_i)",
    "clip_inner_step": "index of the optimizer step within its generation batch (0 = the first)",
    "clip_share": "share of the step's tokens in the clipped region (no advantage gradient)",
    "clip_beyond_share": "share of the step's tokens beyond either clip bound",
    "clip_excursion": "mean distance past the bound of the clipped tokens (ratio units)",
    "overshoot_share": "of the tokens clipped at the previous visit of their rows, the share that moved further out",
    "overshoot_tokens": "tokens behind overshoot_share",
    "overshoot_ratio": "median move after clipping over the last move before, of the tokens that just clipped",
    "overshoot_C": "C_{T,0} from the optimizer's betas and step counter (Prop. 7, constant learning rate)",
    "overshoot_pred": "C_{T,0} lr_T / lr_(T-1): the move momentum alone makes under the run's learning-rate schedule",
    "scale_share": "share of Adam's coordinates whose step a reward (gradient) scale phi changes by more than 1e-3",
    "scale_threshold": "sqrt(v_hat) below which a coordinate's step changes by more than 1e-3",
    "scale_coords": "coordinates with a nonzero step",
    "loss": "the loss the trainer back-propagated (sum over the step's micro-batches)",
    "loss_length": "-sum_i A_i Omega_i: the loss at r = 1 without KL, a length statistic (Prop. 4)",
    "loss_ratio": "loss - loss_length - loss_kl: what importance ratios r != 1 add (0 on-policy)",
    "loss_kl": "the KL part (the trainer's loss with the advantages set to 0)",
    "adam_step": "the optimizer's step counter after the step",
}


def jsonable(obj):
    """Plain JSON values (non-finite floats as strings, tuples and arrays as lists)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else str(float(obj))
    return obj


def _vals(records, key) -> list[float]:
    return [float(r[f"proofs/{key}"]) for r in records if isinstance(r.get(f"proofs/{key}"), (int, float))]


def _weighted(records, key, weight) -> float | None:
    pairs = [(float(r[f"proofs/{key}"]), float(r[f"proofs/{weight}"])) for r in records
             if f"proofs/{key}" in r and r.get(f"proofs/{weight}")]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _weights(run, records, s, lines) -> None:
    w = _vals(records, "weight_max_rel")
    if not w:
        return
    s["weight_max_rel"] = max(w)
    method = ", ".join(run.get("method") or []) if run else ""
    formula = run.get("weight", "") if run else ""
    tol = run.get("tolerance") if run else None
    what = f"the mapped formula {formula}" + (f" (Table 1: {method})" if method else " (no Table 1 row matches it)")
    if tol is None:
        lines.append(f"per-token weights: the trainer's differ from the mapped formula by at most {max(w):.1e} "
                     "(relative; the run header with its tolerance was not saved)")
        return
    s["weight_agrees"] = max(w) <= tol
    verb = "agree with" if s["weight_agrees"] else "DIFFER from"
    lines.append(f"per-token weights: the trainer's {verb} {what}: max relative difference {max(w):.1e} over "
                 f"{len(w)} steps (tolerance {tol:.0e})")


def _prefix(records, s, lines) -> None:
    groups = int(sum(_vals(records, "prefix_groups")))
    s["prefix_groups"] = groups
    if not groups:
        if records:
            lines.append("shared prefix (Prop. 1): no group of completions shared a first token with a nonzero "
                         "advantage; nothing to measure")
        return
    share = _weighted(records, "prefix_length_share", "prefix_groups")
    rel = _weighted(records, "prefix_W_rel", "prefix_groups")
    s.update(prefix_length_share=share, prefix_W_rel=rel, prefix_W_mean=_weighted(records, "prefix_W_mean", "prefix_groups"))
    text = f"shared prefix (Prop. 1): {groups} group-steps with a common completion prefix"
    if share is not None:
        text += f"; in {share:.0%} of them the prefix is pushed by the completions' lengths"
    if rel is not None:
        text += f"; |W| is {rel:.2f} of the gross push on average (0: it cancels)"
    lines.append(text)


def _clip(records, s, lines) -> None:
    share = _vals(records, "clip_share")
    if not share:
        return
    s["clip_share_max"] = max(share)
    exc = _vals(records, "clip_excursion")
    text = f"clip (Props. 3, 7): up to {max(share):.1%} of a step's tokens in the clipped region"
    if exc:
        s["clip_excursion_mean"] = float(np.mean(exc))
        text += f", {s['clip_excursion_mean']:.3g} past the bound on average"
    lines.append(text)
    moved = _weighted(records, "overshoot_share", "overshoot_tokens")
    if moved is not None:
        s["overshoot_share"] = moved
        text = f"overshoot: {moved:.0%} of the tokens clipped at their rows' previous visit moved further out since"
        ratio, pred = _vals(records, "overshoot_ratio"), _vals(records, "overshoot_pred")
        if ratio and pred:
            s["overshoot_ratio_median"], s["overshoot_pred_mean"] = float(np.median(ratio)), float(np.mean(pred))
            text += (f"; their move after clipping was {s['overshoot_ratio_median']:.3g} times their last move before "
                     f"(median); momentum alone predicts {s['overshoot_pred_mean']:.3g} (C_T times the schedule's "
                     "learning-rate ratio), assuming every gradient reaching these tokens' parameters vanished, "
                     f"while at most {max(share):.0%} of a step's tokens were clipped")
        lines.append(text)


def _scale(run, records, s, lines) -> None:
    share = _vals(records, "scale_share")
    if not share:
        return
    s["scale_share_last"] = share[-1]
    phi = run.get("phi") if run else None
    text = (f"reward scale (Prop. 2): at the last step {share[-1]:.1%} of Adam's coordinates would change their step by "
            f"more than 1e-3 under a gradient scale" + (f" phi = {phi:g}" if phi else ""))
    cfg = (run or {}).get("config") or {}
    if cfg.get("scale_rewards") in ("group", "batch", True):
        text += ("; this run divides the advantages by the reward std, so a reward rescale reaches the gradient only "
                 "through the 1e-4 constant")
    if cfg.get("beta"):
        text += f"; the KL term (beta = {cfg['beta']:g}) does not scale with the rewards"
    lines.append(text)


def _loss(run, records, s, lines) -> None:
    loss, length, ratio = _vals(records, "loss"), _vals(records, "loss_length"), _vals(records, "loss_ratio")
    if not length:
        if loss:
            lines.append("loss (Prop. 4): this loss type's value is a log-prob-weighted sum, not split here")
        return
    parts = [abs(lg) / (abs(lg) + abs(rt)) for lg, rt in zip(length, ratio) if abs(lg) + abs(rt) > 0]
    if not parts:
        lines.append("loss (Prop. 4): every step's policy loss was 0 (all advantages 0, or lengths that cancel)")
        return
    s["loss_length_share"] = float(np.mean(parts))
    on = [abs(r["proofs/loss_ratio"]) for r in records if "proofs/loss_ratio" in r
          and not r.get("proofs/clip_inner_step")]
    s["loss_ratio_onpolicy_max"] = max(on) if on else None
    lines.append(f"loss (Prop. 4): the length statistic -sum_i A_i Omega_i is {s['loss_length_share']:.0%} of the "
                 "loss's policy part on average, the importance ratios the rest: the value tracks lengths and "
                 "ratio noise, not the reward")


def summarize(run: dict | None, records: list[dict]) -> dict:
    """{"steps", "release", "method", numbers per finding, "lines"} of a run (see the module doc)."""
    s: dict = {"steps": len(records), "release": (run or {}).get("release"), "method": (run or {}).get("method")}
    lines: list[str] = []
    _weights(run, records, s, lines)
    _prefix(records, s, lines)
    _clip(records, s, lines)
    _scale(run, records, s, lines)
    _loss(run, records, s, lines)
    s["lines"] = lines
    return s
