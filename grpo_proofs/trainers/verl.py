"""verl 0.9.1: the actor loss it back-propagates and its advantages.

The model of ``verl/trainer/ppo/core_algos.py`` (``agg_loss`` and the registered policy losses)
as ``verl/workers/utils/losses.py::ppo_loss`` calls them from the engine workers. Every
micro-batch loss is back-propagated as is; the normalisers are those of the whole PPO
mini-batch (the rows passed): B rows (``global_batch_size``) and N active tokens
(``batch_num_tokens``), with ``dp_size`` P = 1.

``agg_loss`` weights: token-mean 1/N; token-sum 1; seq-mean-token-sum 1/B; seq-mean-token-mean
1/(B |o_i|); seq-mean-token-sum-norm 1/(B C) with C = ``loss_scale_factor`` or, when it is null,
the padded width T_k of the micro-batch's response tensor (``max_completion_length`` when given,
i.e. ``max_response_len`` padding; else the longest response of the micro-batch). verl writes
``|o_i| + 1e-8`` in seq-mean-token-mean and ``geo_mean``, but ``ppo_loss`` makes the mask boolean:
the count is an integer tensor, ``count + 1e-8`` is promoted to float32, where it rounds to the
count itself, so the weight is exactly 1/(B |o_i|). ``sapo`` forces seq-mean-token-mean;
``geo_mean`` takes ``torch.mean`` over the micro-batch rows; ``gspo`` follows ``loss_agg_mode``
(0.9: before, it forced seq-mean-token-mean). The KL loss (``use_kl_loss``) is aggregated with
``loss_agg_mode``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import InputError
from . import option_tables
from ._common import Key, Known, boolean, choice, integer, number, optional, resolve_config
from ._groups import groups, lengths_for, token_whiten
from .releases import Release, release_of
from .verl_loss import agg_loss, kl_penalty, loss_and_grad

__all__ = ["NAME", "SPEC", "ALIASES", "config", "loss_and_grad", "agg_loss", "kl_penalty", "advantages", "needs_ref",
           "LOSS_MODES", "AGG_MODES", "ESTIMATORS", "SECTIONS"]

NAME = "verl"
LOSS_MODES = ("vanilla", "gspo", "sapo", "gpg", "cispo", "geo_mean")
_NOT_MODELLED = ("clip_cov", "kl_cov", "dppo_tv", "dppo_kl", "dro", "up", "bypass_mode")
AGG_MODES = ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")
KL_TYPES = ("kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3")
ESTIMATORS = ("grpo", "grpo_vectorized", "grpo_passk", "rloo", "rloo_vectorized",
              "reinforce_plus_plus_baseline", "opo", "gpg")
#: top-level sections of verl's PPO config
SECTIONS = ("actor_rollout_ref", "algorithm", "data", "trainer", "critic", "reward_model", "reward",
            "custom_reward_function", "global_profiler", "transfer_queue", "ray_kwargs", "distillation",
            "sandbox_fusion", "skip")


def _loss_mode(name, v):
    if v in _NOT_MODELLED:
        why = "selects a random subset of tokens" if v == "clip_cov" else "is not modelled here"
        raise InputError(f"{name}={v!r} {why}; modelled loss modes: {', '.join(LOSS_MODES)}")
    return choice(*LOSS_MODES)(name, v)


def _kl_type(name, v):
    if v == "full":
        raise InputError(f"{name}='full' is not implemented in verl either; choose one of {', '.join(KL_TYPES)} (optionally with '+')")
    base = v[:-1] if isinstance(v, str) and v.endswith("+") else v
    choice(*KL_TYPES)(name, base)
    return v


def _estimator(name, v):
    if v in ("gae", "reinforce_plus_plus", "remax", "optimal_token_baseline", "tir_optimal_token_baseline", "gdpo"):
        return v  # accepted for the mapping; advantages() explains why it cannot compute them
    return choice(*ESTIMATORS)(name, v)


def _none(name, v):
    if v is not None:
        raise InputError(f"{name}={v!r} re-weights or rejects tokens with rollout log-probs; not modelled: leave it null")
    return None


def _false(name, v):
    if boolean(name, v):
        raise InputError(f"{name}=true trains on rollout log-probs; not modelled: leave it false")
    return False


def _zero(name, v):
    if number(None)(name, v) != 0.0:
        raise InputError(f"{name}={v!r} adds an entropy bonus, which needs the logits; not modelled: leave it at 0")
    return 0.0


def _betas(name, v):
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise InputError(f"{name} must be a pair [beta1, beta2]")
    return [number(0.0, hi=1.0)(f"{name}[{i}]", x) for i, x in enumerate(v)]


SPEC: dict[str, Key] = {
    "policy_loss.loss_mode": Key("vanilla", _loss_mode, "policy loss function"),
    "policy_loss.clip_cov_ratio": Key(0.0002, number(0.0), "clip_cov (not modelled)"),
    "policy_loss.clip_cov_lb": Key(1.0, number(None), "clip_cov (not modelled)"),
    "policy_loss.clip_cov_ub": Key(5.0, number(None), "clip_cov (not modelled)"),
    "policy_loss.kl_cov_ratio": Key(0.0002, number(0.0), "kl_cov (not modelled)"),
    "policy_loss.ppo_kl_coef": Key(0.1, number(None), "kl_cov (not modelled)"),
    "policy_loss.dro_beta": Key(None, optional(number(None)), "dro (not modelled)"),
    "loss_agg_mode": Key("token-mean", choice(*AGG_MODES), "how the (B, T) loss matrix becomes a scalar"),
    "clip_ratio": Key(0.2, number(0.0), "epsilon (used only where clip_ratio_low/high are null)"),
    "clip_ratio_low": Key(0.2, optional(number(0.0)), "lower clip epsilon"),
    "clip_ratio_high": Key(0.2, optional(number(0.0)), "upper clip epsilon"),
    "clip_ratio_c": Key(3.0, number(None), "dual-clip bound c > 1 (vanilla, A < 0)"),
    "loss_scale_factor": Key(None, optional(number(0.0)), "C of seq-mean-token-sum-norm (null: padded width)"),
    "use_kl_loss": Key(False, boolean, "add kl_loss_coef * KL to the loss"),
    "kl_loss_coef": Key(0.001, number(0.0, strict=False), "KL loss coefficient"),
    "kl_loss_type": Key("low_var_kl", _kl_type, "KL estimator (suffix + : straight-through k2 gradient)"),
    "tau_pos": Key(1.0, number(0.0), "SAPO temperature, A > 0"),
    "tau_neg": Key(1.05, number(0.0), "SAPO temperature, A <= 0"),
    "entropy_coeff": Key(0.0, _zero, "entropy bonus"),
    "ppo_epochs": Key(1, integer(1), "epochs over each rollout batch (mu)"),
    "ppo_mini_batch_size": Key(256, integer(1), "prompts per optimizer step"),
    "ppo_micro_batch_size_per_gpu": Key(None, optional(integer(1)), "rows per micro-batch"),
    "use_dynamic_bsz": Key(False, boolean, "token-budget micro-batches"),
    "optim.betas": Key([0.9, 0.999], _betas, "Adam betas (overshoot verdict)"),
    "grad_clip": Key(1.0, optional(number(0.0, strict=False)), "global gradient-norm clip (reward-scale verdict)"),
    "train_batch_size": Key(None, optional(integer(1)), "data.train_batch_size: prompts per rollout batch"),
    "rollout.n": Key(None, optional(integer(1)), "G, responses per prompt"),
    "adv_estimator": Key("gae", _estimator, "algorithm.adv_estimator"),
    "norm_adv_by_std_in_grpo": Key(True, boolean, "algorithm.norm_adv_by_std_in_grpo"),
    "use_kl_in_reward": Key(False, boolean, "algorithm.use_kl_in_reward"),
    "kl_penalty": Key("kl", _kl_type, "algorithm.kl_penalty (KL in the reward)"),
    "kl_ctrl.type": Key("fixed", choice("fixed", "adaptive"), "algorithm.kl_ctrl.type"),
    "kl_ctrl.kl_coef": Key(0.001, number(0.0, strict=False), "algorithm.kl_ctrl.kl_coef"),
    "kl_ctrl.target_kl": Key(0.1, number(0.0), "algorithm.kl_ctrl.target_kl"),
    "kl_ctrl.horizon": Key(10000, integer(1), "algorithm.kl_ctrl.horizon"),
    "gamma": Key(1.0, number(0.0, strict=False, hi=1.0), "algorithm.gamma"),
    "lam": Key(1.0, number(0.0, strict=False, hi=1.0), "algorithm.lam"),
    "rollout_correction.rollout_is": Key(None, _none, "algorithm.rollout_correction.rollout_is"),
    "rollout_correction.rollout_rs": Key(None, _none, "algorithm.rollout_correction.rollout_rs"),
    "rollout_correction.bypass_mode": Key(False, _false, "algorithm.rollout_correction.bypass_mode"),
}
#: Hydra paths accepted for the same keys
ALIASES = {
    "actor_rollout_ref.actor.": "", "actor.": "", "algorithm.": "", "data.train_batch_size": "train_batch_size",
    "actor_rollout_ref.rollout.n": "rollout.n",
}


def _free_form(key: str, defaults: dict) -> bool:
    """A key under an option whose default is an empty mapping or null (verl reads any keys there)."""
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if head in defaults:
            return defaults[head] in ({}, None) or isinstance(defaults[head], dict)
    return False


@lru_cache(maxsize=None)
def _known(release: Release) -> Known:
    defaults = option_tables.defaults(NAME, release.version)

    def test(key: str) -> bool:
        if key.startswith("+"):  # a key added with a Hydra '+' override: not one the release reads
            return True
        full = [key] if key.split(".")[0] in SECTIONS else [f"actor_rollout_ref.actor.{key}", f"algorithm.{key}"]
        return any(k in defaults or _free_form(k, defaults) for k in full)

    return Known(test, frozenset(defaults))


def config(cfg=None, version=None) -> dict:
    """The effective verl config (actor keys, plus ``algorithm`` keys for the advantages)."""
    release, source, cfg = release_of(NAME, cfg, version)
    c = resolve_config(release.title, SPEC, cfg, ALIASES, known=_known(release))
    c["_release"] = release
    c["_release_source"] = source
    c["_eps_low"] = c["clip_ratio_low"] if c["clip_ratio_low"] is not None else c["clip_ratio"]
    c["_eps_high"] = c["clip_ratio_high"] if c["clip_ratio_high"] is not None else c["clip_ratio"]
    if c["policy_loss.loss_mode"] == "vanilla" and not c["clip_ratio_c"] > 1.0:
        raise InputError("The lower bound of the clip_ratio_c for dual-clip PPO should be greater than 1.0, but get the "
                         f"value: {c['clip_ratio_c']} ({release.title} asserts it for loss_mode=vanilla)")
    return c


def needs_ref(c: dict) -> bool:
    return bool(c["use_kl_loss"])


def advantages(c: dict, rewards, group_ids, lengths=None) -> np.ndarray:
    """verl outcome advantage estimators (``core_algos.compute_*_outcome_advantage``), eps = 1e-6, unbiased std.

    >>> advantages(config({"adv_estimator": "rloo"}), [1.0, 0.0, 0.0, 1.0], [0, 0, 0, 0]).round(6).tolist()
    [0.666667, -0.666667, -0.666667, 0.666667]
    """
    est = c["adv_estimator"]
    if est not in ESTIMATORS:
        why = {"gae": "needs a value function (critic)", "remax": "needs the greedy-decoding baseline",
               "reinforce_plus_plus": "gives per-token discounted returns"}.get(est, "is not modelled here")
        raise InputError(f"adv_estimator={est!r} {why}; group estimators: {', '.join(ESTIMATORS)}")
    g = groups(rewards, group_ids)
    R, eps, norm = g.rewards, 1e-6, c["norm_adv_by_std_in_grpo"]
    single = g.size == 1
    mean = np.where(single, 0.0, g.mean(R))  # verl: a singleton group has mean 0 and std 1
    if est in ("grpo", "grpo_vectorized"):
        # a singleton's std is 1 (verl: torch.tensor(1.0), float32, so 1 + 1e-6 is rounded to float32 there)
        den = np.where(single, 1.0, np.nan_to_num(g.std(R))) + eps
        # compute_advantage passes norm_adv_by_std_in_grpo to the grpo estimator only: grpo_vectorized
        # keeps its own default (True) whatever algorithm.norm_adv_by_std_in_grpo says
        return (R - mean) / den if norm or est == "grpo_vectorized" else R - mean
    if est == "grpo_passk":
        if np.any(single):
            raise InputError("grpo_passk needs at least 2 samples per group (verl raises)")
        out = np.zeros_like(R)
        for grp in range(len(g.counts)):
            rows = np.flatnonzero(g.index == grp)
            order = rows[np.argsort(-R[rows], kind="stable")]
            adv = R[order[0]] - R[order[1]]
            out[order[0]] = adv / (np.std(R[rows], ddof=1) + eps) if norm else adv
        return out
    if est == "rloo":
        n = g.size.astype(np.float64)
        return np.where(single, R, (R - mean) * n / np.maximum(n - 1, 1))
    if est == "rloo_vectorized":
        n = g.size.astype(np.float64)
        return np.where(single, 0.0, (n * R - g.mean(R) * n) / np.maximum(n - 1, 1))
    if est == "reinforce_plus_plus_baseline":
        L = lengths_for(lengths, len(R), est)
        if L.sum() < 2:  # masked_var's Bessel factor count/(count - 1)
            raise InputError("reinforce_plus_plus_baseline whitens over the batch's tokens with an unbiased variance: "
                             "it needs at least 2 tokens (verl raises)")
        return token_whiten(R - mean, L, unbiased=True, floor=1e-8, add=True)
    if est == "opo":
        L = lengths_for(lengths, len(R), est)
        base = g.mean(L * R) / np.where(g.mean(L) > 0, g.mean(L), 1.0)
        return R - np.where(single, 0.0, base)
    alpha = len(R) / max(int(np.count_nonzero(R)), 1)  # gpg, f_norm = 1 (verl divides integer tensors: float32)
    return alpha * (R - mean)
