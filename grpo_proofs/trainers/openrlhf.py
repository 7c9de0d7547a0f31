"""OpenRLHF 0.11.2: the policy loss it back-propagates and its advantages.

The model of ``openrlhf/models/loss.py::PolicyLoss`` + ``aggregate_loss`` as the actor
(``trainer/ray/ppo_actor.py``) calls them: ratio ``exp(clamp(l - l_old, +-20))`` (``ppo``) or the
GSPO sequence ratio ``exp(sum_t m (l - l_old) / max(|o_i|, 1))`` with full gradient, broadcast
times the mask; ``-min(r A, clip(r, 1-eps_lo, 1+eps_hi) A)`` and with ``--actor.dual_clip`` c, for
A < 0, ``-max(min(.), c A)``. Aggregation over the whole optimizer step (all micro-batches, P = 1;
``utils/loss_utils.py::_optimizer_step_loss_norm`` pre-divides by gas to cancel DeepSpeed's
1/gas): ``--actor.loss_agg_mode token-mean`` ``sum L m / N`` (N active tokens of the step), and
``seq-mean-token-mean`` (forced by ``gspo``) ``sum_i (sum_t L m / |o_i|) / S`` (S non-empty
sequences of the step; the ``+ 1e-8`` OpenRLHF adds to the integer count rounds away in float32).
With ``--algo.kl.use_loss`` and ``--algo.kl.init_coef`` > 0 the estimator (k1, k2, k3 with the
log-ratio floored at -10, value clamped to +-10; with ``--algo.kl.unbiased_gradient`` the value
of the estimator and the gradient of ``w (l - l_ref)^2 / 2``, w = min(r, 10) detached) is a
token mean over the step whatever the policy aggregation, times ``init_coef``. OpenRLHF computes
the estimator and its normalisers in float32; here everything is float64.

Keys are the release's option names without the leading dashes (``actor.policy_loss_type``,
``algo.kl.estimator``, ``rollout.n_samples_per_prompt``, ...); the flat names of earlier
releases (``policy_loss_type``, ``init_kl_coef``, ``advantage_estimator``, ...) are accepted too.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import InputError
from . import option_tables
from ._common import Batch, Key, Known, accumulate, boolean, choice, integer, number, optional, resolve_config
from ._groups import groups, lengths_for, token_whiten
from .releases import Release, release_of

__all__ = ["NAME", "SPEC", "ALIASES", "config", "loss_and_grad", "advantages", "needs_ref", "ESTIMATORS",
           "GROUP_ESTIMATORS"]

NAME = "openrlhf"
ESTIMATORS = ("group_norm", "dr_grpo", "rloo", "reinforce_baseline", "flash_reinforce")
#: estimators the release refuses with n_samples_per_prompt = 1
GROUP_ESTIMATORS = ("rloo", "reinforce_baseline", "group_norm", "dr_grpo")


def _pair(name, v):
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise InputError(f"{name} must be two numbers [low, high], e.g. [0.2, 0.28]")
    return [number(0.0)(f"{name}[{i}]", x) for i, x in enumerate(v)]


def _range(name, v):
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise InputError(f"{name} must be two numbers [low, high], e.g. [-10, 10]")
    lo, hi = (number(None)(f"{name}[{i}]", x) for i, x in enumerate(v))
    return [lo, hi]


def _betas(name, v):
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise InputError(f"{name} must be two numbers [beta1, beta2]")
    return [number(0.0, hi=1.0)(f"{name}[{i}]", x) for i, x in enumerate(v)]


def _estimator(name, v):
    if v in ("gae", "reinforce"):
        return v  # accepted for the mapping; advantages() explains why it cannot compute them
    return choice(*ESTIMATORS)(name, v)


def _dual(name, v):
    if v is None:
        return None
    f = number(None)(name, v)
    if not f > 1.0:
        raise InputError(f"dual_clip must be > 1.0, got {v!r} (OpenRLHF's PolicyLoss asserts it)")
    return f


def _entropy(name, v):
    if v is None or number(None)(name, v) == 0.0:
        return v
    raise InputError(f"{name}={v!r} adds an entropy bonus, which needs the logits; not modelled: leave it unset (or 0)")


def _only(value, why):
    def check(name, v):
        if v != value or isinstance(v, bool) != isinstance(value, bool):
            raise InputError(f"{name}={v!r} is not modelled ({why}); leave it at {value!r}")
        return v

    return check


SPEC: dict[str, Key] = {
    "actor.policy_loss_type": Key("ppo", choice("ppo", "gspo"), "token ratio (ppo) or GSPO sequence ratio"),
    "actor.loss_agg_mode": Key("token-mean", choice("token-mean", "seq-mean-token-mean"),
                               "token mean over the step, or per-sample means over the step's samples"),
    "actor.eps_clip": Key(0.2, number(0.0), "clip epsilon (both sides unless eps_clip_low_high)"),
    "actor.eps_clip_low_high": Key(None, _pair, "[low, high] clip epsilons"),
    "actor.dual_clip": Key(None, _dual, "dual-clip bound c > 1 for A < 0 (default off)"),
    "actor.entropy_coef": Key(None, _entropy, "entropy bonus"),
    "algo.kl.use_loss": Key(False, boolean, "KL in the loss instead of the reward"),
    "algo.kl.estimator": Key("k1", choice("k1", "k2", "k3"), "KL estimator"),
    "algo.kl.init_coef": Key(0.01, number(None), "KL coefficient (<= 0: no KL)"),
    "algo.kl.target": Key(None, optional(number(0.0)), "adaptive KL target (the coefficient at a step is init_coef)"),
    "algo.kl.unbiased_gradient": Key(False, boolean, "KL value of the estimator, gradient w (l - l_ref), w = min(r, 10)"),
    "algo.advantage.estimator": Key("gae", _estimator, "advantage estimator"),
    "algo.advantage.no_std_norm": Key(False, boolean, "keep only the mean shift of the whitening"),
    "algo.advantage.gamma": Key(1.0, number(0.0, strict=False, hi=1.0), "discount (forced to 1 for group estimators)"),
    "algo.advantage.is_correction_level": Key("off", _only("off", "needs the rollout log-probs"),
                                              "vLLM importance-sampling correction"),
    "reward.clip_range": Key([-10.0, 10.0], _range, "shaped rewards are clamped to it before the returns"),
    "reward.overlong_buffer_len": Key(None, _only(None, "changes the rewards by length"), "DAPO overlong penalty"),
    "reward.stop_properly_penalty_coef": Key(None, _only(None, "changes the rewards of truncated samples"),
                                             "ProRL stop-properly penalty"),
    "train.dynamic_batch_enable": Key(False, _only(False, "normalises by the replay buffer's token budget"),
                                      "token-budget micro-batches"),
    "rollout.n_samples_per_prompt": Key(1, integer(1), "G, samples per prompt"),
    "train.max_epochs": Key(1, integer(1), "epochs over each rollout batch (mu)"),
    "rollout.batch_size": Key(1024, integer(1), "prompts per rollout"),
    "train.batch_size": Key(128, integer(1), "samples per optimizer step"),
    "train.micro_batch_size": Key(1, integer(1), "samples per micro-batch"),
    "actor.adam.betas": Key([0.9, 0.95], _betas, "Adam betas (overshoot verdict)"),
    "actor.max_norm": Key(1.0, optional(number(0.0, strict=False)), "global gradient-norm clip"),
}
#: the flat names of earlier releases (and the dashed forms) for the same keys
ALIASES = {
    "policy_loss_type": "actor.policy_loss_type", "eps_clip": "actor.eps_clip", "eps_clip_low_high": "actor.eps_clip_low_high",
    "dual_clip": "actor.dual_clip", "use_kl_loss": "algo.kl.use_loss", "kl_estimator": "algo.kl.estimator",
    "init_kl_coef": "algo.kl.init_coef", "kl_target": "algo.kl.target", "advantage_estimator": "algo.advantage.estimator",
    "no_advantage_std_norm": "algo.advantage.no_std_norm", "n_samples_per_prompt": "rollout.n_samples_per_prompt",
    "max_epochs": "train.max_epochs", "rollout_batch_size": "rollout.batch_size", "train_batch_size": "train.batch_size",
    "micro_train_batch_size": "train.micro_batch_size", "adam_betas": "actor.adam.betas", "max_norm": "actor.max_norm",
}


@lru_cache(maxsize=None)
def _known(release: Release) -> Known:
    dests = option_tables.keys(NAME, release.version)
    return Known(lambda k: k in dests, frozenset(dests) | frozenset(ALIASES))


def config(cfg=None, version=None) -> dict:
    """The effective OpenRLHF config of a release (what ``train_ppo_ray`` would run)."""
    release, source, cfg = release_of(NAME, cfg, version)
    c = resolve_config(release.title, SPEC, cfg, ALIASES, known=_known(release))
    c["_release"] = release
    c["_release_source"] = source
    lo_hi = c["actor.eps_clip_low_high"] or [c["actor.eps_clip"], c["actor.eps_clip"]]
    c["_eps_low"], c["_eps_high"] = lo_hi
    est = c["algo.advantage.estimator"]
    if est in GROUP_ESTIMATORS and c["rollout.n_samples_per_prompt"] < 2:
        raise InputError(f"{est} requires n_samples_per_prompt > 1 ({release.title} refuses it): set "
                         "rollout.n_samples_per_prompt to the group size")
    c["_token_level"] = c["actor.policy_loss_type"] == "ppo" and c["actor.loss_agg_mode"] == "token-mean"
    return c


def needs_ref(c: dict) -> bool:
    return bool(c["algo.kl.use_loss"]) and c["algo.kl.init_coef"] > 0


def approx_kl(logp, ref, old, estimator, unbiased):
    """``compute_approx_kl``: k1, k2, k3 (log-ratio floored at -10) clamped to [-10, 10]; the unbiased gradient variant."""
    lr = logp - ref
    if estimator == "k1":
        kl = lr
    elif estimator == "k2":
        kl = lr**2 / 2.0
    else:
        k = lr.clamp(min=-10)
        kl = (-k).exp() - 1 + k
    kl = kl.clamp(min=-10, max=10)
    if not unbiased:
        return kl
    w = (logp - old).exp().clamp(max=10.0).detach()
    surrogate = w * (lr**2 / 2.0)
    return kl.detach() + surrogate - surrogate.detach()


def loss_and_grad(c: dict, bt: Batch) -> tuple[float, np.ndarray]:
    """OpenRLHF's policy loss for one optimizer step (sum over micro-batches) and d loss / d logp."""
    import torch
    token_level = c["_token_level"]
    N = bt.mask.sum()
    S = (bt.mask.sum(-1) > 0).sum().to(torch.float64)

    def aggregate(mat, m, tokens):
        if tokens:
            return (mat * m).sum() / N
        cnt = m.sum(-1)
        seq = (mat * m).sum(-1) / cnt.clamp(min=1.0)
        return (seq * (cnt > 0).to(seq.dtype)).sum() / S

    def micro(rows, k):
        logp, old, m = bt.logp[rows], bt.old[rows], bt.mask[rows]
        A = bt.adv[rows] if bt.adv.ndim == 2 else bt.adv[rows].unsqueeze(1).expand_as(m)
        raw = logp - old
        if c["actor.policy_loss_type"] == "ppo":
            ratio = torch.exp(raw.clamp(min=-20.0, max=20.0))
        else:
            ratio = torch.exp((raw * m).sum(-1) / m.sum(-1).clamp(min=1)).unsqueeze(-1) * m
        surr1, surr2 = ratio * A, ratio.clamp(1 - c["_eps_low"], 1 + c["_eps_high"]) * A
        if c["actor.dual_clip"] is None:
            loss = -torch.min(surr1, surr2)
        else:
            clip1 = torch.min(surr1, surr2)
            loss = -torch.where(A < 0, torch.max(clip1, c["actor.dual_clip"] * A), clip1)
        out = aggregate(loss, m, token_level)
        if needs_ref(c):
            kl = approx_kl(logp, bt.ref[rows], old, c["algo.kl.estimator"], c["algo.kl.unbiased_gradient"])
            out = out + aggregate(kl, m, True) * c["algo.kl.init_coef"]
        return out

    return accumulate(bt, micro)


