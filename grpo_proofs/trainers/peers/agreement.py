"""Common configurations, each run through its release's own code and through grpo_proofs.trainers.

:data:`COMMON` lists configs people train with (TRL's default, GRPO, Dr. GRPO, DAPO, CISPO,
GSPO, with a KL term, with steps_per_generation != gradient_accumulation_steps; verl's default,
its GRPO and Dr. GRPO recipes, GSPO; OpenRLHF's default, GSPO, the per-sample mean, dual clip with a
k3 KL loss). :func:`compare` runs one of them through the release (a real ``trl.GRPOTrainer`` on its
own generated batch; verl's and OpenRLHF's own loss functions on a fixed random batch of two
micro-batches) and through :func:`grpo_proofs.trainers.loss_and_grad`, and returns the largest
relative difference of loss and gradient. The book's trainer page shows the table.
"""

from __future__ import annotations

import numpy as np

from ...runtime.numerics import rel_err
from ...checking.tolerances import CLOSED_FORM, RELEASE_FLOAT32

__all__ = ["COMMON", "compare", "table"]

_TRL_SIZES = {"num_generations": 4, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
              "max_completion_length": 5}
#: (trainer, what it is, config in the trainer's own keys / argument line)
COMMON: list[tuple[str, str, object]] = [
    ("trl", "default (dapo)", {}),
    ("trl", "grpo", {"loss_type": "grpo"}),
    ("trl", "Dr. GRPO", {"loss_type": "dr_grpo", "scale_rewards": "none"}),
    ("trl", "DAPO clip-higher, mu = 2", {"loss_type": "dapo", "epsilon_high": 0.28, "num_iterations": 2}),
    ("trl", "bnpo", {"loss_type": "bnpo"}),
    ("trl", "CISPO (ScaleRL)", {"loss_type": "cispo", "epsilon_high": 5.0, "scale_rewards": "batch"}),
    ("trl", "GSPO", {"loss_type": "grpo", "importance_sampling_level": "sequence", "epsilon": 3e-4, "epsilon_high": 4e-4}),
    ("trl", "grpo, beta = 0.04", {"loss_type": "grpo", "beta": 0.04}),
    ("trl", "dapo, beta = 0.04", {"loss_type": "dapo", "beta": 0.04}),
    ("trl", "dapo, S = 2K", {"loss_type": "dapo", "steps_per_generation": 4}),
    ("trl", "cispo, S = 2K", {"loss_type": "cispo", "epsilon_high": 5.0, "steps_per_generation": 4}),
    ("trl", "LUSPO", {"loss_type": "luspo", "importance_sampling_level": "sequence"}),
    ("trl", "luspo, token ratio", {"loss_type": "luspo"}),
    ("verl", "default (vanilla, token-mean)", {"adv_estimator": "grpo"}),
    ("verl", "GRPO (seq-mean-token-mean)", {"adv_estimator": "grpo", "loss_agg_mode": "seq-mean-token-mean"}),
    ("verl", "Dr. GRPO recipe", {"adv_estimator": "grpo", "norm_adv_by_std_in_grpo": False,
                                 "loss_agg_mode": "seq-mean-token-sum-norm", "loss_scale_factor": 64}),
    ("verl", "GSPO (loss_mode=gspo)", {"policy_loss": {"loss_mode": "gspo"}}),
    ("verl", "KL loss (low_var_kl)", {"use_kl_loss": True, "kl_loss_coef": 0.001}),
    ("openrlhf", "default (ppo)", "--algo.advantage.estimator group_norm --rollout.n_samples_per_prompt 4"),
    ("openrlhf", "GSPO", "--actor.policy_loss_type gspo --actor.eps_clip_low_high 0.2 0.28"),
    ("openrlhf", "per-sample mean", "--actor.loss_agg_mode seq-mean-token-mean"),
    ("openrlhf", "dual clip, k3 KL loss", "--actor.dual_clip 3 --algo.kl.use_loss --algo.kl.estimator k3"),
]


