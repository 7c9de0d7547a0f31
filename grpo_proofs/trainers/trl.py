"""TRL ``GRPOTrainer``: the loss it back-propagates and its advantages, per release (1.16.0, 1.9.0).

The model of ``GRPOTrainer._compute_loss``: per micro-batch k of the K accumulated into one
optimizer step,

* ratio ``coef_1 = exp(l - l_old)`` (token) or ``exp(sum_t m (l - l_old) / max(|o_i|, 1))``
  (sequence, shape (b, 1), full gradient); no clamp;
* per-token loss L: PPO clip ``-min(min(r, delta) A, clip(r, 1-eps, 1+eps_high) A)``
  (grpo, bnpo, dr_grpo, dapo, luspo), ``-sg[min(r, eps_high)] A l`` (cispo),
  ``-(4/tau) sigmoid(tau (r - 1)) A`` (sapo), ``-sg[Phi_i] A l`` (vespo);
  times the off-policy sequence mask; plus ``beta * k3`` (``beta * r * k3`` with
  ``use_bias_correction_kl``, the default since 1.10);
* aggregation: grpo/sapo ``mean_i(sum_t L m / max(|o_i|,1)) / K``; bnpo ``sum L m / max(N_k,1) / K``;
  dr_grpo ``sum L m / (b_k L_max) / K``; dapo/cispo/vespo ``sum L m / max(N, 1)`` with N the
  active tokens of the whole generation batch (all rows passed; P = 1), times S/K in 1.16.0
  (S = ``steps_per_generation``); luspo ``mean_i(sum_t L m) / K`` in 1.16.0, and
  ``mean(L * |o_i|) / K`` over all entries of L (padding included when L is (b, T)) in 1.9.0.

The rows passed are the generation batch; ``micro_batches`` are this optimizer step's slices of
it (rows left out belong to other optimizer steps of the same generation, and get no gradient).
K is the number of micro-batches given (TRL's ``current_gradient_accumulation_steps``); S is
``steps_per_generation``, else ``generation_batch_size / per_device_train_batch_size``, else
``gradient_accumulation_steps``, else K.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where the loss is computed: reading a config needs none
    import torch

from ..errors import InputError
from . import option_tables
from ._common import Batch, Key, Known, accumulate, boolean, choice, integer, number, optional, resolve_config
from ._groups import groups
from .releases import Release, release_of, resolve

__all__ = ["NAME", "SPEC", "spec", "config", "loss_and_grad", "advantages", "needs_ref", "LOSS_TYPES", "steps_per_generation"]

NAME = "trl"
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo")
_PPO = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo")


def _scale(name, v):
    if v is True:
        return "group"
    if v is False:
        return "none"
    return choice("group", "batch", "none")(name, v)


def _only(value, why):
    def check(name, v):
        if v != value or isinstance(v, bool) != isinstance(value, bool):
            raise InputError(f"{name}={v!r} is not modelled ({why}); leave it at {value!r}")
        return v

    return check


def _weights(name, v):
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or not v:
        raise InputError(f"{name} must be a list of numbers, one per reward function")
    return [number(None)(f"{name}[{j}]", x) for j, x in enumerate(v)]


def spec(release: Release) -> dict[str, Key]:
    """The GRPOConfig fields the loss and the advantages read, with ``release``'s defaults."""
    return {
        "loss_type": Key("dapo", choice(*LOSS_TYPES), "loss formulation and aggregation"),
        "importance_sampling_level": Key("token", choice("token", "sequence"), "token ratio or GSPO sequence ratio"),
        "epsilon": Key(0.2, number(0.0), "lower clip epsilon"),
        "epsilon_high": Key(None, optional(number(0.0)), "upper clip epsilon (None: epsilon); cispo: absolute cap"),
        "delta": Key(None, optional(number(0.0)), "INTELLECT-2 two-sided clip: cap on the unclipped ratio"),
        "beta": Key(0.0, number(0.0, strict=False), "KL coefficient (k3 in the loss)"),
        "use_bias_correction_kl": Key(release.at_least("1.10"), boolean,
                                      "multiply the k3 term by the ratio (DeepSeek-V3.2; default True since 1.10)"),
        "sapo_temperature_pos": Key(1.0, number(0.0), "SAPO gate temperature for A > 0"),
        "sapo_temperature_neg": Key(1.05, number(0.0), "SAPO gate temperature for A <= 0"),
        "vespo_k_pos": Key(2.0, number(0.0, strict=False), "VESPO k for A >= 0"),
        "vespo_lambda_pos": Key(3.0, number(0.0, strict=False), "VESPO lambda for A >= 0 (floored at 1e-4)"),
        "vespo_k_neg": Key(3.0, number(0.0, strict=False), "VESPO k for A < 0"),
        "vespo_lambda_neg": Key(2.0, number(0.0, strict=False), "VESPO lambda for A < 0 (floored at 1e-4)"),
        "off_policy_mask_threshold": Key(None, optional(number(0.0)), "drop A<0 sequences whose mean log-ratio drift exceeds it"),
        "max_completion_length": Key(512, integer(1), "L_max, the dr_grpo constant"),
        "scale_rewards": Key("group", _scale, "group / batch / none std scaling of the advantages"),
        "multi_objective_aggregation": Key("sum_then_normalize", choice("sum_then_normalize", "normalize_then_sum"),
                                           "how several reward functions combine"),
        "reward_weights": Key(None, _weights, "weight of each reward function"),
        "num_generations": Key(8, integer(1), "G, completions per prompt"),
        "num_iterations": Key(1, integer(1), "mu, optimizer steps per generation batch"),
        "gradient_accumulation_steps": Key(1, integer(1), "micro-batches per optimizer step"),
        "steps_per_generation": Key(None, optional(integer(1)), "optimizer-step slices per generation (None: gradient_accumulation_steps)"),
        "generation_batch_size": Key(None, optional(integer(1)), "rows generated at once (P = 1)"),
        "per_device_train_batch_size": Key(8, integer(1), "rows per micro-batch"),
        "adam_beta1": Key(0.9, number(0.0, hi=1.0), "Adam beta_1 (overshoot verdict)"),
        "adam_beta2": Key(0.999, number(0.0, hi=1.0), "Adam beta_2 (overshoot verdict)"),
        "max_grad_norm": Key(1.0, optional(number(0.0, strict=False)), "global gradient-norm clip (reward-scale verdict)"),
        "mask_truncated_completions": Key(False, boolean, "drop truncated completions (already in the mask you pass)"),
        "top_entropy_quantile": Key(1.0, _only(1.0, "needs per-token entropies"), "top-entropy token mask"),
        "entropy_coef": Key(0.0, _only(0.0, "needs per-token entropies"), "entropy bonus"),
        "use_adaptive_entropy": Key(False, _only(False, "needs per-token entropies"), "adaptive entropy bonus"),
        "use_vllm": Key(False, boolean, "generate with vLLM"),
        "vllm_importance_sampling_correction": Key(True, boolean, "vLLM IS ratio (only with use_vllm; not modelled)"),
    }


