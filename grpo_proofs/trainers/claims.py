"""Claims on the trainer models (TRL 1.16.0 and 1.9.0, verl 0.9.1, OpenRLHF 0.11.2): page ``trainers``.

* ``trainers-loss-and-grad`` -- for every modelled loss (TRL loss types at token and sequence
  level with and without KL, in both TRL releases, with S != K; verl loss modes x aggregation
  modes x KL types; OpenRLHF ppo / gspo / both aggregation modes / dual clip / KL, the unbiased
  KL gradient), autograd through the model of the release's loss equals the closed form
  of the mapping (symbolic per-token weight evaluated at the batch's numbers times the branch
  factor), with one and two micro-batches and junk in the padding.
* ``trainers-variant-mapping`` -- for configs whose one-group Variant is exact, the gradient
  SymPy derives for that Variant (:func:`grpo_proofs.token_gradient`, J maximised) is
  minus the trainer's gradient when the step is one group in one micro-batch, with the
  trainer's own advantages.
* ``trainers-cross-library-equivalence`` -- equivalences between the three trainers' models
  (TRL dapo = verl vanilla token-mean = OpenRLHF ppo; verl dual clip = OpenRLHF dual_clip; TRL
  grpo+sequence = verl gspo with seq-mean-token-mean = OpenRLHF gspo; verl gspo with its default
  token-mean = TRL dapo+sequence; TRL sapo = verl sapo; TRL dr_grpo = verl seq-mean-token-sum-norm
  with loss_scale_factor = L_max).

These claims check the project's models against closed forms and against each other; the
tests marked ``peers`` check them against the releases' own code.
"""

from __future__ import annotations

import numpy as np

from ..checking import tolerances
from ..runtime.numerics import rel_err
from ..checking import Context, Outcome, claim

__all__ = ["random_step", "LOSS_AND_GRAD_CONFIGS", "EXACT_CONFIGS"]


def random_step(rng: np.random.Generator, B: int = 6, T: int = 9, spread: float = 0.25, junk: float = 5.0) -> dict:
    """A random optimizer step: log-probs with junk in the padding, lengths 1..T, advantages."""
    L = rng.integers(1, T + 1, size=B)
    L[rng.integers(B)] = T
    mask = (np.arange(T)[None, :] < L[:, None]).astype(np.float64)
    logp = -rng.uniform(0.2, 3.0, size=(B, T))
    old = logp + spread * rng.normal(size=(B, T))
    ref = logp + 0.3 * rng.normal(size=(B, T))
    pad = mask == 0
    for a in (logp, old, ref):
        a[pad] = rng.uniform(-junk, junk, size=int(pad.sum()))
    return {"logp": logp, "old_logp": old, "ref_logp": ref, "mask": mask, "advantages": rng.normal(size=B)}


def _trl_configs(quick: bool) -> list[dict]:
    out = []
    for version in ("1.16.0", "1.9.0"):
        for lt in ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"):
            for level in ("token", "sequence"):
                for beta, bc in ((0.0, False), (0.1, False), (0.1, True)):
                    if quick and (beta and level == "sequence" or version == "1.9.0" and lt not in ("dapo", "luspo")):
                        continue
                    out.append({"version": version, "loss_type": lt, "importance_sampling_level": level, "beta": beta,
                                "use_bias_correction_kl": bc})
    out += [{"loss_type": "grpo", "delta": 1.1}, {"loss_type": "dapo", "delta": 4.0},
            {"loss_type": "cispo", "epsilon_high": 5.0}, {"loss_type": "dapo", "off_policy_mask_threshold": 0.05},
            {"loss_type": "dapo", "per_device_train_batch_size": 4, "num_generations": 4, "steps_per_generation": 4},
            {"loss_type": "vespo", "per_device_train_batch_size": 4, "num_generations": 4, "steps_per_generation": 1},
            {"loss_type": "vespo", "vespo_lambda_neg": 0.0}]
    return [("trl", c) for c in out]


def _verl_configs(quick: bool) -> list[dict]:
    out = []
    for mode in ("vanilla", "gspo", "sapo", "gpg", "cispo", "geo_mean"):
        for agg in ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"):
            out.append({"policy_loss": {"loss_mode": mode}, "loss_agg_mode": agg, "clip_ratio_c": 1.3})
        out.append({"policy_loss": {"loss_mode": mode}, "loss_agg_mode": "seq-mean-token-sum-norm", "loss_scale_factor": 11.0})
    kls = ("kl", "abs", "k2", "low_var_kl", "k3+") if quick else ("kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3", "k1+", "k3+")
    for kl in kls:
        out.append({"use_kl_loss": True, "kl_loss_type": kl, "kl_loss_coef": 0.1, "loss_agg_mode": "seq-mean-token-mean"})
    return [("verl", c) for c in out]


