"""What each trainer's config says about its loss, read into one record per config.

For a config ``c`` of TRL, verl or OpenRLHF (the effective config of the trainer module),
:data:`READERS` gives a mapping with the per-token weight omega_{i,t} in the batch symbols of
:mod:`grpo_proofs.notation` (K micro-batches, b_k rows / N_k tokens / T_k width of micro-batch k,
B rows and N tokens of the step, S non-empty rows, S_g steps per generation batch, L_i = |o_i|,
L_max, C), the surrogate, the KL term, the advantage estimator (kind, meaning), the clip
epsilons, the optimizer settings, the config constants and the notes (pitfalls) for people.
:mod:`grpo_proofs.trainers.mapping` turns the record into a Variant.

>>> from grpo_proofs.trainers.verl import config
>>> READERS["verl"](config({"loss_agg_mode": "seq-mean-token-mean"}))["weight"]
1/(B*L_i)
"""

from __future__ import annotations

import sympy as sp

from .. import notation as n

__all__ = ["READERS", "REDUCTION"]

K, b_k, N_k, T_k, B, N, S, T_pad, C, S_g = (n.K_acc, n.b_k, n.N_k, n.T_k, n.B_step, n.N_step, n.S_seq, n.T_pad,
                                            n.C_scale, n.S_gen)
L = n.L_i
#: batch symbols -> their value when the whole step is one group in one micro-batch (and one generation batch)
REDUCTION = {K: 1, b_k: n.G, B: n.G, S: n.G, N_k: n.L_sum, N: n.L_sum, T_k: n.L_max, T_pad: n.L_max, S_g: 1}


def _agg_verl(mode: str, C_value) -> sp.Expr:
    return {
        "token-mean": 1 / N, "token-sum": sp.Integer(1), "seq-mean-token-sum": 1 / B,
        "seq-mean-token-mean": 1 / (B * L),
        "seq-mean-token-sum-norm": 1 / (B * (C if C_value is not None else T_k)),
    }[mode]


def _trl(c) -> dict:
    from .trl import steps_per_generation

    rel = c["_release"]
    lt, seq = c["loss_type"], c["importance_sampling_level"] == "sequence"
    sk = sp.Integer(1)
    constants = {n.L_max: c["max_completion_length"]}
    fixed_s = c["steps_per_generation"] is not None or c["generation_batch_size"] is not None \
        or "gradient_accumulation_steps" in c["_given"]
    if rel.at_least("1.9.1") and fixed_s:  # num_items_in_batch / P * K / S: weight S/(K N)
        sk = S_g / K
        constants[S_g] = steps_per_generation(c)
    luspo_new = rel.at_least("1.10")
    w = {"grpo": 1 / (K * b_k * L), "sapo": 1 / (K * b_k * L), "bnpo": 1 / (K * N_k), "dr_grpo": 1 / (K * b_k * n.L_max),
         "dapo": sk / N, "cispo": sk / N, "vespo": sk / N,
         "luspo": 1 / (K * b_k) if luspo_new else L / (K * b_k * T_pad)}[lt]
    omega = 1 / (K * b_k) if (lt == "luspo" and seq) else w
    surrogate = {"cispo": "cispo-cap", "sapo": "sapo", "vespo": "vespo"}.get(lt, "ppo-clip")
    kl = None if c["beta"] == 0 else ("k3*r" if c["use_bias_correction_kl"] else "k3")
    adv = {"group": ("std-group", "(R - group mean) / (group std (n-1) + 1e-4)"),
           "batch": ("std-batch", "(R - group mean) / (batch std (n-1) + 1e-4)"),
           "none": ("centered", "R - group mean")}[c["scale_rewards"]]
    spg = steps_per_generation(c)
    notes = []
    if lt == "cispo" and c["_eps_high"] <= 1:
        notes.append(f"cispo caps the IS weight at epsilon_high = {c['_eps_high']:g} (< 1): every token's gradient is scaled "
                     "by it (pitfall 4; TRL recommends epsilon_high = 5)")
    if lt == "luspo" and not luspo_new and (not seq or c["beta"] != 0):
        notes.append("luspo averages a (b, T) loss over all b*T entries: padding positions enter the loss (pitfall 5)")
    if "loss_type" not in c["_given"]:
        notes.append("loss_type defaults to 'dapo' (token mean over the generation batch), not 'grpo' (pitfall 2)")
    if c["off_policy_mask_threshold"] is not None:
        notes.append("off-policy sequence mask M: A < 0 sequences whose mean drift exceeds the threshold get no gradient")
    if kl == "k3*r" and "use_bias_correction_kl" not in c["_given"]:
        notes.append("use_bias_correction_kl defaults to True (since TRL 1.10): the KL term is beta * r * k3, whose gradient "
                     "differs from beta * k3's by beta * w * k3 even on-policy; set it to false for the plain k3 term")
    if sk != 1 and constants[S_g] != c["gradient_accumulation_steps"]:
        notes.append(f"{lt} divides by num_items_in_batch * K / S: with steps_per_generation S = {constants[S_g]} and K "
                     f"micro-batches per step, a token's weight is S/(K N) = {constants[S_g]}/(K N), not 1/N")
    return dict(surrogate=surrogate, sequence=seq, weight=omega, kl=kl, kl_coef=c["beta"], kl_weight=w if kl else None,
                kl_in_reward=None, adv=adv, sigma_eps=1e-4, eps=(c["epsilon"], c["_eps_high"]),
                delta=c["delta"], dual=None, mu=c["num_iterations"] * spg / c["gradient_accumulation_steps"],
                betas=(c["adam_beta1"], c["adam_beta2"]), clip=c["max_grad_norm"], constants=constants, notes=notes)


