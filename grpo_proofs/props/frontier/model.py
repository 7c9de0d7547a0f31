"""CFPO against Prop. 3 on real optimizers: ``torch.optim.Adam`` on the one-logit toy with hand-written
losses, and on the real policy (:func:`real_run`: the tiny float64 GPT-2 trained on the reference losses of
:mod:`grpo_proofs.reference`; :func:`mitigation_rows`: the overshoot page's mitigation setup). Torch only,
autograd; nothing from SymPy.

PPO-clip's toy is ``grpo_proofs.props.overshoot.api.run_clip_toy``; CFPO's loss is written here from the paper's
term, -(s A - |A| (s - 1)^2/(2 eps)), s = sigmoid(z)/p_old (Cagatan et al. 2026, arXiv 2601.22801).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..overshoot.api import run_clip_toy

__all__ = ["toy_measured", "toy_loss", "mitigation_rows", "TABLE_VARIANTS", "RealRun", "real_run"]


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


def mitigation_rows(quick: bool = False, seed: int = 0, variants=TABLE_VARIANTS) -> list[dict]:
    """Props. 3, 7 on the real policy (tiny float64 GPT-2) for the later terms: the mitigation table's setup
    (``grpo_proofs.props.overshoot.model``: same seed, same first batch, the same first-step lr rule,
    Adam with state carried across batches), one row per variant of ``variants``: the largest fraction of
    tokens past the variant's own bound and the largest excursion past it, and the largest token ratio
    reached (quick: 2 batches, the overshoot page's table; else 3)."""
    from ..overshoot import model as ex

    rows = []
    for name in variants:
        setup = ex.Setup(variant=name, mu=8, n_batches=2 if quick else 3, seed=seed)
        rn = ex.run(setup, "adam", "none")
        summ = rn.summary()
        summ.update(variant=name, max_ratio=max(s["ratio_quantiles"][-1] for s in rn.steps),
                    per_step_max_ratio=[s["ratio_quantiles"][-1] for s in rn.steps])
        rows.append(summ)
    return rows


@dataclass
class RealRun:
    """One term trained on one sampled group of the real policy: ``excursion[t]`` the largest distance past
    the term's bound after inner step t+1 (A > 0: s - (1 + eps), A < 0: (1 - eps) - s, 0 if none), and at
    the final policy: ``logp``, ``old``, ``mask`` (G, T), ``rewards`` (G,) and ``grad`` = dJ/d log pi by
    autograd of the hand-written reference loss."""

    name: str
    lr: float
    excursion: list[float]
    logp: torch.Tensor
    old: torch.Tensor
    mask: torch.Tensor
    rewards: torch.Tensor
    grad: torch.Tensor


@lru_cache(maxsize=8)  # a run is a few seconds; the claim, its page and its control share it (read-only tensors)
def real_run(name: str, *, lr: float = 1e-4, mu: int = 6, G: int = 8, max_new_tokens: int = 5, seed: int = 0,
             eps: float = 0.2) -> RealRun:
    """``mu`` steps of ``torch.optim.Adam`` (betas (0.9, 0.999), eps 1e-8) on the reference loss of ``name``
    (``"grpo"``: PPO-clip; ``"cfpo"``) for one group sampled from the tiny float64 GPT-2 policy (prompt (2, 3),
    reward: last token even). The same seed gives the same policy and the same group for every term."""
    from ...reference import REFERENCE
    from ...runtime.policy import PolicyConfig, build_policy, completion_logprobs
    from ...runtime.sampling import sample_group

    model = build_policy(PolicyConfig.tiny(seed=seed))
    g = sample_group(model, G=G, prompt=[2, 3], max_new_tokens=max_new_tokens, seed=seed, reward="last_token_even",
                     require_mixed_rewards=True)
    with torch.no_grad():
        old, mask = completion_logprobs(model, g.prompt, g.completions)
    r = torch.tensor(g.rewards, dtype=old.dtype)
    A = (r - r.mean())[:, None].expand_as(mask)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    loss, exc = REFERENCE[name], []
    for _ in range(mu):
        opt.zero_grad()
        lp, _ = completion_logprobs(model, g.prompt, g.completions)
        loss(lp, old, r, mask).backward()
        opt.step()
        with torch.no_grad():
            s = torch.exp(completion_logprobs(model, g.prompt, g.completions)[0] - old)
        past = torch.where(A > 0, s - (1 + eps), (1 - eps) - s) * (mask > 0) * (A != 0)
        exc.append(max(float(past.max()), 0.0))
    with torch.no_grad():
        final = completion_logprobs(model, g.prompt, g.completions)[0]
    leaf = final.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(leaf, old, r, mask), leaf)
    return RealRun(name, lr, exc, final, old, mask, r, -grad)
