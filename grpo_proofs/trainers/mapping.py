"""A trainer config as the unified surrogate: per-token weight, one-group Variant, Table 1 match.

Every trainer loss modelled here has the form L = sum_{i,t} w_{i,t} phi_{i,t}; its gradient is
dL/dl_{i,t} = -omega_{i,t} A_i f_{i,t}, with f the surrogate's branch factor (r 1 for the PPO
clip, 1 for REINFORCE, ...). :class:`TrainerMapping` keeps

* ``weight``: omega_{i,t} as a SymPy expression of the batch symbols of
  :mod:`grpo_proofs.notation` (K micro-batches, b_k rows / N_k tokens / T_k width of micro-batch
  k, B rows and N tokens of the step, S non-empty rows, S_g steps per generation batch,
  L_i = |o_i|, L_max, C); the advantage
  is not in it. For GSPO-style sequence ratios omega = c_i/|o_i| with c_i the sequence weight.
* ``variant``: the one-group reduction, a :class:`~grpo_proofs.variants.Variant` whose alpha
  (symbols G, L_i, L_sum, L_max, sigma only) is omega with the whole step one group in one
  micro-batch (K = 1, b_k = B = S = G, N_k = N = L_sum, T_k = T_pad = L_max = the longest
  completion), times 1/sigma when the trainer divides the advantage by a std. A Variant cannot
  carry micro-batch composition; ``weight`` can.
* ``matches``: the Table 1 rows with the same ratio kind whose alpha differs from the reduced
  one by a constant factor (a function of G and L_max only).

>>> m = to_variant("trl", {"loss_type": "grpo"}, version="1.16.0")
>>> m.weight, m.variant.alpha, m.matches, m.release.title
(1/(K*L_i*b_k), 1/(G*L_i*sigma), ('grpo',), 'TRL 1.16.0')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import sympy as sp

from .. import notation as n
from ..variants import REGISTRY, Ratio, Regularizer, Variant
from . import trainer_module

__all__ = ["TrainerMapping", "to_variant", "REDUCTION"]

E8 = sp.Rational(1, 10**8)
K, b_k, N_k, T_k, B, N, S, T_pad, C, S_g = (n.K_acc, n.b_k, n.N_k, n.T_k, n.B_step, n.N_step, n.S_seq, n.T_pad,
                                            n.C_scale, n.S_gen)
L = n.L_i
#: batch symbols -> their value when the whole step is one group in one micro-batch (and one generation batch)
REDUCTION = {K: 1, b_k: n.G, B: n.G, S: n.G, N_k: n.L_sum, N: n.L_sum, T_k: n.L_max, T_pad: n.L_max, S_g: 1}


def _exact(x: float) -> sp.Rational:
    return sp.Rational(repr(float(x)))


@dataclass(frozen=True)
class TrainerMapping:
    """What one trainer config optimises, in the terms of the unified surrogate (see module doc)."""

    trainer: str
    config: Mapping
    #: ppo-clip | cispo-cap | cispo-clip | sapo | vespo | reinforce | geo-mean
    surrogate: str
    sequence: bool
    weight: sp.Expr
    kl: str | None
    kl_coef: float
    kl_weight: sp.Expr | None
    #: KL penalty inside the reward (not the loss), or None
    kl_in_reward: str | None
    #: std-group | std-batch | whiten | centered | shifted | critic
    advantage_kind: str
    advantage: str
    variant: Variant
    #: when the Variant's gradient equals the trainer's ("always", "while r < 3 on A < 0 tokens", ...)
    exact: str
    matches: tuple[str, ...]
    closest: tuple[str, ...]
    #: the Variant's alpha without the 1e-8 guards and with symbolic constants (for people)
    alpha_clean: sp.Expr
    #: optimizer steps taken on one sampled batch (num_iterations / ppo_epochs / max_epochs times slices)
    mu: float
    adam_betas: tuple[float, float]
    grad_clip: float | None
    #: dual-clip bound (verl vanilla, OpenRLHF dual_clip) and TRL delta, when they act
    dual_clip: float | None = None
    delta: float | None = None
    #: symbol -> value of the config constants in ``weight`` (L_max, C, S_g)
    constants: Mapping = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: the release described (:class:`grpo_proofs.trainers.releases.Release`)
    release: object = None
    #: options of the release given in the config that the loss does not read
    ignored: tuple[str, ...] = ()

    @property
    def reduced_weight(self) -> sp.Expr:
        """omega with the step one group in one micro-batch (advantage excluded)."""
        return sp.cancel(self.weight.subs(REDUCTION))

    def formula(self) -> str:
        """'omega_{i,t} = ...' for people (padding excluded)."""
        return f"omega_i,t = {sp.sstr(self.weight)}"


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


def _variant(trainer: str, d: dict) -> tuple[Variant, str, sp.Expr]:
    """The one-group Variant, when its gradient equals the trainer's, and the clean alpha for matching."""
    kind, _ = d["adv"]
    w = sp.cancel(d["weight"].subs(REDUCTION))
    extra = sp.Integer(1)
    if d.get("est") in ("rloo", "rloo_vectorized") or (trainer == "openrlhf" and d.get("est") == "rloo"):
        extra = n.G / (n.G - 1)
    params = {}
    if trainer == "verl" and d.get("est") == "gpg":
        extra, params = n.alpha_hat / n.F_norm, {"alpha_hat": 1.0, "F_norm": 1.0}
    std = kind in ("std-group", "std-batch")
    alpha = w * extra / (n.sigma if std else 1)
    eps_lo, eps_hi = d["eps"]
    exact, ratio = "always", Ratio.SEQ_GEOMEAN if d["sequence"] else Ratio.TOKEN
    lo, hi = eps_lo, eps_hi
    s = d["surrogate"]
    if s == "cispo-cap":
        if eps_hi > 1 and not d["sequence"]:
            ratio, lo, hi = Ratio.SG_WEIGHT, None, eps_hi - 1
        else:
            ratio, lo, hi = Ratio.LOGPROB, None, None
            alpha = alpha * _exact(eps_hi)
            exact = f"while r >= epsilon_high = {eps_hi:g} (then min(r, eps_high) = eps_high)"
    elif s == "cispo-clip":
        ratio = Ratio.SG_WEIGHT
    elif s != "ppo-clip":
        ratio, lo, hi = Ratio.LOGPROB, None, None
        exact = "always" if s == "reinforce" else f"at r = 1 only ({s} has no Table 1 surrogate)"
    if d["dual"] is not None:
        exact = f"while r < {d['dual']:g} on A < 0 tokens (dual clip)"
    if d["delta"] is not None:
        exact = f"while r < delta = {d['delta']:g}"
    if kind in ("whiten", "shifted", "critic"):
        exact = f"no: the advantage ({d['adv'][1]}) is not r - mean scaled per group"
    if d["sequence"] and trainer == "verl":
        exact = "while log s_i <= 10 (verl clamps the sequence log-ratio)"
    reg, beta = Regularizer.NONE, 0.0
    if d["kl"] in ("k3", "low_var_kl", "k3+"):
        reg, beta = Regularizer.K3, d["kl_coef"]
    elif d["kl"] == "k3*r":
        reg, beta = Regularizer.IW_K3, d["kl_coef"]
    numeric = alpha.subs({k: _exact(v) for k, v in d["constants"].items()
                          if k is not S_g and (k is not n.L_max or trainer == "trl")})
    rel = d["release"]
    v = Variant(f"{trainer}-{rel.version}:{s}", sp.nsimplify(numeric) if numeric.free_symbols <= {n.G} else numeric, ratio, lo, hi,
                "std" if std else "centered", d["sigma_eps"] if std else 0.0, reg, beta, params,
                title=f"{rel.title} config", source=f"{rel.title} (grpo_proofs.trainers)", notes=d["adv"][1])
    clean = sp.cancel(d["weight"].subs(E8, 0).subs(REDUCTION)) * extra / (n.sigma if std else 1)
    if s == "cispo-cap" and ratio is Ratio.LOGPROB:
        clean = clean * _exact(eps_hi)
    return v, exact, clean


