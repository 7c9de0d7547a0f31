"""Props 3 and 7 on a real transformer: token ratios past the clip bound during the mu inner steps.

One batch (a group of G completions of one prompt, sampled from the policy) is optimised for ``mu``
inner steps of the variant's clipped loss (arXiv 2601.05002, Eq. 1, beta = 0) by a real
``torch.optim`` optimizer; after every step the token ratios s = pi_theta/pi_old are measured:
their distribution, the fraction of tokens on the side clipping should forbid (s > 1+eps_up with
A > 0, s < 1-eps_low with A < 0) and the largest excursion past the bound. For sequence-ratio
variants (GSPO, GCPO) the ratio is the sequence ratio the clip acts on.

Learning rates: every optimizer's lr is set so that its FIRST inner step moves the largest token
log-ratio by ``first_step`` (default 0.05, a quarter of the 0.2 clip range): a trial step at a
reference lr, then one linear rescale (both Adam's sign-like first step and SGD's are linear in lr).
Equal first steps make the optimizers comparable; the bound is then reached after a few steps.

Mitigations side by side (``n_batches`` consecutive batches, each sampled from the current policy):
``none`` (state carried across batches), ``mu1`` (one step per batch), ``reset`` (a fresh optimizer
per batch), ``adam-rel`` (Ellis et al. 2024: ``state['step']`` set to 0 per batch, moments kept),
and plain SGD as the inner-loop optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ...errors import InputError
from ...runtime.adam import second_moment_after
from ...runtime.choices import MITIGATIONS, OVERSHOOT_OPTIMIZERS as OPTIMIZERS, require_cuda
from ...runtime.policy import (PolicyConfig, build_policy, completion_logprobs, flat_grad,
                               param_vector, sample_group, set_param_vector)
from ...runtime.precision import PRECISIONS, build, recorded_index, take_recorded
from ...variants import Variant, get_variant
from .clip import clip_ratio, forbidden, negated_surrogate
from .plot import MITIGATION_NOTE, clip_bounds, plot

__all__ = ["Setup", "Run", "OPTIMIZERS", "MITIGATIONS", "ROWS", "run", "compare", "calibrate_lr",
           "plot", "MITIGATION_NOTE", "clip_bounds"]


#: (optimizer, mitigation) rows of the side-by-side comparison
ROWS = (("adam", "none"), ("adam", "mu1"), ("adam", "reset"), ("adam", "adam-rel"), ("sgd", "none"),
        ("sgd-momentum", "none"))


@dataclass(frozen=True)
class Setup:
    """What one comparison runs (defaults: the tiny float64 GPT-2 policy on CPU)."""

    variant: str = "grpo"
    mu: int = 8
    n_batches: int = 3
    G: int = 16
    max_new_tokens: int = 6
    prompt: tuple[int, ...] = (2, 3)
    reward: str = "last_token_even"
    first_step: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.9
    seed: int = 0
    device: str = "cpu"
    config: PolicyConfig = field(default_factory=PolicyConfig.tiny)
    #: None: ``config`` as it is; "float64", "float32" or "bf16" (bf16 autocast, float32 master weights):
    #: ``config`` built in that arithmetic (:func:`grpo_proofs.runtime.precision.build`)
    precision: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "_resolved", get_variant(self.variant))   # resolved once, here
        if isinstance(self.mu, bool) or not isinstance(self.mu, int) or not 1 <= self.mu <= 64:
            raise InputError(f"mu must be a whole number in 1..64, got {self.mu!r}")
        if isinstance(self.n_batches, bool) or not isinstance(self.n_batches, int) or self.n_batches < 1:
            raise InputError(f"n_batches must be a whole number >= 1, got {self.n_batches!r}")
        if not (0 < self.first_step < 1):
            raise InputError(f"first_step must lie in (0, 1), got {self.first_step!r}")
        require_cuda(self.device)
        if self.precision not in (None, *PRECISIONS):
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    @property
    def resolved(self) -> Variant:
        """The :class:`~grpo_proofs.variants.Variant` that ``variant`` names (resolved when the setup is made)."""
        return self._resolved


@dataclass
class Run:
    """One (optimizer, mitigation) run: ``steps`` has one dict per inner step of every batch;
    ``ratios[b]`` is (mu_b + 1, tokens) of clip ratios (row 0: before the first step) and
    ``sides[b]`` the sign of A per token; ``premise`` compares batch 0 with the premise prediction."""

    optimizer: str
    mitigation: str
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    steps: list[dict] = field(default_factory=list)
    ratios: list[np.ndarray] = field(default_factory=list)
    sides: list[np.ndarray] = field(default_factory=list)
    #: the optimizer's step counter at the start of each batch (what Adam's bias correction sees)
    offsets: list[int] = field(default_factory=list)
    premise: dict = field(default_factory=dict)

    def summary(self) -> dict:
        frac = [s["forbidden_frac"] for s in self.steps]
        exc = [s["max_excursion"] for s in self.steps]
        return {"optimizer": self.optimizer, "mitigation": self.mitigation, "lr": self.lr,
                "max_forbidden_frac": max(frac), "final_forbidden_frac": frac[-1],
                "max_excursion": max(exc), "final_excursion": exc[-1],
                "premise_T": self.premise.get("T"), "premise_deviation": self.premise.get("deviation")}


def _optimizer(name: str, params, lr: float, setup: Setup):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=setup.betas, eps=setup.eps, weight_decay=0.0)
    if name in ("sgd", "sgd-momentum"):
        return torch.optim.SGD(params, lr=lr, momentum=setup.momentum if name == "sgd-momentum" else 0.0)
    raise InputError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def _batch(model, setup: Setup, b: int):
    g = sample_group(model, G=setup.G, prompt=list(setup.prompt), max_new_tokens=setup.max_new_tokens,
                     seed=setup.seed + 1000 * b, reward=setup.reward, require_mixed_rewards=True)
    with torch.no_grad():
        old, mask = completion_logprobs(model, g.prompt, g.completions)
    r = torch.tensor(g.rewards, dtype=old.dtype, device=old.device)
    return g, old, mask, r


def _measure(model, v, g, old, mask, r):
    with torch.no_grad():
        lp, _ = completion_logprobs(model, g.prompt, g.completions)
        s = clip_ratio(v, lp, old, mask)
        bad, exc = forbidden(v, s, r - r.mean(), mask, old)
    on = mask > 0
    vals = s[on].cpu().numpy()
    return vals, {"forbidden_frac": float(bad.sum() / on.sum()), "max_excursion": float(exc.max()),
                  "ratio_quantiles": np.quantile(vals, [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1]).tolist()}


def calibrate_lr(setup: Setup, optimizer: str) -> float:
    """lr whose first inner step moves the largest token log-ratio by ``setup.first_step`` (to 2%).

    Trial steps from the initial policy on batch 0, rescaling lr by target/moved (secant on a map
    that is linear in lr for small steps) until within 2%, at most 8 trials.
    """
    v = setup.resolved
    model = _model(setup)
    g, old, mask, r = _batch(model, setup, 0)
    theta0, params = param_vector(model), list(model.parameters())
    lr = 1e-4 if optimizer == "adam" else 1e-2
    for _ in range(8):
        set_param_vector(model, theta0)
        opt = _optimizer(optimizer, params, lr, setup)
        opt.zero_grad()
        lp, _ = completion_logprobs(model, g.prompt, g.completions)
        negated_surrogate(v)(lp, old, r, mask).backward()
        opt.step()
        with torch.no_grad():
            lp, _ = completion_logprobs(model, g.prompt, g.completions)
        moved = float(((lp - old) * mask).abs().max())
        if not moved > 0:
            raise InputError(f"variant {setup.variant!r}: the first step moves no token; nothing to measure")
        if abs(moved / setup.first_step - 1) < 0.02:
            break
        lr *= setup.first_step / moved
    return lr


def _model(setup: Setup):
    """The policy of a setup: ``config`` on ``device``, in ``precision`` when one is named."""
    if setup.precision is None:
        return build_policy(setup.config, device=setup.device)
    return build(replace(setup.config, device=setup.device), setup.precision)


def run(setup: Setup, optimizer: str, mitigation: str = "none", lr: float | None = None) -> Run:
    """Run ``n_batches`` batches of ``mu`` inner steps (``mu1``: one step) and measure every step."""
    if mitigation not in MITIGATIONS:
        raise InputError(f"unknown mitigation {mitigation!r}; choose one of: {', '.join(MITIGATIONS)}")
    if mitigation == "adam-rel" and optimizer != "adam":
        raise InputError("adam-rel resets Adam's step counter; use it with optimizer 'adam'")
    v = setup.resolved
    lr = calibrate_lr(setup, optimizer) if lr is None else lr
    model = _model(setup)
    idx = recorded_index(model, setup.seed)
    params = list(model.parameters())
    opt, loss_fn = _optimizer(optimizer, params, lr, setup), negated_surrogate(v)
    out = Run(optimizer, mitigation, lr, tuple(setup.betas), setup.momentum)
    mu, counter = (1 if mitigation == "mu1" else setup.mu), 0
    for b in range(setup.n_batches):
        g, old, mask, r = _batch(model, setup, b)
        if b and mitigation == "reset":
            opt = _optimizer(optimizer, params, lr, setup)
        if b and mitigation == "adam-rel":
            for st in opt.state.values():           # torch 2.x: state['step'] is a tensor
                st["step"].zero_()
        if b and mitigation in ("reset", "adam-rel"):
            counter = 0
        out.offsets.append(counter)
        counter += mu
        vals, _ = _measure(model, v, g, old, mask, r)
        rows, grads, thetas = [vals], [], [take_recorded(param_vector(model), idx)]
        for t in range(1, mu + 1):
            opt.zero_grad()
            lp, _ = completion_logprobs(model, g.prompt, g.completions)
            with torch.no_grad():
                clipped, _ = forbidden(v, clip_ratio(v, lp, old, mask), r - r.mean(), mask, old)
            loss_fn(lp, old, r, mask).backward()
            full = flat_grad(model)
            gnorm = float(full.norm())
            grads.append(take_recorded(full, idx).detach().clone())
            del full
            opt.step()
            thetas.append(take_recorded(param_vector(model), idx))
            vals, stats = _measure(model, v, g, old, mask, r)
            rows.append(vals)
            out.steps.append({"batch": b, "step": t, "clipped_at_eval": float(clipped.sum() / (mask > 0).sum()),
                              "grad_norm": gnorm, **stats})
        out.ratios.append(np.stack(rows))
        out.sides.append(np.sign((r - r.mean())[:, None].expand_as(mask)[mask > 0].cpu().numpy()))
        if b == 0:
            out.premise = _premise(optimizer, setup, grads, thetas,
                                   [s_["clipped_at_eval"] for s_ in out.steps])
    return out


def _premise(optimizer: str, setup: Setup, grads, thetas, clipped_frac) -> dict:
    """Distance of the real steps from the premise prediction (all contributions clipped from T on).

    T is the first inner step whose loss evaluation has a clipped token (T >= 2). Prediction:
    step_{T+k} = ratio_k * step_{T-1} with ratio_k = C^eps_{T,k} per coordinate (Adam), mu^(k+1)
    (SGD with momentum), 0 (plain SGD). Deviation: ||step - prediction|| / ||ratio_k step_{T-1}||
    (plain SGD: ||step|| / ||step_{T-1}||).
    """
    from .api import overshoot_ratio_eps
    T = next((t + 1 for t, f in enumerate(clipped_frac) if f > 0 and t >= 1), None)
    if T is None:
        return {"T": None, "deviation": None, "clipped_frac": clipped_frac}
    steps = [(thetas[t] - thetas[t - 1]).cpu().numpy() for t in range(1, len(thetas))]
    last = steps[T - 2]
    if optimizer == "adam":
        b1, b2 = setup.betas
        r = np.sqrt(second_moment_after([g.cpu().numpy() for g in grads[:T - 1]], b2, corrected=True))
    dev = []
    for k in range(len(steps) - T + 1):
        if optimizer == "adam":
            pred = overshoot_ratio_eps(T, k, setup.betas[0], setup.betas[1], setup.eps, r) * last
        elif optimizer == "sgd-momentum":
            pred = setup.momentum ** (k + 1) * last
        else:
            pred = np.zeros_like(last)
        ref = np.linalg.norm(pred) if optimizer != "sgd" else np.linalg.norm(last)
        dev.append(float(np.linalg.norm(steps[T - 1 + k] - pred) / ref))
    return {"T": T, "deviation": dev, "clipped_frac": clipped_frac}


def compare(setup: Setup, rows=ROWS, progress=None) -> list[Run]:
    """The side-by-side table: one :class:`Run` per (optimizer, mitigation) row, lr calibrated once
    per optimizer."""
    lrs, out = {}, []
    for opt_name, mit in rows:
        if opt_name not in lrs:
            lrs[opt_name] = calibrate_lr(setup, opt_name)
        out.append(run(setup, opt_name, mit, lrs[opt_name]))
        if progress is not None:
            progress.update(1)
    return out

