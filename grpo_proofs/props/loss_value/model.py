"""Proposition 4 on a real transformer: the compiled surrogate's value on a sampled group against
G Cov_pop(A, Omega)."""

from __future__ import annotations

import numpy as np
import torch

from ...evaluate import torch_surrogate
from ...objective import group_numbers
from ...variants import REGISTRY
from .api import value_error
from .derive import regime

__all__ = ["real_model_error"]


def real_model_error(seed: int = 0) -> float:
    """Largest relative error of J of the compiled surrogate on a real sampled group (tiny float64 GPT-2)
    against G Cov_pop(A, Omega), over the registry."""
    from ..prefix.model import one_thread
    from ...runtime.policy import PolicyConfig, build_policy, sample_group, token_logprobs

    with one_thread("cpu"), torch.no_grad():
        model = build_policy(PolicyConfig.tiny(seed=seed))
        g = sample_group(model, G=8, prompt=(2, 3), max_new_tokens=8, seed=seed, reward="last_token_even",
                         require_mixed_rewards=True)
        logp, mask = token_logprobs(model, g)
    worst = 0.0
    for name, v in REGISTRY.items():
        J = float(torch_surrogate(v, logp, logp, np.asarray(g.rewards), mask))
        num = group_numbers(v, g.rewards, g.lengths)
        lam = [a * logp[i, :len(a)].numpy() for i, a in enumerate(num.alpha)]
        Om = np.array([x.sum() for x in lam]) if regime(v) == "log-prob" else num.Omega
        cov = float(len(Om) * np.mean(num.A * (Om - Om.mean())))
        scale = float(np.abs(num.A * Om).sum())
        worst = max(worst, value_error(J, 0.0 if regime(v) == "length-normalised" else cov, scale))
    return worst