def _openrlhf_configs(quick: bool) -> list[dict]:
    out = []
    for pt in ("ppo", "gspo"):
        for agg in ("token-mean", "seq-mean-token-mean"):
            for dual in (None, 1.3):
                out.append({"actor.policy_loss_type": pt, "actor.loss_agg_mode": agg, "actor.dual_clip": dual,
                            "actor.eps_clip_low_high": [0.2, 0.28]})
        for kl in ("k1", "k2", "k3"):
            for unbiased in (False, True):
                out.append({"actor.policy_loss_type": pt, "algo.kl.use_loss": True, "algo.kl.estimator": kl,
                            "algo.kl.init_coef": 0.1, "algo.kl.unbiased_gradient": unbiased})
    return [("openrlhf", c) for c in out]


def LOSS_AND_GRAD_CONFIGS(quick: bool = False) -> list[tuple[str, dict]]:
    """(trainer, config) pairs covering every modelled loss of every supported release."""
    return _trl_configs(quick) + _verl_configs(quick) + _openrlhf_configs(quick)


@claim("trainers-loss-and-grad", page="trainers", kind="numeric",
       title="Trainer losses: autograd through the model of each release equals the mapped closed form",
       statement="For every modelled TRL (1.16.0, 1.9.0), verl (0.9.1) and OpenRLHF (0.11.2) loss, d loss/d logp of one "
                 "optimizer step (one or two "
                 "micro-batches, junk in the padding) equals -omega_{i,t} A_i f_{i,t} (+ the KL term), with omega the "
                 "symbolic per-token weight of the config evaluated at the batch's numbers.")
def check_loss_and_grad(ctx: Context) -> Outcome:
    from . import loss_and_grad, mapped_gradient

    rng = np.random.default_rng(ctx.seed)
    worst, rows = 0.0, []
    for trainer, cfg in LOSS_AND_GRAD_CONFIGS(ctx.quick):
        step = random_step(rng)
        for mbs in (None, [[0, 2, 4], [1, 3, 5]]):
            _, grad = loss_and_grad(trainer, cfg, micro_batches=mbs, **step)
            expected = mapped_gradient(trainer, cfg, micro_batches=mbs, **step)
            err = rel_err(grad, expected)
            worst = max(worst, err)
            rows.append({"trainer": trainer, "config": cfg, "micro_batches": 1 if mbs is None else 2, "error": err})
    return Outcome(worst if rows else float("inf"), tolerances.CLOSED_FORM, f"{len(rows)} (config, split) cases compared",
                   {"cases": rows, "compared": len(rows)})


def EXACT_CONFIGS() -> list[tuple[str, dict]]:
    """Configs whose one-group Variant reproduces the trainer's gradient (in the sampled region)."""
    return [
        ("trl", {"loss_type": "grpo"}), ("trl", {"loss_type": "bnpo"}), ("trl", {"loss_type": "dr_grpo", "scale_rewards": "none"}),
        ("trl", {"loss_type": "dapo", "epsilon_high": 0.28}), ("trl", {"loss_type": "dapo", "scale_rewards": "batch"}),
        ("trl", {"loss_type": "cispo", "epsilon_high": 5.0}), ("trl", {"loss_type": "cispo"}),
        ("trl", {"loss_type": "grpo", "importance_sampling_level": "sequence"}),
        ("trl", {"loss_type": "luspo", "importance_sampling_level": "sequence"}),
        ("verl", {"adv_estimator": "grpo"}), ("verl", {"adv_estimator": "grpo", "loss_agg_mode": "seq-mean-token-mean"}),
        ("verl", {"adv_estimator": "grpo", "norm_adv_by_std_in_grpo": False, "loss_agg_mode": "seq-mean-token-sum-norm"}),
        ("verl", {"adv_estimator": "rloo", "loss_agg_mode": "seq-mean-token-sum"}),
        ("verl", {"adv_estimator": "grpo", "policy_loss": {"loss_mode": "gspo"}}),
        ("verl", {"adv_estimator": "grpo", "policy_loss": {"loss_mode": "cispo"}, "clip_ratio_high": 0.28}),
        ("verl", {"adv_estimator": "gpg", "policy_loss": {"loss_mode": "gpg"}}),
        ("openrlhf", {"algo.advantage.estimator": "group_norm"}), ("openrlhf", {"algo.advantage.estimator": "dr_grpo"}),
        ("openrlhf", {"algo.advantage.estimator": "rloo"}),
        ("openrlhf", {"algo.advantage.estimator": "group_norm", "actor.policy_loss_type": "gspo"}),
        ("openrlhf", {"algo.advantage.estimator": "dr_grpo", "actor.loss_agg_mode": "seq-mean-token-mean"}),
    ]


@claim("trainers-variant-mapping", page="trainers", kind="numeric",
       title="Trainer configs map onto the unified surrogate",
       statement="For a step made of one group in one micro-batch, the gradient SymPy derives for the config's Variant "
                 "(token_gradient, sample std plus the trainer's constant) equals minus the trainer's gradient computed "
                 "with its own advantages.")