def advantages(c: dict, rewards, group_ids, lengths=None) -> np.ndarray:
    """OpenRLHF's advantage estimators (``RemoteExperienceMaker.compute_advantages_and_returns``).

    group_norm ``(R - mean) / (std (n-1) + 1e-9)``; dr_grpo and reinforce_baseline ``R - mean``;
    rloo ``R - mean of the others``; flash_reinforce ``R - batch mean``; the shaped reward is then
    clamped to ``reward.clip_range`` (default [-10, 10]); reinforce_baseline is whitened over all
    action tokens (biased variance, ``rsqrt(max(var, 1e-8))``; ``no_std_norm``: the mean shift only).

    >>> advantages(config({"algo.advantage.estimator": "dr_grpo", "rollout.n_samples_per_prompt": 4}),
    ...            [1.0, 0.0, 0.0, 1.0], [0, 0, 0, 0]).tolist()
    [0.5, -0.5, -0.5, 0.5]
    """
    est = c["algo.advantage.estimator"]
    if est not in ESTIMATORS:
        why = "needs a value function (critic)" if est == "gae" else "gives per-token discounted returns"
        raise InputError(f"algo.advantage.estimator={est!r} {why}; group estimators: {', '.join(ESTIMATORS)}")
    g = groups(rewards, group_ids)
    if np.unique(g.counts).size != 1:
        raise InputError(f"OpenRLHF reshapes rewards into blocks of n_samples_per_prompt; got group sizes "
                         f"{sorted(set(g.counts.tolist()))}")
    n = int(g.counts[0])
    if "rollout.n_samples_per_prompt" in c["_given"] and c["rollout.n_samples_per_prompt"] != n:
        raise InputError(f"rollout.n_samples_per_prompt={c['rollout.n_samples_per_prompt']} but the groups have {n} completions")
    R = g.rewards
    if est in GROUP_ESTIMATORS and n < 2:
        raise InputError(f"{est} requires n_samples_per_prompt > 1 (OpenRLHF refuses it)")
    if est == "group_norm":
        x = (R - g.mean(R)) / (g.std(R) + 1e-9)
    elif est in ("dr_grpo", "reinforce_baseline"):
        x = R - g.mean(R)
    elif est == "rloo":
        x = R - (g.mean(R) * n - R) / (n - 1)
    else:  # flash_reinforce: the whole rollout batch's mean
        x = R - R.mean()
    lo, hi = c["reward.clip_range"]
    x = np.clip(x, lo, hi)
    if est != "reinforce_baseline":
        return x
    L = lengths_for(lengths, len(R), est)  # whitened over all action tokens (biased variance)
    if c["algo.advantage.no_std_norm"]:
        return x - float((L * x).sum() / L.sum())
    return token_whiten(x, L, unbiased=False, floor=1e-8, add=False)
