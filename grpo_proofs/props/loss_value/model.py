"""Proposition 4 on a real transformer: on a sampled group, the hand-written reference loss's value against
the regime's value from the hand-typed Table 1, and the compiled surrogate's value against the reference's."""

from __future__ import annotations

import numpy as np
import torch

from ...evaluate import torch_surrogate
from ...variants import REGISTRY
from .api import stated_numbers, value_error

__all__ = ["real_model_error"]


def real_model_error(seed: int = 0) -> tuple[float, int]:
    """On a real sampled group (tiny float64 GPT-2), per Table 1 method: J of the hand-written reference
    loss on the model's log-probs against the regime's value from the hand-typed Table 1, and the compiled
    surrogate's J against the reference's. (largest relative error, values compared)."""
    from ...runtime.threads import one_thread
    from ...reference import REFERENCE
    from ...runtime.policy import PolicyConfig, build_policy, sample_group, token_logprobs

    with one_thread("cpu"), torch.no_grad():
        model = build_policy(PolicyConfig.tiny(seed=seed))
        g = sample_group(model, G=8, prompt=(2, 3), max_new_tokens=8, seed=seed, reward="last_token_even",
                         require_mixed_rewards=True)
        logp, mask = token_logprobs(model, g)
    worst, compared = 0.0, 0
    rewards = torch.as_tensor(np.asarray(g.rewards, float))
    for name, v in REGISTRY.items():
        with torch.no_grad():
            J_ref = -float(REFERENCE[name](logp, logp.clone(), rewards, mask, sigma="pop"))
        J = float(torch_surrogate(v, logp, logp, np.asarray(g.rewards), mask))
        lp = [logp[i, :int(L)].numpy() for i, L in enumerate(g.lengths)]
        stated, scale = stated_numbers(name, g.rewards, g.lengths, lp)
        worst = max(worst, value_error(J_ref, stated, scale), value_error(J, J_ref, scale))
        compared += 2
    return worst, compared