def check_variant_mapping(ctx: Context) -> Outcome:
    from .. import token_gradient  # the public API (grpo_proofs.evaluate)
    from . import advantages, loss_and_grad, to_variant

    rng = np.random.default_rng(ctx.seed + 1)
    worst, rows = 0.0, []
    for trainer, base in EXACT_CONFIGS():
        for _ in range(1 if ctx.quick else 3):
            G = int(rng.integers(2, 7))
            cfg = {**base, "rollout.n_samples_per_prompt": G} if trainer == "openrlhf" else base
            mp = to_variant(trainer, cfg)
            lengths = rng.integers(1, 10, size=G)
            rewards = rng.integers(0, 3, size=G).astype(float)
            while np.ptp(rewards) == 0:
                rewards = rng.integers(0, 3, size=G).astype(float)
            ids = np.zeros(G, dtype=int)
            T = int(lengths.max())
            mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
            log_ratios = [0.1 * rng.normal(size=L) for L in lengths]
            old = -rng.uniform(0.5, 2.0, size=(G, T))
            logp = old.copy()
            for i, lr in enumerate(log_ratios):
                logp[i, : lengths[i]] += lr
            adv = advantages(trainer, cfg, rewards, ids, lengths=lengths)
            _, grad = loss_and_grad(trainer, cfg, logp=logp, old_logp=old, advantages=adv, mask=mask)
            v = mp.variant
            if "alpha_hat" in v.params:  # verl gpg: alpha = B / #{R != 0} of this batch
                v = v.replace(params={"alpha_hat": G / max(np.count_nonzero(rewards), 1), "F_norm": 1.0})
            sym = token_gradient(v, rewards, lengths, log_ratios=log_ratios, sigma="sample")
            expected = -np.concatenate(sym)
            err = rel_err(grad[mask > 0], expected)
            worst = max(worst, err)
            rows.append({"trainer": trainer, "config": cfg, "G": G, "error": err})
    return Outcome(worst if rows else float("inf"), tolerances.CLOSED_FORM, f"{len(rows)} groups compared",
                   {"cases": rows, "compared": len(rows)})


@claim("trainers-cross-library-equivalence", page="trainers", kind="numeric",
       title="Equivalences between TRL, verl and OpenRLHF configs",
       statement="TRL dapo = verl vanilla token-mean = OpenRLHF ppo; verl vanilla (dual clip 3) = OpenRLHF dual_clip 3; "
                 "TRL grpo with sequence ratios = verl gspo with seq-mean-token-mean = OpenRLHF gspo; verl gspo with its "
                 "default token-mean = TRL dapo with sequence ratios; TRL sapo = verl sapo; TRL dr_grpo = verl "
                 "seq-mean-token-sum-norm with loss_scale_factor = L_max (TRL 1.16.0, verl 0.9.1, OpenRLHF 0.11.2).")
def check_cross_library(ctx: Context) -> Outcome:
    from . import loss_and_grad

    rng = np.random.default_rng(ctx.seed + 2)
    worst, rows = 0.0, []
    for _ in range(2 if ctx.quick else 5):
        step = random_step(rng, B=6, T=9, spread=0.3)
        mbs = [[0, 1, 2], [3, 4, 5]]

        def g(trainer, cfg, **kw):
            return loss_and_grad(trainer, cfg, micro_batches=mbs, **{**step, **kw})[1]

        pairs = {
            "dapo=vanilla token-mean": (g("trl", {"loss_type": "dapo"}), g("verl", {})),
            "vanilla token-mean=ppo": (g("verl", {}), g("openrlhf", {})),
            "grpo-seq=gspo seq-mean-token-mean (verl)": (
                g("trl", {"loss_type": "grpo", "importance_sampling_level": "sequence"}),
                g("verl", {"policy_loss": {"loss_mode": "gspo"}, "loss_agg_mode": "seq-mean-token-mean"})),
            "gspo verl=openrlhf": (g("verl", {"policy_loss": {"loss_mode": "gspo"}, "loss_agg_mode": "seq-mean-token-mean"}),
                                   g("openrlhf", {"actor.policy_loss_type": "gspo"})),
            "gspo token-mean (verl)=dapo-seq": (g("verl", {"policy_loss": {"loss_mode": "gspo"}}),
                                                g("trl", {"loss_type": "dapo", "importance_sampling_level": "sequence"})),
            "sapo trl=verl": (g("trl", {"loss_type": "sapo"}), g("verl", {"policy_loss": {"loss_mode": "sapo"}})),
            "dr_grpo=seq-mean-token-sum-norm": (g("trl", {"loss_type": "dr_grpo", "max_completion_length": 64}),
                                                g("verl", {"loss_agg_mode": "seq-mean-token-sum-norm", "loss_scale_factor": 64})),
        }
        big = dict(step)
        big["logp"] = step["logp"] + np.where(rng.random(step["mask"].shape) < 0.3, 1.5, 0.0) * step["mask"]
        pairs["dual clip verl=openrlhf"] = (loss_and_grad("verl", {}, micro_batches=mbs, **big)[1],
                                            loss_and_grad("openrlhf", {"actor.dual_clip": 3.0}, micro_batches=mbs, **big)[1])
        for name, (a, b) in pairs.items():
            err = rel_err(a, b)
            worst = max(worst, err)
            rows.append({"pair": name, "error": err})
    return Outcome(worst if rows else float("inf"), tolerances.CLOSED_FORM, f"{len(rows)} comparisons",
                   {"cases": rows, "compared": len(rows)})