def _matches(v: Variant, clean: sp.Expr, kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if kind == "critic":
        return (), ()
    unit = n.DEFAULT_MASKS
    found, near = [], []
    for name, ref in REGISTRY.items():
        if ref.ratio is not v.ratio:
            continue
        q = sp.cancel(clean.subs(n.alpha_hat / n.F_norm, 1) / ref.alpha_with_params().subs(unit))
        if q.has(sp.Piecewise):
            continue
        free = q.free_symbols
        if free <= {n.G, n.L_max, C}:
            found.append(name)
        elif free <= {n.G, n.L_max, C, n.sigma}:
            near.append(name)
    found.sort(key=lambda name: REGISTRY[name].regularizer is not v.regularizer)  # same regulariser first
    return tuple(found), () if found else tuple(near)


def to_variant(trainer: str, config=None, *, version=None) -> TrainerMapping:
    """Map a trainer config of a release onto the unified surrogate (see the module docstring)."""
    mod = trainer_module(trainer)
    c = mod.config(config, version)
    d = {"trl": _trl, "verl": _verl, "openrlhf": _openrlhf}[mod.NAME](c)
    d["release"] = c["_release"]
    v, exact, clean = _variant(mod.NAME, d)
    found, near = _matches(v, clean, d["adv"][0])
    if v.ratio is Ratio.LOGPROB and d["surrogate"] not in ("reinforce", "cispo-cap"):
        found, near = (), found + near  # only equal at r = 1
    return TrainerMapping(mod.NAME, c, d["surrogate"], d["sequence"], d["weight"], d["kl"], float(d["kl_coef"]),
                          d["kl_weight"], d["kl_in_reward"], d["adv"][0], d["adv"][1], v, exact, found, near, clean,
                          float(d["mu"]), tuple(float(b) for b in d["betas"]),
                          None if d["clip"] is None else float(d["clip"]), d["dual"], d["delta"],
                          dict(d["constants"]), tuple(d["notes"]), c["_release"], tuple(c["_ignored"]))