#: the keys of the newest release (see :func:`spec` for another one)
SPEC: dict[str, Key] = spec(resolve(NAME, "1.16.0"))


@lru_cache(maxsize=None)
def _training_arguments() -> frozenset:
    """Fields of the installed transformers' TrainingArguments (a TRL run may use another version than the table's)."""
    import dataclasses

    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments))


@lru_cache(maxsize=None)
def _known(release: Release) -> Known:
    names = option_tables.keys(NAME, release.version)
    loss_keys = set(spec(release))

    def test(key: str) -> bool:  # a mapping value (deepspeed, model_init_kwargs, ...) is flattened to field.sub
        head = key.split(".")[0]
        if head in loss_keys:
            return False
        return head in names or head in _training_arguments()

    return Known(test, frozenset(names))


def steps_per_generation(c: dict, K: int | None = None) -> int:
    """S: optimizer-step slices per generation batch (``GRPOConfig.__post_init__``), K when the config leaves it open."""
    if c["steps_per_generation"] is not None:
        return c["steps_per_generation"]
    if c["generation_batch_size"] is not None:
        return c["generation_batch_size"] // c["per_device_train_batch_size"]
    if "gradient_accumulation_steps" in c["_given"] or K is None:
        return c["gradient_accumulation_steps"]
    return K


