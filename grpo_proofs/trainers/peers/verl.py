"""verl 0.9.1 as an oracle: its own ``core_algos`` policy losses, ``agg_loss``, ``kl_penalty`` and estimators.

The functions are the release's, loaded by :func:`~.loading.release_modules` with ``verl`` as a
light parent package (its ``__init__`` imports ``verl.protocol``: ray and tensordict) and
stand-ins for ray, tensordict, orjson and codetiming, which the loss code imports but never
calls. The config objects are the release's own dataclasses (``FSDPActorConfig`` with its
``PolicyLossConfig``, ``AlgoConfig``), so their validation runs too.

What the engine does around the loss function is done here the way verl 0.9.1 does it
(``verl/workers/utils/losses.py::ppo_loss`` and ``workers/engine/fsdp/transformer_impl.py``), and
:func:`glue_statements` lists the statements of those files it mirrors, so a test can check
they are still there: every micro-batch gets ``global_batch_info`` = dp_size 1, the mini-batch's
token count and ``global_batch_size`` = its rows, ``loss_scale_factor``; the response mask is made
boolean; the micro-batch's tensors are padded to its own longest response; the policy loss is
``get_policy_loss_fn(loss_mode)(...)``, plus ``kl_loss_coef * agg_loss(kl_penalty(...))`` with
``use_kl_loss``; the step's loss is the sum of its micro-batch losses (each is back-propagated as is).
"""

from __future__ import annotations

import numpy as np

from .loading import release_modules, release_source

__all__ = ["VERSION", "modules", "actor_config", "algo_config", "policy_loss_and_grad", "advantages",
           "glue_statements", "GLUE"]

VERSION = "0.9.1"
_STAND_INS = ("ray", "tensordict", "orjson", "codetiming")

#: file -> statements of verl 0.9.1's engine code that :func:`policy_loss_and_grad` mirrors
GLUE = {
    "workers/utils/losses.py": (
        'config.global_batch_info["dp_size"] = data["dp_size"]',
        'config.global_batch_info["batch_num_tokens"] = data["batch_num_tokens"]',
        'config.global_batch_info["global_batch_size"] = data["global_batch_size"]',
        'config.global_batch_info["loss_scale_factor"] = config.loss_scale_factor',
        'response_mask = data["response_mask"].to(bool)',
        'loss_mode = config.policy_loss.get("loss_mode", "vanilla")',
        "policy_loss_fn = get_policy_loss_fn(loss_mode)",
        "kld = kl_penalty(logprob=log_prob, ref_logprob=ref_log_prob, kl_penalty=config.kl_loss_type)",
        "policy_loss += kl_loss * config.kl_loss_coef",
    ),
    "workers/engine/fsdp/transformer_impl.py": (
        'batch_num_tokens = data["loss_mask"].sum().to(get_device_id())',
        "tu.assign_non_tensor(data, dp_size=self.get_data_parallel_size())",
    ),
    "trainer/ppo/ray_trainer.py": (
        "ppo_mini_batch_size = ppo_mini_batch_size * self.config.actor_rollout_ref.rollout.n",
        "global_batch_size=ppo_mini_batch_size,",
    ),
}


def modules() -> dict:
    """The release's modules: core_algos, the actor and algorithm config dataclasses."""
    return release_modules("verl", VERSION, ["verl.trainer.ppo.core_algos", "verl.workers.config", "verl.trainer.config"],
                           light=["verl"], stand_ins=_STAND_INS)


def glue_statements() -> dict[str, list[str]]:
    """For each file of :data:`GLUE`, the mirrored statements it no longer contains (empty: all there)."""
    missing = {}
    for rel, statements in GLUE.items():
        _, text = release_source("verl", rel)
        flat = " ".join(text.split())
        gone = [s for s in statements if " ".join(s.split()) not in flat]
        if gone:
            missing[rel] = gone
    return missing


def actor_config(actor: dict, *, rollout_n: int, micro_batch_rows: int):
    """The release's ``FSDPActorConfig`` from actor keys (nested ``policy_loss`` allowed), validated by verl."""
    wc = modules()["verl.workers.config"]
    actor = dict(actor)
    policy = dict(actor.pop("policy_loss", {}) or {})
    kwargs = {"strategy": "fsdp", "rollout_n": rollout_n, "ppo_micro_batch_size_per_gpu": micro_batch_rows, **actor}
    return wc.FSDPActorConfig(policy_loss=wc.PolicyLossConfig(**policy), **kwargs)


def algo_config(algorithm: dict):
    """The release's ``AlgoConfig`` (``algorithm.*`` keys)."""
    return modules()["verl.trainer.config"].AlgoConfig(**algorithm)