#: verl's advantage estimators: (kind, meaning); the critic ones are not group estimators
_VERL_ADV = {
    "rloo": ("centered", "n/(n-1) (R - group mean)"), "rloo_vectorized": ("centered", "n/(n-1) (R - group mean)"),
    "reinforce_plus_plus_baseline": ("whiten", "R - group mean, whitened over the batch's tokens"),
    "opo": ("shifted", "R - length-weighted group mean"), "gpg": ("centered", "alpha (R - group mean), alpha = B/#{R != 0}"),
}


def _verl_adv(est: str, norm: bool) -> tuple[str, str]:
    if est == "grpo_vectorized" or (est == "grpo" and norm):
        return "std-group", "(R - group mean) / (group std (n-1) + 1e-6)"
    if est == "grpo":
        return "centered", "R - group mean"
    if est == "grpo_passk":
        return "shifted", "best of the group only: r_max - r_2nd" + (" / (std + 1e-6)" if norm else "")
    return _VERL_ADV.get(est, ("critic", f"{est}: not a group estimator"))


def _verl(c) -> dict:
    mode, agg = c["policy_loss.loss_mode"], c["loss_agg_mode"]
    C_value = c["loss_scale_factor"]
    base = _agg_verl(agg, C_value)
    omega = {"sapo": 1 / (B * L), "geo_mean": 1 / (b_k * L)}.get(mode, base)
    surrogate = {"vanilla": "ppo-clip", "gspo": "ppo-clip", "sapo": "sapo", "gpg": "reinforce",
                 "cispo": "cispo-clip", "geo_mean": "geo-mean"}[mode]
    est = c["adv_estimator"]
    adv = _verl_adv(est, c["norm_adv_by_std_in_grpo"])
    mini = c["ppo_mini_batch_size"]
    slices = c["train_batch_size"] / mini if c["train_batch_size"] else 1
    notes = []
    if mode == "sapo" and agg != "seq-mean-token-mean":
        notes.append(f"loss_mode=sapo ignores loss_agg_mode={agg}: it always uses seq-mean-token-mean (pitfall 6)")
    if mode == "gspo" and agg != "seq-mean-token-mean":
        notes.append(f"loss_mode=gspo aggregates with loss_agg_mode={agg} (verl 0.9; earlier it forced seq-mean-token-mean): "
                     "set loss_agg_mode=seq-mean-token-mean for GSPO's per-sequence mean 1/(B |o_i|) (pitfall 6)")
    if mode == "geo_mean":
        notes.append("geo_mean ignores loss_agg_mode and the global batch size: torch.mean over each micro-batch, "
                     "so K micro-batches give K times the weight (pitfall 6)")
    if mode == "vanilla":
        notes.append(f"dual clip is always on for A < 0: no gradient once r > clip_ratio_c = {c['clip_ratio_c']:g} (pitfall 7)")
    if agg == "seq-mean-token-sum-norm":
        notes.append("seq-mean-token-sum-norm: 1/(B C) (the legacy dp_actor took 1/(K T_k), no 1/B); C = "
                     + (f"loss_scale_factor = {C_value:g}" if C_value is not None else "the padded width T_k, which varies between micro-batches")
                     + " (pitfall 8)")
    if est == "grpo_vectorized" and not c["norm_adv_by_std_in_grpo"]:
        notes.append("grpo_vectorized divides by the group std whatever norm_adv_by_std_in_grpo says: verl passes the "
                     "flag to the grpo estimator only; use adv_estimator=grpo for Dr. GRPO's centered advantage")
    if c["train_batch_size"] is None:
        notes.append("data.train_batch_size not given: assumed one mini-batch per rollout batch (mu = ppo_epochs)")
    if {"clip_ratio"} & c["_given"] and not {"clip_ratio_low", "clip_ratio_high"} & c["_given"]:
        notes.append("clip_ratio has no effect: clip_ratio_low and clip_ratio_high default to 0.2, not null")
    kl = c["kl_loss_type"] if c["use_kl_loss"] else None
    return dict(surrogate=surrogate, sequence=mode == "gspo", weight=omega, kl=kl, kl_coef=c["kl_loss_coef"] if kl else 0.0,
                kl_weight=base if kl else None, kl_in_reward=c["kl_penalty"] if c["use_kl_in_reward"] else None,
                adv=adv, sigma_eps=1e-6, eps=(c["_eps_low"], c["_eps_high"]), delta=None,
                dual=c["clip_ratio_c"] if mode == "vanilla" else None, mu=c["ppo_epochs"] * slices,
                betas=tuple(c["optim.betas"]), clip=c["grad_clip"],
                constants={C: C_value} if C_value is not None else {}, notes=notes, est=est)