def config(cfg=None, version=None) -> dict:
    """The effective TRL config of a release: defaults filled in, values checked as GRPOConfig checks them."""
    release, source, cfg = release_of(NAME, cfg, version)
    c = resolve_config(release.title, spec(release), cfg, known=_known(release))
    c["_release"] = release
    c["_release_source"] = source
    if c["use_vllm"] and c["vllm_importance_sampling_correction"]:
        raise InputError("use_vllm with vllm_importance_sampling_correction multiplies the loss by a vLLM/trainer "
                         "ratio that needs the sampler's log-probs; not modelled: set vllm_importance_sampling_correction=false")
    c["_eps_high"] = c["epsilon"] if c["epsilon_high"] is None else c["epsilon_high"]
    # GRPOConfig.__post_init__ (P = 1 process)
    G, b = c["num_generations"], c["per_device_train_batch_size"]
    if c["generation_batch_size"] is not None and c["steps_per_generation"] is not None:
        raise InputError("'generation_batch_size' and 'steps_per_generation' can not be both configured at the same "
                         f"time ({release.title} refuses it); give one")
    if c["generation_batch_size"] is not None and c["generation_batch_size"] % b:
        raise InputError(f"generation_batch_size ({c['generation_batch_size']}) must be divisible by the global batch "
                         f"size ({b}) ({release.title}, one process)")
    gen = c["generation_batch_size"] or b * (c["steps_per_generation"] or c["gradient_accumulation_steps"])
    if gen % G:
        raise InputError(f"generation_batch_size ({gen}) must be divisible by num_generations ({G}) ({release.title}: "
                         "the generation batch holds whole groups; set num_generations or the batch sizes)")
    if G < 2:
        raise InputError(f"GRPO requires at least 2 generations per prompt (num_generations={G}; {release.title} refuses it)")
    return c


def needs_ref(c: dict) -> bool:
    return c["beta"] != 0.0


def _gamma_weights(A, log_ratio, m, c):
    """VESPO Phi_i = exp(lambda + k log w_i - lambda w_i), detached; log w_i a clamped *sum*."""
    import torch
    with torch.no_grad():
        seq = (torch.clamp(log_ratio, -20.0, 20.0) * m).sum(-1, keepdim=True)
        log_w = torch.clamp(seq, math.log(1e-8), 20.0)
        pos = A >= 0
        k = torch.where(pos, torch.tensor(c["vespo_k_pos"], dtype=A.dtype), torch.tensor(c["vespo_k_neg"], dtype=A.dtype))
        lam = torch.where(pos, torch.tensor(c["vespo_lambda_pos"], dtype=A.dtype),
                          torch.tensor(c["vespo_lambda_neg"], dtype=A.dtype)).clamp(min=1e-4)
        phi = torch.exp(lam + k * log_w - lam * torch.exp(log_w))
        return phi.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