def policy_loss_and_grad(config, *, logp, old_logp, advantages, mask, ref_logp=None, micro_batches=None,
                         global_batch_size=None) -> tuple[float, np.ndarray]:
    """verl's actor loss of one PPO mini-batch (the rows passed), summed over its micro-batches, and d/d logp.

    Args:
        config: an ``FSDPActorConfig`` (:func:`actor_config`).
        logp, old_logp, ref_logp, mask: (B, T) arrays; advantages (B,) (broadcast as A_i m_{i,t}, as verl does).
        micro_batches: row lists (default: one micro-batch of every row).
        global_batch_size: ``ppo_mini_batch_size * rollout.n`` (default: B, the rows passed).
    """
    import torch

    ca = modules()["verl.trainer.ppo.core_algos"]
    lp = torch.tensor(np.asarray(logp, dtype=np.float64), requires_grad=True)
    old = torch.as_tensor(np.asarray(old_logp, dtype=np.float64))
    m = torch.as_tensor(np.asarray(mask, dtype=np.float64))
    adv = torch.as_tensor(np.asarray(advantages, dtype=np.float64))
    ref = None if ref_logp is None else torch.as_tensor(np.asarray(ref_logp, dtype=np.float64))
    B = lp.shape[0]
    rows_list = micro_batches or [list(range(B))]
    batch_num_tokens = int(m.sum().item())  # data["loss_mask"].sum() ... .item()
    total = torch.zeros((), dtype=torch.float64)
    for rows in rows_list:
        rows = torch.as_tensor(rows, dtype=torch.long)
        mk = m[rows]
        active = torch.nonzero(mk.sum(0))
        width = int(active.max()) + 1 if active.numel() else 1  # nested tensor padded to its longest response
        config.global_batch_info["dp_size"] = 1
        config.global_batch_info["batch_num_tokens"] = batch_num_tokens
        config.global_batch_info["global_batch_size"] = global_batch_size or B
        config.global_batch_info["loss_scale_factor"] = config.loss_scale_factor
        response_mask = mk[:, :width].to(bool)
        a = adv[rows].unsqueeze(-1) * mk[:, :width] if adv.ndim == 1 else adv[rows][:, :width]
        log_prob = lp[rows][:, :width]
        loss_mode = config.policy_loss.get("loss_mode", "vanilla")
        policy_loss_fn = ca.get_policy_loss_fn(loss_mode)
        pg_loss, _ = policy_loss_fn(old_log_prob=old[rows][:, :width], log_prob=log_prob, advantages=a,
                                    response_mask=response_mask, loss_agg_mode=config.loss_agg_mode, config=config,
                                    rollout_is_weights=None)
        policy_loss = pg_loss
        if config.use_kl_loss:
            kld = ca.kl_penalty(logprob=log_prob, ref_logprob=ref[rows][:, :width], kl_penalty=config.kl_loss_type)
            kl_loss = ca.agg_loss(loss_mat=kld, loss_mask=response_mask, loss_agg_mode=config.loss_agg_mode,
                                  **config.global_batch_info)
            policy_loss = policy_loss + kl_loss * config.kl_loss_coef
        total = total + policy_loss
    (grad,) = torch.autograd.grad(total, lp, allow_unused=True)
    grad = torch.zeros_like(lp) if grad is None else grad
    return float(total.detach()), grad.detach().numpy().copy()


def advantages(algorithm, rewards, group_ids, lengths) -> np.ndarray:
    """verl's advantage of each row: ``compute_advantage``'s call of the estimator (ray_trainer.py), read at a token.

    The outcome reward sits on the last response token (``token_level_rewards``), the response
    mask covers ``lengths[i]`` tokens, ``uid`` is the group id. Rows with no token get the value
    the estimator would broadcast (read before the mask is applied is not possible, so they are NaN).
    """
    import torch

    ca = modules()["verl.trainer.ppo.core_algos"]
    lengths = np.asarray(lengths, dtype=np.int64)
    B, T = len(lengths), max(int(lengths.max()), 1)
    mask = torch.as_tensor((np.arange(T)[None, :] < lengths[:, None]).astype(np.int64))
    tlr = torch.zeros((B, T), dtype=torch.float64)
    for i, L in enumerate(lengths):
        if L > 0:
            tlr[i, L - 1] = float(rewards[i])
    index = np.asarray([str(g) for g in group_ids], dtype=object)
    est = algorithm.adv_estimator
    if est == "grpo":
        adv, _ = ca.compute_grpo_outcome_advantage(token_level_rewards=tlr, response_mask=mask, index=index,
                                                   norm_adv_by_std_in_grpo=algorithm.norm_adv_by_std_in_grpo)
    else:
        fn = ca.get_adv_estimator_fn(est)
        adv, _ = fn(token_level_rewards=tlr, response_mask=mask, config=algorithm, index=index)
    adv = adv.double().numpy()
    return np.where(lengths > 0, adv[np.arange(B), np.maximum(lengths - 1, 0)], np.nan)
