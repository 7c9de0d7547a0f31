"""Prop. 2 in practice: a change of the loss aggregation mode under AdamW, gradient-norm clipping and bf16.

verl's ``token-mean`` weights every token of a mini-batch by 1/N (N active tokens) and
``seq-mean-token-sum`` by 1/B (B completions), so switching from one to the other multiplies the
loss, and every gradient, by kappa = N/B, the mean completion length
(:func:`grpo_proofs.props.reward_scale.derive.aggregation_factor`): a loss-scale change of about 10 on
completions of about 10 tokens. By Prop. 2, AdamW's step then changes only by R(kappa, eps, v_hat).
A real training setup adds three things, each measured here on the real policy (tiny GPT-2, one group of
G = 8, the first optimizer step on-policy):

* global gradient-norm clipping (``torch.nn.utils.clip_grad_norm_``) at a max norm c between the two
  modes' gradient norms, so that only the seq-mean-token-sum run clips (c is twice the token-mean
  gradient norm of the first step, the proportion of a max norm of 1 against gradient norms of 0.5
  and 5): that run's optimizer sees kappa min(1, c/(kappa ||g_t|| + 1e-6)) g_t, a factor that follows
  ||g_t|| from step to step, which Prop. 6 cannot absorb;
* eps against small sqrt(v_hat) (Prop. 2's factor itself);
* bf16 autocast (float32 master weights, gradients and optimizer state), whose rounding of kappa g is
  not kappa times the rounding of g.

Each mode's loss is verl's actor loss as the project transcribes it
(:func:`grpo_proofs.trainers.loss_and_grad`, tested against the released verl code), with verl's GRPO
advantages; its gradient through the model is the chain rule sum_(i,t) (d loss/d log pi_(i,t))
grad log pi_(i,t). Both modes step a real ``torch.optim.AdamW`` at the same parameters
(:func:`grpo_proofs.props.reward_scale.model.paired_run`, the token-mean run drives). The prediction
of the seq-mean-token-sum run's steps uses the token-mean run's raw gradients only: kappa g_t, clipped
by torch's rule, fed to the hand-written Adam recurrence (:class:`grpo_proofs.runtime.adam.AdamRecurrence`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...checking.coverage import Comparison, compare, floor_fraction
from ...checking.tolerances import for_precision
from ...runtime.adam import TORCH_CLIP_GUARD, clip_by_norm, preconditioned_steps
from .confirm import LR, WEIGHT_DECAY, relative_change
from .experiments import COVERAGE_BY, conditioned, step_scales
from .model import Batch, Config, make_batch, paired_run

__all__ = ["MODES", "LR", "EPS", "CLIP_MULTIPLE", "Setting", "verl_loss", "aggregation_setting",
           "predicted_steps"]

#: the two aggregation modes compared (the first drives the paired run)
MODES = ("token-mean", "seq-mean-token-sum")
#: AdamW's eps (torch's default); learning rate and weight decay are those of the check's reward-scale runs
EPS = 1e-8
#: the max norm is this multiple of the token-mean run's first gradient norm (1.0 against 0.5)
CLIP_MULTIPLE = 2.0


def verl_loss(mode: str, batch: Batch):
    """verl's actor loss with ``loss_agg_mode = mode`` (GRPO advantages, no KL term) as a
    :class:`~grpo_proofs.props.reward_scale.model.Config` ``loss``: per-prompt log-probs -> scalar whose
    gradient is verl's (each prompt's group is one mini-batch)."""
    from ... import trainers

    cfg = {"loss_agg_mode": mode, "adv_estimator": "grpo"}
    adv = [trainers.advantages("verl", cfg, pr.rewards, np.zeros(len(pr.rewards), int)) for pr in batch.prompts]

    def loss(logps):
        total = 0.0
        for pr, logp, a in zip(batch.prompts, logps, adv):
            as64 = [x.detach().to("cpu", torch.float64).numpy() for x in (logp, pr.old_logp, pr.mask)]
            _, coef = trainers.loss_and_grad("verl", cfg, logp=as64[0], old_logp=as64[1], advantages=a,
                                             mask=as64[2])
            total = total + (torch.as_tensor(coef, dtype=logp.dtype, device=logp.device) * logp).sum()
        return total

    return loss


@dataclass
class Setting:
    """One (precision, clipping) setting: measured and predicted steps of the two modes."""

    precision: str
    clip: bool
    kappa: float
    max_norm: float | None
    active_predicted: list[bool] = field(default_factory=list)
    active_measured: list[bool] = field(default_factory=list)
    predicted_change: float = 0.0
    measured_change: float = 0.0
    comparison: Comparison | None = None
    tolerance: float = 0.0
    grad_norms: list[float] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (self.active_predicted == self.active_measured and self.comparison.error <= self.tolerance)

    def as_dict(self) -> dict:
        return {"precision": self.precision, "clip": self.clip, "kappa": self.kappa, "max_norm": self.max_norm,
                "active_predicted": self.active_predicted, "active_measured": self.active_measured,
                "predicted_change": self.predicted_change, "measured_change": self.measured_change,
                "tolerance": self.tolerance, "grad_norms": self.grad_norms, "passed": self.passed,
                **self.comparison.as_dict()}


def predicted_steps(grads, kappa: float, max_norm: float | None, *, betas, eps: float = EPS):
    """The scaled run's AdamW steps (theta = 0: the decay drops out) from the unscaled run's raw gradients,
    whether the clip acts at each step, and the predicted v_hat."""
    fed, active = [kappa * g for g in grads], []
    if max_norm is not None:
        fed, active = (list(x) for x in zip(*[clip_by_norm(g, max_norm) for g in fed]))
    steps, v_hat = preconditioned_steps(fed, lr=LR, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=WEIGHT_DECAY)
    return steps, active, v_hat, fed


def aggregation_setting(precision: str, clip: bool, *, seed: int = 0, steps: int = 4, kappa: float | None = None,
                        betas=(0.9, 0.999)) -> Setting:
    """Both modes stepped by real AdamW in ``precision`` (``float64`` or ``bf16``), clipped or not.

    ``kappa``: the factor the prediction uses (None: N/B of the sampled group, the derived factor
    evaluated; a planted wrong one must fail the comparison).
    """
    from .derive import aggregation_factor
    from ... import notation as n

    batch = make_batch("grpo", quick=True, seed=seed, model="tiny", precision=precision)
    mask = batch.prompts[0].mask
    derived = float(aggregation_factor(MODES[1], MODES[0]).subs({n.N_step: float(mask.sum()),
                                                                  n.B_step: mask.shape[0]}))
    k = derived if kappa is None else kappa
    losses = {m: verl_loss(m, batch) for m in MODES}
    max_norm = None
    if clip:
        probe = paired_run(batch, {"raw": Config(loss=losses[MODES[0]])}, driver="raw", lr=LR, eps=EPS,
                           betas=betas, steps=1)
        max_norm = CLIP_MULTIPLE * probe["raw"].grad_norms[0]
    cfgs = {m: Config(loss=losses[m], max_grad_norm=max_norm) for m in MODES}
    cfgs["raw"] = Config(loss=losses[MODES[0]])
    cfgs["scaled raw"] = Config(loss=losses[MODES[1]])
    recs = paired_run(batch, cfgs, driver=MODES[0], lr=LR, eps=EPS, betas=betas, steps=steps)
    raw, scaled = recs["raw"].grads, recs[MODES[1]]
    pred, active, v_hat, fed = predicted_steps(raw, k, max_norm, betas=betas)
    keep = conditioned(raw, recs["scaled raw"].grads, derived, precision=precision)
    floor = floor_fraction(batch.n_recorded * steps, COVERAGE_BY[precision])
    cmp = compare(scaled.steps, pred, scale=step_scales(fed, v_hat, lr=LR, eps=EPS, betas=betas), keep=keep,
                  floor=floor, what="coordinate-steps")
    measured_active = [max_norm is not None and nrm + TORCH_CLIP_GUARD > max_norm for nrm in scaled.grad_norms]
    s = Setting(precision, clip, derived, max_norm, active if clip else [False] * steps, measured_active)
    s.predicted_change = relative_change(pred, recs[MODES[0]].steps)
    s.measured_change = relative_change(scaled.steps, recs[MODES[0]].steps)
    s.comparison, s.tolerance = cmp, for_precision("optimizer", precision)
    s.grad_norms = [recs["raw"].grad_norms[0], recs["scaled raw"].grad_norms[0]]
    return s