def _micro_loss(c: dict, bt: Batch, rows: torch.Tensor, K: int, N_gen: torch.Tensor, S: int) -> torch.Tensor:
    import torch
    logp, old, m = bt.logp[rows], bt.old[rows], bt.mask[rows]
    A = bt.adv[rows].unsqueeze(1)  # (b, 1)
    log_ratio = logp - old
    if c["importance_sampling_level"] == "token":
        liw = log_ratio
    else:
        liw = ((log_ratio * m).sum(-1) / m.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    coef_1 = torch.exp(liw)
    if c["beta"] != 0.0:
        ref = bt.ref[rows]
        kl = torch.exp(ref - logp) - (ref - logp) - 1
        if c["use_bias_correction_kl"]:
            kl = kl * coef_1
    lt, eps_h = c["loss_type"], c["_eps_high"]
    if lt == "cispo":
        L = -torch.clamp(coef_1, max=eps_h).detach() * A * logp
    elif lt in _PPO:
        coef_2 = torch.clamp(coef_1, 1 - c["epsilon"], 1 + eps_h)
        c1 = torch.clamp(coef_1, max=c["delta"]) if c["delta"] is not None else coef_1
        L = -torch.min(c1 * A, coef_2 * A)
    elif lt == "sapo":
        tau = torch.where(A > 0, torch.tensor(c["sapo_temperature_pos"], dtype=A.dtype),
                          torch.tensor(c["sapo_temperature_neg"], dtype=A.dtype))
        L = -(4.0 / tau) * torch.sigmoid(tau * (coef_1 - 1.0)) * A
    else:  # vespo
        L = -_gamma_weights(A, log_ratio, m, c) * A * logp
    if c["off_policy_mask_threshold"] is not None:
        with torch.no_grad():  # l_samp = l_old without vLLM
            seq_kl = ((old - logp.detach()) * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp(min=1.0)
            keep = ((A >= 0) | (seq_kl <= c["off_policy_mask_threshold"])).to(logp.dtype)
        L = L * keep
    if c["beta"] != 0.0:
        L = L + c["beta"] * kl
    if lt in ("grpo", "sapo"):
        return ((L * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean() / K
    if lt == "bnpo":
        return (L * m).sum() / m.sum().clamp(min=1.0) / K
    if lt == "dr_grpo":
        return (L * m).sum() / (L.shape[0] * c["_L_max"]) / K
    new = c["_release"].at_least("1.9.1")
    if lt in ("dapo", "cispo", "vespo"):
        normalizer = N_gen.clamp(min=1.0)
        if new:  # num_items_in_batch spans the generation batch: rescaled to one accumulation window
            normalizer = normalizer * K / S
        return (L * m).sum() / normalizer
    if c["_release"].at_least("1.10"):  # luspo: masked per-sequence sums, mean over rows
        return (L * m).sum(-1).mean() / K
    return (L * m.sum(1, keepdim=True)).mean() / K  # luspo, 1.9.0: every entry of L, padding included


def loss_and_grad(cfg, bt: Batch) -> tuple[float, np.ndarray]:
    """TRL's loss for one optimizer step (sum over micro-batches) and d loss / d logp."""
    c = dict(cfg)
    if bt.max_completion_length is not None and bt.max_completion_length != c["max_completion_length"]:
        if "max_completion_length" in c["_given"]:
            raise InputError(f"max_completion_length={bt.max_completion_length} differs from the config's "
                             f"{c['max_completion_length']}; give it once")
    c["_L_max"] = bt.max_completion_length or c["max_completion_length"]
    K = len(bt.micro_batches)
    if "gradient_accumulation_steps" in c["_given"] and K > c["gradient_accumulation_steps"]:
        raise InputError(f"{K} micro-batches in one optimizer step, but gradient_accumulation_steps = "
                         f"{c['gradient_accumulation_steps']} (TRL accumulates at most that many)")
    S = steps_per_generation(c, K)
    N_gen = bt.mask.sum()  # num_items_in_batch: the whole generation batch, P = 1
    return accumulate(bt, lambda rows, k: _micro_loss(c, bt, rows, K, N_gen, S))


def advantages(c: dict, rewards, group_ids, lengths=None) -> np.ndarray:
    """TRL advantages: (R - group mean) / (unbiased std + 1e-4) (``_generate_and_score_completions``).

    std: of the group (``scale_rewards="group"``), of the whole batch (``"batch"``), or no division
    (``"none"``). Several reward functions (rewards (B, F)) are summed with ``reward_weights`` first
    (``sum_then_normalize``), or each is group-normalised, summed, then batch-normalised (GDPO).

    >>> advantages(config(), [1.0, 0.0, 0.0, 1.0], [0, 0, 0, 0]).round(6).tolist()  # 0.5/(sqrt(1/3) + 1e-4)
    [0.865875, -0.865875, -0.865875, 0.865875]
    """
    g = groups(rewards, group_ids, allow_matrix=True)
    if np.any(g.counts < 2) or np.unique(g.counts).size != 1:
        raise InputError(f"TRL groups are blocks of num_generations >= 2 completions; got group sizes {sorted(set(g.counts.tolist()))}")
    if "num_generations" in c["_given"] and g.counts[0] != c["num_generations"]:
        raise InputError(f"num_generations={c['num_generations']} but the groups have {g.counts[0]} completions")
    R = g.rewards if g.rewards.ndim == 2 else g.rewards[:, None]
    F = R.shape[1]
    w = np.ones(F) if c["reward_weights"] is None else np.asarray(c["reward_weights"], dtype=np.float64)
    if w.shape != (F,):
        raise InputError(f"reward_weights has {w.size} entries for {F} reward function(s)")
    eps = 1e-4
    if c["multi_objective_aggregation"] == "normalize_then_sum":
        per = (R - g.mean(R)) / (g.std(R) + eps)
        x = per @ w
        return (x - x.mean()) / (np.std(x, ddof=1) + eps)
    total = R @ w
    adv = total - g.mean(total)
    if c["scale_rewards"] == "group":
        adv = adv / (g.std(total) + eps)
    elif c["scale_rewards"] == "batch":
        adv = adv / (np.std(total, ddof=1) + eps)
    return adv
