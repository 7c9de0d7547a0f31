"""Proposition 1 in training (arXiv 2601.05002, Sec. 4): the shared prefix drifts under GRPO, not Dr. GRPO.

GRPO and Dr. GRPO train the same initial policy with AdamW, one step per sampled group (s = 1), on
``short_is_correct`` (correct answers are short, so GRPO's 1/|o_i| weights give
W = sqrt(p(1-p)) (h_c - h_w) > 0). Each run is paired with a control trained identically except that
the prefix positions are detached: the drift *attributable* to the prefix term is the difference of
the two prefix log-probabilities. The raw drift also contains what the other tokens' gradients do to
the prefix through shared parameters (for Dr. GRPO, whose J = (1/G) sum_i A_i |o_i| at s = 1 pushes
every token of the longer, wrong answers down, that is a large negative drift of its own).

Runs use the float64 tiny GPT-2 on CPU by default (< 1 minute for both variants and their controls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import InputError
from ...evaluate import torch_surrogate
from ...runtime.policy import prefix_logprobs, sample_group, token_logprobs
from .api import prefix_coefficient
from ...variants import get_variant
from .model import build
from ...runtime.threads import one_thread

__all__ = ["DriftSetup", "DriftRun", "DriftResult", "drift", "plot_drift"]


@dataclass(frozen=True)
class DriftSetup:
    """GRPO vs Dr. GRPO on ``short_is_correct`` (default: the tiny float64 GPT-2, CPU, < 1 minute)."""

    model: str = "tiny"
    steps: int = 30
    #: 5e-4 keeps most groups mixed for 30 steps (1e-3 saturates accuracy and skips up to half the steps)
    lr: float = 5e-4
    weight_decay: float = 0.01
    G: int = 16
    prompt: tuple[int, ...] = (2, 3)
    prefix: tuple[int, ...] = (5, 7, 9, 11)
    max_new_tokens: int = 8
    #: r_i = 1 iff EOS is among the first 3 free tokens (grpo_proofs.runtime.rewards.short_is_correct)
    reward: str = "short_is_correct"
    variants: tuple[str, ...] = ("grpo", "dr_grpo")
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True)
class DriftRun:
    variant: str
    detach_prefix: bool
    #: sum_t log pi(y_t | x, y_<t) of the prefix before training and after every step, (steps + 1,)
    logp_prefix: np.ndarray
    #: sum_t W_t of each step's group (0 where the group had equal rewards and the step was skipped)
    W: np.ndarray
    #: mean reward of each step's group
    accuracy: np.ndarray
    skipped: int

    @property
    def drift(self) -> float:
        return float(self.logp_prefix[-1] - self.logp_prefix[0])


@dataclass(frozen=True)
class DriftResult:
    setup: DriftSetup
    runs: dict = field(default_factory=dict)

    def raw(self, variant: str) -> float:
        return self.runs[(variant, False)].drift

    def attributable(self, variant: str) -> float:
        """Drift of the full run minus drift of its prefix-detached control."""
        return self.runs[(variant, False)].drift - self.runs[(variant, True)].drift

    def predicted(self, variant: str) -> float:
        """sum over steps of sum_t W_t (the direction Proposition 1 predicts)."""
        return float(self.runs[(variant, False)].W.sum())


def _drift_run(setup: DriftSetup, variant: str, detach_prefix: bool) -> DriftRun:
    model = build(setup.model, "float64" if setup.device == "cpu" else "float32", setup.device, setup.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=setup.lr, weight_decay=setup.weight_decay)
    k = len(setup.prefix)

    def prefix_logp() -> float:
        with torch.no_grad():
            return float(prefix_logprobs(model, setup.prompt, setup.prefix).sum())

    traj, Ws, acc, skipped = [prefix_logp()], [], [], 0
    for step in range(setup.steps):
        try:
            g = sample_group(model, G=setup.G, prompt=setup.prompt, prefix=setup.prefix,
                             max_new_tokens=setup.max_new_tokens, seed=setup.seed * 100_003 + 64 * step,
                             reward=setup.reward, require_mixed_rewards=True, max_tries=4)
        except InputError:                                 # every group had equal rewards: no signal, no step
            traj.append(traj[-1]), Ws.append(0.0), acc.append(float("nan"))
            skipped += 1
            continue
        r = np.asarray(g.rewards)
        Ws.append(k * prefix_coefficient(variant, r, g.lengths))        # s = 1: W_t the same for every t
        acc.append(float(r.mean()))
        logp, mask = token_logprobs(model, g)
        if detach_prefix:
            pm = torch.zeros_like(mask, dtype=torch.bool)
            pm[:, :k] = True
            logp = torch.where(pm, logp.detach(), logp)
        J = torch_surrogate(variant, logp, logp.detach(), r, mask)
        opt.zero_grad()
        (-J).backward()
        opt.step()
        traj.append(prefix_logp())
    return DriftRun(variant, detach_prefix, np.array(traj), np.array(Ws), np.array(acc), skipped)


def drift(setup: DriftSetup = DriftSetup(), progress: bool = False) -> DriftResult:
    """Train every variant of ``setup`` and its prefix-detached control from the same initial policy."""
    for name in setup.variants:
        get_variant(name)
    if setup.steps < 1 or setup.G < 2 or not (setup.lr > 0):
        raise InputError("drift needs steps >= 1, G >= 2 and lr > 0")
    jobs = [(v, d) for v in setup.variants for d in (False, True)]
    if progress:
        from tqdm import tqdm
        jobs = tqdm(jobs, desc="training runs", unit="run")
    with one_thread(setup.device):
        return DriftResult(setup, {(v, d): _drift_run(setup, v, d) for v, d in jobs})


def plot_drift(result: DriftResult, directory) -> str:
    """Save the prefix log-probability trajectories and the cumulative predicted W as a PNG; return its path."""
    import os

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    os.makedirs(directory, exist_ok=True)
    path = os.path.join(os.fspath(directory), "prop1_training_drift.png")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {v: f"C{i}" for i, v in enumerate(result.setup.variants)}
    for (v, d), run in result.runs.items():
        ax1.plot(run.logp_prefix - run.logp_prefix[0], ls=":" if d else "-", color=colors[v], lw=2 if d else 1.5,
                 label=f"{v}, prefix positions detached (control)" if d else v)
        if not d:
            ax2.plot(np.concatenate([[0.0], np.cumsum(run.W)]), color=colors[v], label=v)
    ax1.set(xlabel="AdamW step", ylabel="drift of sum_t log pi(prefix_t)", title="shared-prefix log-probability")
    ax2.set(xlabel="AdamW step", ylabel="cumulative sum_t W_t", title="predicted coefficient (Prop. 1)")
    for ax in (ax1, ax2):
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
