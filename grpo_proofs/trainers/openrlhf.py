"""OpenRLHF: the policy loss it back-propagates and its advantages (TRAINERS.md section 3).

Transcribed from ``openrlhf/models/loss.py::PolicyLoss`` + ``aggregate_loss`` as read in
TRAINERS.md 3: ratio ``exp(clamp(l - l_old, +-20))`` (``ppo``) or the GSPO sequence ratio
``exp(sum_t m (l - l_old) / max(|o_i|, 1))`` with full gradient, broadcast times the mask;
``-min(r A, clip(r, 1-eps_lo, 1+eps_hi) A)`` and with ``dual_clip`` c, for A < 0,
``-max(min(.), c A)``. Aggregation over the whole optimizer step (all micro-batches, P = 1):
token level ``sum L m / N`` (N active tokens of the step: ``_optimizer_step_loss_norm``
cancels DeepSpeed's 1/gas), and for ``gspo`` sample level ``sum_i (sum_t L m / (|o_i| + 1e-8)) / S``
(S non-empty sequences of the step). With ``use_kl_loss`` the estimator (k1, k2, k3, value
clamped to +-10) is aggregated like the policy loss and multiplied by ``init_kl_coef``
(computed here in float64; OpenRLHF casts it to float32).

Keys are the CLI names without dashes; both the flat names (``policy_loss_type``,
``eps_clip_low_high``, ``dual_clip``, ``use_kl_loss``, ``kl_estimator``, ``init_kl_coef``, ...)
and the dotted ones (``actor.policy_loss_type``, ``algo.kl.estimator``, ...) are accepted.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ._common import Batch, Key, accumulate, boolean, choice, integer, number, optional, resolve_config
from ._groups import groups, lengths_for, token_whiten

__all__ = ["NAME", "SPEC", "ALIASES", "config", "loss_and_grad", "advantages", "needs_ref", "ESTIMATORS"]

NAME = "openrlhf"
ESTIMATORS = ("group_norm", "dr_grpo", "rloo", "reinforce_baseline")
_EPS_LEN = 1e-8


def _pair(name, v):
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise InputError(f"{name} must be two numbers [low, high], e.g. [0.2, 0.28]")
    return [number(0.0)(f"{name}[{i}]", x) for i, x in enumerate(v)]


def _estimator(name, v):
    if v in ("gae", "reinforce"):
        return v  # accepted for the mapping; advantages() explains why it cannot compute them
    return choice(*ESTIMATORS)(name, v)


SPEC: dict[str, Key] = {
    "policy_loss_type": Key("ppo", choice("ppo", "gspo"), "token ratio (ppo) or GSPO sequence ratio"),
    "eps_clip": Key(0.2, number(0.0), "clip epsilon (both sides unless eps_clip_low_high)"),
    "eps_clip_low_high": Key(None, _pair, "[low, high] clip epsilons"),
    "dual_clip": Key(None, optional(number(1.0)), "dual-clip bound c > 1 for A < 0 (default off)"),
    "use_kl_loss": Key(False, boolean, "KL in the loss instead of the reward"),
    "kl_estimator": Key("k1", choice("k1", "k2", "k3"), "KL estimator"),
    "init_kl_coef": Key(0.01, number(0.0, strict=False), "KL coefficient"),
    "kl_target": Key(None, optional(number(0.0)), "adaptive KL target (the coefficient at a step is given)"),
    "advantage_estimator": Key("gae", _estimator, "advantage estimator"),
    "no_advantage_std_norm": Key(False, boolean, "keep only the mean shift of the whitening"),
    "n_samples_per_prompt": Key(1, integer(1), "G, samples per prompt"),
    "max_epochs": Key(1, integer(1), "epochs over each rollout batch (mu)"),
    "rollout_batch_size": Key(None, optional(integer(1)), "prompts per rollout"),
    "train_batch_size": Key(None, optional(integer(1)), "samples per optimizer step"),
    "micro_train_batch_size": Key(None, optional(integer(1)), "samples per micro-batch"),
    "adam_betas": Key([0.9, 0.95], lambda n, v: [number(0.0, hi=1.0)(f"{n}[{i}]", x) for i, x in enumerate(_pair(n, v))], "Adam betas"),
    "max_norm": Key(1.0, optional(number(0.0, strict=False)), "global gradient-norm clip"),
}
#: dotted CLI names (``--actor.policy_loss_type``) of the same keys
ALIASES = {
    "actor.policy_loss_type": "policy_loss_type", "actor.eps_clip": "eps_clip",
    "actor.eps_clip_low_high": "eps_clip_low_high", "actor.dual_clip": "dual_clip",
    "algo.kl.use_loss": "use_kl_loss", "algo.kl.estimator": "kl_estimator", "algo.kl.init_coef": "init_kl_coef",
    "algo.kl.target": "kl_target", "algo.advantage.estimator": "advantage_estimator",
    "algo.advantage.no_std_norm": "no_advantage_std_norm", "rollout.n_samples_per_prompt": "n_samples_per_prompt",
}


def config(cfg=None) -> dict:
    """The effective OpenRLHF config."""
    c = resolve_config("OpenRLHF", SPEC, cfg, ALIASES)
    lo_hi = c["eps_clip_low_high"] or [c["eps_clip"], c["eps_clip"]]
    c["_eps_low"], c["_eps_high"] = lo_hi
    return c


def needs_ref(c: dict) -> bool:
    return bool(c["use_kl_loss"]) and c["init_kl_coef"] > 0


def approx_kl(logp, ref, estimator):
    """``compute_approx_kl``: k1, k2, k3 of log pi - log pi_ref, value clamped to [-10, 10]."""
    lr = logp - ref
    if estimator == "k1":
        kl = lr
    elif estimator == "k2":
        kl = lr**2 / 2.0
    else:
        kl = torch.exp(-lr) - 1 - (-lr)
    return kl.clamp(min=-10, max=10)


def loss_and_grad(c: dict, bt: Batch) -> tuple[float, np.ndarray]:
    """OpenRLHF's policy loss for one optimizer step (sum over micro-batches) and d loss / d logp."""
    token_level = c["policy_loss_type"] == "ppo"  # GSPO forces sample-level aggregation
    N = bt.mask.sum()
    S = (bt.mask.sum(-1) > 0).sum().to(torch.float64)

    def aggregate(mat, m):
        if token_level:
            return (mat * m).sum() / N
        cnt = m.sum(-1)
        seq = (mat * m).sum(-1) / (cnt + _EPS_LEN)
        return (seq * (cnt > 0).to(seq.dtype)).sum() / S

    def micro(rows, k):
        logp, old, m = bt.logp[rows], bt.old[rows], bt.mask[rows]
        A = bt.adv[rows] if bt.adv.ndim == 2 else bt.adv[rows].unsqueeze(1).expand_as(m)
        raw = logp - old
        if token_level:
            ratio = torch.exp(raw.clamp(min=-20.0, max=20.0))
        else:
            ratio = torch.exp((raw * m).sum(-1) / m.sum(-1).clamp(min=1)).unsqueeze(-1) * m
        surr1, surr2 = ratio * A, ratio.clamp(1 - c["_eps_low"], 1 + c["_eps_high"]) * A
        if c["dual_clip"] is None:
            loss = -torch.min(surr1, surr2)
        else:
            clip1 = torch.min(surr1, surr2)
            loss = -torch.where(A < 0, torch.max(clip1, c["dual_clip"] * A), clip1)
        out = aggregate(loss, m)
        if needs_ref(c):
            out = out + aggregate(approx_kl(logp, bt.ref[rows], c["kl_estimator"]), m) * c["init_kl_coef"]
        return out

    return accumulate(bt, micro)