def _batch(seed: int = 0, B: int = 6, T: int = 7):
    rng = np.random.default_rng(seed)
    L = rng.integers(1, T + 1, size=B)
    L[0] = T
    mask = (np.arange(T)[None, :] < L[:, None]).astype(np.float64)
    logp = -rng.uniform(0.1, 3.0, size=(B, T))
    old = logp + 0.6 * rng.uniform(-1, 1, size=(B, T))
    ref = logp + 0.6 * rng.uniform(-1, 1, size=(B, T))
    for a in (logp, old, ref):
        a[mask == 0] = rng.uniform(-6, 6, size=int((mask == 0).sum()))
    old[1, :3] = logp[1, :3] - np.log(4.0)  # ratios past a dual clip of 3
    return dict(logp=logp, old_logp=old, ref_logp=ref, mask=mask, advantages=rng.normal(size=B)), [[0, 2, 4], [1, 3, 5]]


def _err(mine, theirs) -> float:
    (l1, g1), (l2, g2) = mine, theirs
    if not np.abs(g2).max() > 0:
        raise ValueError("the release's gradient is zero: nothing would be compared")
    return max(rel_err(g1, g2), abs(l1 - l2) / max(abs(l2), 1.0))


def compare(trainer: str, config, *, seed: int = 0, model=None) -> dict:
    """One common config through its release and through ``model`` (default loss_and_grad)."""
    from .. import loss_and_grad

    model = model or loss_and_grad
    if trainer == "trl":
        from .trl import VERSION, TRLRun, reward_count

        cfg = {**_TRL_SIZES, **config}
        run = TRLRun(cfg, reward_funcs=(reward_count,), seed=seed)
        gen = run.generate()
        rng = np.random.default_rng(seed)
        base = gen.old_logp if gen.old_logp is not None else gen.model_logp
        logp = base + 0.4 * rng.uniform(-1, 1, size=base.shape)
        old = gen.old_logp if gen.old_logp is not None else logp
        err = 0.0
        for step in range(int(run.args.steps_per_generation) // int(run.args.gradient_accumulation_steps)):
            theirs = run.loss_and_grad(gen, logp, step)
            mine = model("trl", cfg, logp=logp, old_logp=old, advantages=gen.advantages, mask=gen.mask,
                         ref_logp=gen.ref_logp, micro_batches=run.step_rows(gen, step))
            err = max(err, _err(mine, theirs))
        return {"release": f"TRL {VERSION}", "error": err, "tolerance": CLOSED_FORM}
    step, mbs = _batch(seed)
    if trainer == "verl":
        from . import verl as pv

        actor = {k: v for k, v in config.items() if k not in ("adv_estimator", "norm_adv_by_std_in_grpo")}
        theirs = pv.policy_loss_and_grad(pv.actor_config(actor, rollout_n=2, micro_batch_rows=3), micro_batches=mbs, **step)
        mine = model("verl", config, micro_batches=mbs, **step)
        return {"release": f"verl {pv.VERSION}", "error": _err(mine, theirs), "tolerance": CLOSED_FORM}
    from ..config_files import parse_argument_line
    from . import openrlhf as po

    argv = config.split()
    args = po.parse(argv)
    if args.actor.eps_clip_low_high is None:
        args.actor.eps_clip_low_high = (args.actor.eps_clip, args.actor.eps_clip)
    theirs = po.loss_and_grad(args, micro_batches=mbs, **step)
    mine = model("openrlhf", parse_argument_line(argv, po.VERSION), micro_batches=mbs, **step)
    return {"release": f"OpenRLHF {po.VERSION}", "error": _err(mine, theirs), "tolerance": RELEASE_FLOAT32}


def table(seed: int = 0) -> list[dict]:
    """Every common config compared: trainer, what, config, release, error, tolerance, agrees."""
    out = []
    for trainer, what, cfg in COMMON:
        row = compare(trainer, cfg, seed=seed)
        out.append({"trainer": trainer, "what": what, "config": cfg, **row, "agrees": row["error"] <= row["tolerance"]})
    return out
