"""Trainers beyond TRL, verl and OpenRLHF, their default objective mapped onto the unified surrogate.

Each :class:`OtherTrainer` names the release (or branch) and the file read, maps the default loss onto a
:class:`~grpo_proofs.variants.Variant` (the advantage part, beta = 0) and carries an independent
transcription of the trainer's loss, written here in Torch from its code (``loss(logp, old, rewards,
mask) -> -J`` on one group, as :mod:`grpo_proofs.reference`). The findings page's measures
(:mod:`grpo_proofs.props.findings.api`) of both must agree; the verdicts are read off them.

* **slime** (THUDM, main at 624b824, 2026-08-21; ``slime/utils/ppo_utils.py``,
  ``slime/backends/megatron_utils/loss.py``, ``slime/ray/rollout.py``): each rollout's token mean, averaged
  over the B rollouts (``--calculate-per-token-loss`` off by default; every sample is its own rollout unless
  a rollout is split into several samples): w = 1/(B |o_i|); z-score advantage with Torch's (sample) std
  + 1e-6; clip 0.2; no KL loss. GRPO's weight.
* **NeMo-RL** (NVIDIA, main at 7ea279a, 2026-08-22; ``nemo_rl/algorithms/utils.py::calculate_baseline_and_std_per_prompt``,
  ``nemo_rl/algorithms/advantage_estimator.py::GRPOAdvantageEstimator``,
  ``nemo_rl/algorithms/loss/loss_functions.py::ClippedPGLossFn``): token mean over the global batch,
  w = 1/N; leave-one-out baseline b_i = mean of the other G - 1 rewards and leave-one-out std s_i (sample
  std of the other rewards), divided only where s_i > 0, by s_i + 1e-6: A_i = (r_i - b_i)/(s_i + 1e-6).
  Since r_i - b_i = G/(G - 1) (r_i - mean r), this is the surrogate with a per-completion weight
  delta_i = G/((G - 1)(s_i + 1e-6)) (:func:`loo_delta`). In a group with as many correct as wrong answers
  every s_i is the same and W = 0 (the token mean cancels); otherwise the correct and the wrong completions
  get different s_i and Prop. 1's W != 0 although the token mean alone cancels. The singleton pathology
  (:func:`loo_baseline_std`): s_i = 0 exactly when the other G - 1 rewards are all equal (a 1-vs-rest group),
  and A_i = r_i - b_i is then not divided at all. The default config also adds a k3 KL penalty (coefficient
  0.01), not part of the advantage part mapped here.
* **SkyRL** (NovaSky, main at a956457, 2026-08-21, package version 0.3.0;
  ``skyrl/backends/skyrl_train/utils/ppo_utils.py``, defaults in ``skyrl/train/config/config.py``): the reduction is folded
  into the advantage (``apply_loss_reduction_to_advantages_minibatch``); default ``token_mean``: w = 1/N;
  ``prompt_mean``: w = 1/(Q N_p), N_p the tokens of prompt p's group (on one group the same as token
  mean); z-score with the sample std + 1e-6 (``grpo_norm_by_std``); clip 0.2; a KL loss (coef 0.001) on.
* **prime-rl** (main at 559b447, 2026-08-21; ``src/prime_rl/trainer/rl/loss.py``, defaults in
  ``packages/prime-rl-configs/src/prime_rl/configs/trainer.py``): token mean w = 1/N; DPPO's binary-TV mask
  (delta 0.2); centered advantage r - mean (``orchestrator/algo/grpo.py``); plus 1e-3 (log r)^2, whose
  gradient -2e-3 log r pulls a token back past the bound (:data:`PRIME_RL_KL`, not part of the advantage
  part mapped here).
* **Unsloth** (``unsloth_zoo`` 2026.10.9, ``unsloth_zoo/rl_replacements.py::grpo_compute_loss``): TRL's
  formulas, with TRL's default ``loss_type = "dapo"``: w = 1/N (``num_items_in_batch``), z-score
  advantage with the sample std + 1e-4 (TRL's ``scale_rewards = "group"``), clip 0.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .. import notation as n
from ..variants import Ratio, Surrogate, Variant

__all__ = ["OtherTrainer", "OTHER_TRAINERS", "loo_baseline_std", "loo_delta", "loo_advantages", "PRIME_RL_KL", "NEMO_RL_STD_EPS"]

#: NeMo-RL adds this to a positive leave-one-out std before dividing by it
NEMO_RL_STD_EPS = 1e-6
#: prime-rl's coefficient of (log r)^2 (added to the loss; its gradient is 2 * coef * log r per token)
PRIME_RL_KL = 1e-3


def loo_baseline_std(rewards, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """NeMo-RL's leave-one-out baseline and std of one group, transcribed (``dtype`` float64 or float32):
    b_i = sum_{j != i} r_j/(G - 1), s_i = sqrt((sum_{j != i} r_j^2/(G - 1) - b_i^2) (G - 1)/(G - 2)),
    nan -> 0.

    >>> b, s = loo_baseline_std([1.0, 0.0, 0.0, 0.0])
    >>> b.tolist(), s.tolist()[0]  # the singleton's others are all 0: its std is exactly 0
    ([0.0, 0.3333333333333333, 0.3333333333333333, 0.3333333333333333], 0.0)
    """
    r = torch.as_tensor(rewards, dtype=dtype)
    G = r.numel()
    off = (1 - torch.eye(G, dtype=dtype))
    m = torch.tensor(float(G - 1), dtype=dtype)
    b = off @ r / m
    sq = off @ r.pow(2) / m
    s = ((sq - b.square()) * (m / (m - 1))).sqrt().nan_to_num(0)
    return b, s


def loo_advantages(rewards, dtype=torch.float64) -> torch.Tensor:
    """A_i = (r_i - b_i)/(s_i + 1e-6) where s_i > 0, else r_i - b_i (NeMo-RL's normalisation,
    ``GRPOAdvantageEstimator.compute_advantage``; the 1e-6 is :data:`NEMO_RL_STD_EPS`)."""
    r = torch.as_tensor(rewards, dtype=dtype)
    b, s = loo_baseline_std(r, dtype)
    A = r - b
    return torch.where(s > 0, A / (s + NEMO_RL_STD_EPS), A)


def loo_delta(rewards) -> np.ndarray:
    """delta_i with (r_i - mean r) delta_i = NeMo-RL's A_i: G/((G - 1)(s_i + 1e-6)), or G/(G - 1) where s_i = 0."""
    G = len(rewards)
    _, s = loo_baseline_std(rewards)
    s = s.numpy()
    return np.where(s > 0, G / ((G - 1) * (s + NEMO_RL_STD_EPS)), G / (G - 1))


