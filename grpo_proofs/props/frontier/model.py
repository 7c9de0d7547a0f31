"""CFPO against Prop. 3 on real optimizers: ``torch.optim.Adam`` on the one-logit toy with hand-written
losses (Torch only, autograd; nothing from SymPy).

PPO-clip's toy is :func:`grpo_proofs.overshoot.run_clip_toy`; CFPO's loss is written here from the paper's
term, -(s A - |A| (s - 1)^2/(2 eps)), s = sigmoid(z)/p_old (Cagatan et al. 2026, arXiv 2601.22801).
"""

from __future__ import annotations

import math

import torch

from ...overshoot import run_clip_toy

__all__ = ["toy_measured", "toy_loss", "tv_toy", "mitigation_rows", "TABLE_VARIANTS"]


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


def tv_toy(lr: float = 0.1, betas=(0.9, 0.999), eps: float = 1e-8, steps: int = 30, p_old: float = 0.5,
           delta: float = 0.2, advantage: float = 1.0) -> dict:
    """DPPO's binary-TV mask on the one-logit toy, with ``torch.optim.Adam``: the loss -(1 - M) s A with
    M = 1 once p - p_old > delta (A > 0), a constant. Returns the logits after each step, the autograd
    gradients and the sqrt(v_hat) Adam holds after each step (read from the optimizer's state)."""
    z = torch.tensor(math.log(p_old / (1 - p_old)), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([z], lr=lr, betas=betas, eps=eps)
    zs, gs, rv = [], [], []
    for t in range(1, steps + 1):
        opt.zero_grad()
        p = torch.sigmoid(z)
        keep = (~((advantage > 0) & (p - p_old > delta) | (advantage < 0) & (p - p_old < -delta))).to(z.dtype)
        (-(keep.detach() * p / p_old * advantage)).backward()  # DPPO: -(1 - M) s A, s = p / p_old
        gs.append(float(z.grad))
        opt.step()
        zs.append(float(z.detach()))
        st = opt.state[z]
        rv.append(math.sqrt(float(st["exp_avg_sq"]) / (1 - betas[1] ** t)))
    return {"z": zs, "grad": gs, "sqrt_vhat": rv, "z0": math.log(p_old / (1 - p_old))}


#: the variants of the mitigation table's later rows, next to PPO-clip (GRPO) under the same Adam
TABLE_VARIANTS = ("grpo", "cfpo", "dppo_tv", "up", "topr")


def mitigation_rows(quick: bool = False, seed: int = 0) -> list[dict]:
    """Props. 3, 7 on the real policy (tiny float64 GPT-2) for the later terms: the mitigation table's setup
    (:mod:`grpo_proofs.experiments.overshoot`: same seed, same first batch, the same first-step lr rule,
    Adam with state carried across batches), one row per variant: the largest fraction of tokens past the
    variant's own bound and the largest excursion past it, and the largest token ratio reached."""
    from ...experiments import overshoot as ex

    rows = []
    for name in TABLE_VARIANTS:
        setup = ex.Setup(variant=name, mu=8, n_batches=2 if quick else 3, seed=seed)
        rn = ex.run(setup, "adam", "none")
        summ = rn.summary()
        summ.update(variant=name, max_ratio=max(s["ratio_quantiles"][-1] for s in rn.steps),
                    per_step_max_ratio=[s["ratio_quantiles"][-1] for s in rn.steps])
        rows.append(summ)
    return rows