_OPENRLHF_ADV = {"group_norm": ("std-group", "(R - group mean) / (group std (n-1) + 1e-9)"),
                 "dr_grpo": ("centered", "R - group mean"), "rloo": ("centered", "n/(n-1) (R - group mean)"),
                 "flash_reinforce": ("shifted", "R - mean of the whole rollout batch")}


def _openrlhf_adv(est: str, no_std: bool) -> tuple[str, str]:
    if est == "reinforce_baseline":
        return ("shifted", "R - group mean, minus the token mean of the batch") if no_std else \
            ("whiten", "R - group mean, whitened over the batch's tokens")
    return _OPENRLHF_ADV.get(est, ("critic", f"{est}: not a group estimator"))


def _openrlhf(c) -> dict:
    gspo = c["actor.policy_loss_type"] == "gspo"
    omega = 1 / N if c["_token_level"] else 1 / (S * L)
    est = c["algo.advantage.estimator"]
    adv = _openrlhf_adv(est, c["algo.advantage.no_std_norm"])
    coef = c["algo.kl.init_coef"]
    kl = None
    if c["algo.kl.use_loss"] and coef > 0:
        kl = c["algo.kl.estimator"] + ("+w" if c["algo.kl.unbiased_gradient"] else "")
    in_reward = None if c["algo.kl.use_loss"] or coef <= 0 else c["algo.kl.estimator"]
    slices = c["rollout.batch_size"] * c["rollout.n_samples_per_prompt"] / c["train.batch_size"]
    notes = []
    if in_reward:
        notes.append(f"KL ({in_reward}, coefficient {coef:g}) is in the reward by default, not in the loss (pitfall 10)")
    if gspo and c["actor.loss_agg_mode"] != "seq-mean-token-mean":
        notes.append("gspo forces the per-sample mean (seq-mean-token-mean) whatever actor.loss_agg_mode says")
    if kl:
        notes.append("the KL loss is a token mean over the step (1/N) whatever the policy aggregation")
    if slices > 1:
        notes.append(f"rollout.batch_size * n_samples_per_prompt / train.batch_size = {slices:g} optimizer steps per "
                     "rollout batch: after the first, the ratio moves away from 1 and the clip acts")
    return dict(surrogate="ppo-clip", sequence=gspo, weight=omega, kl=kl, kl_coef=coef if kl else 0.0,
                kl_weight=1 / N if kl else None, kl_in_reward=in_reward, adv=adv, sigma_eps=1e-9,
                eps=(c["_eps_low"], c["_eps_high"]), delta=None, dual=c["actor.dual_clip"],
                mu=c["train.max_epochs"] * slices, betas=tuple(c["actor.adam.betas"]), clip=c["actor.max_norm"],
                constants={}, notes=notes, est=est)


#: trainer name -> the reader of its effective config
READERS = {"trl": _trl, "verl": _verl, "openrlhf": _openrlhf}