def _ppo_terms(logp, old, A, mask, lo=0.2, hi=0.2):
    s = torch.exp(logp - old)
    return torch.minimum(s * A[:, None], torch.clamp(s, 1 - lo, 1 + hi) * A[:, None]) * mask


def _zscore(r, eps, ddof):
    return (r - r.mean()) / (r.std(correction=ddof) + eps)


def _slime(logp, old, rewards, mask):
    r = torch.as_tensor(rewards, dtype=logp.dtype)
    J = _ppo_terms(logp, old, _zscore(r, 1e-6, 1), mask)
    return -((J.sum(1) / mask.sum(1)).sum() / r.numel())  # per-sample token mean, / B


def _nemo_rl(logp, old, rewards, mask):
    A = loo_advantages(rewards, logp.dtype)
    return -(_ppo_terms(logp, old, A, mask).sum() / mask.sum())  # token mean over the batch


def _skyrl(logp, old, rewards, mask):
    r = torch.as_tensor(rewards, dtype=logp.dtype)
    A = _zscore(r, 1e-6, 1)
    return -(_ppo_terms(logp, old, A / mask.sum(), mask).sum())  # advantages / tokens, then a sum


def _prime_rl(logp, old, rewards, mask, delta=0.2):
    r = torch.as_tensor(rewards, dtype=logp.dtype)
    A = (r - r.mean())[:, None]
    p, p_old = torch.exp(logp), torch.exp(old)
    off = ((A > 0) & (p - p_old > delta)) | ((A < 0) & (p - p_old < -delta))
    J = (1 - off.to(logp.dtype)).detach() * torch.exp(logp - old) * A * mask
    return -(J.sum() / mask.sum())


def _unsloth(logp, old, rewards, mask):
    r = torch.as_tensor(rewards, dtype=logp.dtype)
    return -(_ppo_terms(logp, old, _zscore(r, 1e-4, 1), mask).sum() / mask.sum())  # dapo: / num_items_in_batch


@dataclass(frozen=True)
class OtherTrainer:
    """One trainer's default, mapped: the variant (advantage part), the masks its weight needs, the
    transcription of its loss, and where it was read."""

    name: str
    release: str
    source: str
    variant: Variant
    transcription: Callable
    #: the per-completion weight of the mapping as a function of the rewards (NeMo-RL), else None
    delta: Callable | None = None
    #: the std of the mapped variant: "pop" or "sample"
    sigma: str = "pop"


def _v(name, alpha, advantage, sigma_eps=0.0, **kw) -> Variant:
    kw.setdefault("eps_low", 0.2)
    kw.setdefault("eps_up", 0.2)
    return Variant(name, alpha, kw.pop("ratio", Ratio.TOKEN), kw.pop("eps_low"), kw.pop("eps_up"), advantage,
                   sigma_eps=sigma_eps, family="2026", title=name, **kw)


OTHER_TRAINERS: dict[str, OtherTrainer] = {t.name: t for t in [
    OtherTrainer("slime", "main at 624b824 (2026-08-21)",
                 "slime/utils/ppo_utils.py; slime/backends/megatron_utils/loss.py",
                 _v("slime", 1 / (n.G * n.L_i * n.sigma), "std", 1e-6), _slime, sigma="sample"),
    OtherTrainer("nemo_rl", "main at 7ea279a (2026-08-22)",
                 "nemo_rl/algorithms/utils.py::calculate_baseline_and_std_per_prompt; "
                 "nemo_rl/algorithms/advantage_estimator.py::GRPOAdvantageEstimator; "
                 "nemo_rl/algorithms/loss/loss_functions.py::ClippedPGLossFn",
                 _v("nemo_rl", n.delta / n.L_sum, "centered"), _nemo_rl, delta=loo_delta),
    OtherTrainer("skyrl", "main at a956457 (2026-08-21)", "skyrl/backends/skyrl_train/utils/ppo_utils.py",
                 _v("skyrl", 1 / (n.L_sum * n.sigma), "std", 1e-6), _skyrl, sigma="sample"),
    OtherTrainer("prime_rl", "main at 559b447 (2026-08-21)", "src/prime_rl/trainer/rl/loss.py",
                 _v("prime_rl", 1 / n.L_sum, "centered", eps_low=None, eps_up=None, surrogate=Surrogate.TV_MASK,
                    phi_params={"delta_tv": 0.2}), _prime_rl),
    OtherTrainer("unsloth", "unsloth_zoo 2026.10.9 (TRL's default loss_type dapo)",
                 "unsloth_zoo/rl_replacements.py::grpo_compute_loss",
                 _v("unsloth", 1 / (n.L_sum * n.sigma), "std", 1e-4), _unsloth, sigma="sample"),
]}
