"""unsloth_zoo 2026.10.9's own ``grpo_compute_loss`` against the project's transcription of Unsloth's default
(the ``peers`` tests).

Oracle: the release's function, compiled from the installed wheel by grpo_proofs.trainers.peers.unsloth
and called as Unsloth's trainer calls it for TRL's default ``loss_type="dapo"`` (beta = 0, no vLLM, one
optimizer step per generation batch: ``num_items_in_batch`` = the batch's completion tokens). The
advantages are TRL's own group advantages (grpo_proofs.trainers.advantages, tested against TRL), so
the transcription's advantage is checked too. float64, CLOSED_FORM relative to the largest entry.
Coverage: 20 random groups of 2-8 completions, lengths 1-7 with junk in the padding, log-ratios up to
+-1 (ratios past both clip bounds). Negative control: the release's ``grpo`` loss type (a mean per
completion) must disagree with the transcription.
"""

import numpy as np
import pytest
import torch

from grpo_proofs.checking.tolerances import CLOSED_FORM
from grpo_proofs.trainers import advantages
from grpo_proofs.trainers.others import OTHER_TRAINERS
from grpo_proofs.trainers.peers.loading import PeerUnavailable, require


def _available():
    try:
        require("unsloth_zoo", "2026.10.9")
    except PeerUnavailable:
        return False
    return True


pytestmark = [pytest.mark.peers,
              pytest.mark.skipif(not _available(), reason="needs unsloth_zoo==2026.10.9 (peers-nodeps)")]


def _case(seed):
    rng = np.random.default_rng(seed)
    B, T = int(rng.integers(2, 9)), int(rng.integers(1, 8))
    lengths = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
    rewards = rng.integers(0, 3, size=B).astype(float)
    rewards[0], rewards[1] = 0.0, 2.0  # mixed rewards: a nonzero advantage
    logp = -rng.uniform(0.05, 3.0, size=(B, T))
    old = logp + rng.uniform(-1.0, 1.0, size=(B, T))
    logp = np.where(mask > 0, logp, rng.uniform(-50, 50, size=(B, T)))  # junk in the padding
    return logp, old, rewards, mask


def _transcription(logp, old, rewards, mask):
    lp = torch.tensor(logp, requires_grad=True)
    loss = OTHER_TRAINERS["unsloth"].transcription(lp, torch.tensor(old), rewards, torch.tensor(mask))
    (g,) = torch.autograd.grad(loss, lp)
    return float(loss.detach()), g


def _release(logp, old, rewards, mask, **kwargs):
    from grpo_proofs.trainers.peers import unsloth

    A = advantages("trl", {}, rewards, np.zeros(len(rewards), int))
    return unsloth.loss_and_grad(logp, old, A, mask, **kwargs)


def _error(a, b):
    (la, ga), (lb, gb) = a, b
    scale = max(abs(lb), float(gb.abs().max()), 1e-300)
    return max(abs(la - lb), float((ga - gb).abs().max())) / scale


@pytest.mark.parametrize("seed", range(20))
def test_unsloth_loss_matches_the_transcription(seed):
    case = _case(seed)
    theirs, ours = _release(*case), _transcription(*case)
    assert float(ours[1].abs().max()) > 0  # something to compare
    assert _error(theirs, ours) <= CLOSED_FORM
    assert OTHER_TRAINERS["unsloth"].release.startswith("unsloth_zoo 2026.10.9")


def test_a_per_completion_mean_disagrees():
    """Negative control: the release's ``grpo`` loss type (token mean per completion, then a mean over
    completions) is not the transcribed default."""
    case = next(c for c in map(_case, range(20)) if len(set(c[3].sum(1))) > 1)  # lengths differ
    assert _error(_release(*case, loss_type="grpo"), _transcription(*case)) > 1e-3