def advantages(c: dict, rewards, group_ids, lengths=None) -> np.ndarray:
    """OpenRLHF group estimators (TRAINERS.md 3): group_norm (eps 1e-9), dr_grpo, rloo, reinforce_baseline.

    >>> advantages(config({"advantage_estimator": "dr_grpo"}), [1.0, 0.0, 0.0, 1.0], [0, 0, 0, 0]).tolist()
    [0.5, -0.5, -0.5, 0.5]
    """
    est = c["advantage_estimator"]
    if est not in ESTIMATORS:
        why = "needs a value function (critic)" if est == "gae" else "gives per-token returns"
        raise InputError(f"advantage_estimator={est!r} {why}; group estimators: {', '.join(ESTIMATORS)}")
    g = groups(rewards, group_ids)
    if np.unique(g.counts).size != 1:
        raise InputError(f"OpenRLHF reshapes rewards into blocks of n_samples_per_prompt; got group sizes {sorted(set(g.counts.tolist()))}")
    n = int(g.counts[0])
    if "n_samples_per_prompt" in c["_given"] and c["n_samples_per_prompt"] != n:
        raise InputError(f"n_samples_per_prompt={c['n_samples_per_prompt']} but the groups have {n} completions")
    R = g.rewards
    if est in ("group_norm", "rloo") and n < 2:
        raise InputError(f"{est} divides by n - 1 (std or leave-one-out mean): it needs n_samples_per_prompt >= 2")
    if est == "group_norm":
        return (R - g.mean(R)) / (g.std(R) + 1e-9)
    if est == "dr_grpo":
        return R - g.mean(R)
    if est == "rloo":
        return R - (g.mean(R) * n - R) / (n - 1)
    x = R - g.mean(R)  # reinforce_baseline, then whitened over all action tokens (biased var)
    L = lengths_for(lengths, len(R), est)
    if c["no_advantage_std_norm"]:
        return x - float((L * x).sum() / L.sum())
    return token_whiten(x, L, unbiased=False, floor=1e-8, add=False)
