"""CFPO against Prop. 3 on real optimizers: ``torch.optim.Adam`` on the one-logit toy with hand-written
losses (Torch only, autograd; nothing from SymPy).

PPO-clip's toy is :func:`grpo_proofs.props.overshoot.api.run_clip_toy`; CFPO's loss is written here from the paper's
term, -(s A - |A| (s - 1)^2/(2 eps)), s = sigmoid(z)/p_old (Cagatan et al. 2026, arXiv 2601.22801).
"""

from __future__ import annotations

import math

import torch

from ..overshoot.api import run_clip_toy

__all__ = ["toy_measured", "toy_loss", "mitigation_rows", "TABLE_VARIANTS"]


def toy_loss(name: str, z: torch.Tensor, p_old: float, advantage: float, eps: float = 0.2) -> torch.Tensor:
    """The toy's loss for ``"cfpo"`` (quadratic penalty) or ``"grpo"`` (PPO-clip), autograd-ready."""
    s = torch.exp(torch.nn.functional.logsigmoid(z) - math.log(p_old))  # s = pi_theta(1)/pi_old(1)
    if name == "cfpo":
        return -(s * advantage - abs(advantage) * (s - 1) ** 2 / (2 * eps))  # CFPO: -(s A - |A|(s-1)^2/(2 eps))
    return -torch.minimum(s * advantage, torch.clamp(s, 1 - eps, 1 + eps) * advantage)  # PPO-clip, Eq. 1


def toy_measured(name: str, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, steps: int = 60, p_old: float = 0.5,
                 advantage: float = 1.0) -> list[float]:
    """The toy's logit z after each ``torch.optim.Adam`` step on the hand-written loss of ``name``."""
    if name == "grpo":
        return run_clip_toy("adam", lr, betas, eps, steps=steps, clip=0.2, p_old=p_old, advantage=advantage).z
    z = torch.tensor(math.log(p_old / (1 - p_old)), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([z], lr=lr, betas=betas, eps=eps)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        toy_loss(name, z, p_old, advantage).backward()
        opt.step()
        out.append(float(z.detach()))
    return out


#: the variants of the mitigation table's later rows, next to PPO-clip (GRPO) under the same Adam
TABLE_VARIANTS = ("grpo", "cfpo", "dppo_tv", "up", "topr")


def mitigation_rows(quick: bool = False, seed: int = 0) -> list[dict]:
    """Props. 3, 7 on the real policy (tiny float64 GPT-2) for the later terms: the mitigation table's setup
    (:mod:`grpo_proofs.props.overshoot.model`: same seed, same first batch, the same first-step lr rule,
    Adam with state carried across batches), one row per variant: the largest fraction of tokens past the
    variant's own bound and the largest excursion past it, and the largest token ratio reached."""
    from ..overshoot import model as ex

    rows = []
    for name in TABLE_VARIANTS:
        setup = ex.Setup(variant=name, mu=8, n_batches=2 if quick else 3, seed=seed)
        rn = ex.run(setup, "adam", "none")
        summ = rn.summary()
        summ.update(variant=name, max_ratio=max(s["ratio_quantiles"][-1] for s in rn.steps),
                    per_step_max_ratio=[s["ratio_quantiles"][-1] for s in rn.steps])
        rows.append(summ)
    return rows
