"""Reward scale and Adam on a real transformer policy (arXiv 2601.05002, Props 5, 6, 2; App. C).

The policy is :func:`grpo_proofs.runtime.policy.build_policy` (GPT-2 blocks, float64 end to end: the tiny
preset in quick mode, the small one otherwise); groups are sampled from it with a deterministic
reward rule. The objective of one batch is the sum over its prompts of the variant's surrogate J
(Eq. 1) minus beta times a k3 KL term against a second, independently initialised model:

    J(theta) = sum_p [ J_p(theta; a_p r_p + b) - beta R_p(theta) ],
    R_p = sum_i 1/(G |o_i|) sum_t (pi_ref/pi - log(pi_ref/pi) - 1)

with a per-prompt reward scale a_p and shift b (a :class:`Config`). Gradients are ``torch.autograd``
of -J through the whole model, optionally clipped by ``torch.nn.utils.clip_grad_norm_`` on the
model's parameters (what trainers do).

How a step is measured (:func:`paired_run`). All configurations are evaluated at the *same*
parameters theta_t, which follow the ``driver`` configuration. Each configuration owns a real
``torch.optim.Adam``/``AdamW`` acting on one flat float64 parameter of the model's size (Adam is
elementwise, so flattening changes no arithmetic). Before each step that parameter is set to 0, its
``.grad`` to the model's flat gradient, and ``step()`` is called: the parameter then *is* the
optimizer's preconditioned step -lr m_hat/(sqrt(v_hat) + eps), read without the cancellation of a
difference theta_t - theta_{t-1}. AdamW's decoupled decay -lr lambda theta_t acts on identical
parameters in every configuration, so it is identical and does not enter the comparison; the
driver's trajectory applies it: theta_{t+1} = theta_t (1 - lr lambda) + step. Full trainings on
their own trajectories (``opt.step()`` on the model itself) are in :func:`trajectory_run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import InputError
from ...runtime.choices import require_cuda
from ...runtime.policy import (PolicyConfig, build_policy, clone_model, count_parameters, flat_grad, param_vector,
                               sample_group, set_param_vector, token_logprobs)
from ...variants import Variant, get_variant
from .losses import coefficient_J, k3_penalty, surrogate_J

__all__ = ["Prompt", "Batch", "Config", "Record", "make_batch", "objective", "paired_run", "trajectory_run",
           "OPTIMIZERS"]  # OPTIMIZERS: optimizer name -> (class, weight decay used)

OPTIMIZERS = {"adam": (torch.optim.Adam, 0.0), "adamw": (torch.optim.AdamW, 0.1)}


@dataclass(frozen=True)
class Prompt:
    group: object
    rewards: np.ndarray
    old_logp: torch.Tensor
    ref_logp: torch.Tensor
    mask: torch.Tensor


@dataclass
class Batch:
    """A policy, the variant it is trained with and P sampled groups (fixed for every step)."""

    model: torch.nn.Module
    variant: Variant
    prompts: list[Prompt]
    sigma: str = "pop"
    #: the arithmetic the model runs in (:data:`grpo_proofs.runtime.precision.PRECISIONS`)
    precision: str = "float64"
    #: recorded coordinates of the flat parameter vector (None: all; a fixed subset on large models)
    coords: torch.Tensor | None = None

    @property
    def n_params(self) -> int:
        return count_parameters(self.model)

    @property
    def n_recorded(self) -> int:
        """Coordinates per recorded vector (= ``n_params`` unless the model is large)."""
        return self.n_params if self.coords is None else int(self.coords.numel())


@dataclass(frozen=True)
class Config:
    """Rewards a_p r_p + b per prompt, KL coefficient ``beta``, optional variant override."""

    scales: tuple[float, ...] | float = 1.0
    shift: float = 0.0
    beta: float = 0.0
    variant: Variant | None = None
    max_grad_norm: float | None = None
    #: (name, factor): use factor x the gradient of an earlier configuration instead of autograd
    grad_of: tuple[str, float] | None = None
    #: False: the objective is the regulariser part -beta R only (the advantage part left out)
    advantage: bool = True
    #: True: the advantage part's gradient from the derived per-token coefficients dJ/dlog pi
    #: (:func:`grpo_proofs.evaluate.token_gradient` at the current log-ratios), backpropagated as
    #: sum_(i,t) c_(i,t) log pi_(i,t), instead of autograd of the compiled surrogate
    coefficients: bool = False
    #: a trainer's loss ``loss(logps)`` to minimise in place of -J (e.g. :func:`.aggregation.verl_loss`)
    loss: Callable | None = None


@dataclass
class Record:
    """What one configuration's optimizer did at each step (float64 numpy arrays)."""

    steps: list[np.ndarray] = field(default_factory=list)
    v_hat: list[np.ndarray] = field(default_factory=list)
    grads: list[np.ndarray] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)


_BATCHES: dict[tuple, Batch] = {}


def make_batch(variant: "str | Variant" = "dr_grpo", *, quick: bool = True, seed: int = 0, device: str = "cpu",
               n_prompts: int = 1, G: int = 8, max_new_tokens: int = 10, sigma: str = "pop",
               model: str | None = None, precision: str | None = None) -> Batch:
    """Build the policy (tiny preset if ``quick`` else small), sample ``n_prompts`` groups with mixed rewards.

    The policy and groups depend only on (quick, seed, device, n_prompts, G, max_new_tokens, model,
    precision), not on the variant, so they are built once and shared (every run clones the model
    before changing it). ``model``/``precision`` (:mod:`grpo_proofs.runtime.precision`): another preset or
    arithmetic (both None: the float64 GPT-2 above; the Qwen2-0.5B shape runs at G = 16, up to 1024
    tokens, and records a fixed subset of coordinates).
    """
    from ...runtime.precision import resolve_precision

    v = get_variant(variant)
    require_cuda(device)
    if model is not None or precision is not None:
        precision = resolve_precision(precision, device)
    key = (quick, seed, device, n_prompts, G, max_new_tokens, model, precision)
    if key not in _BATCHES:
        from ...runtime.precision import REALISTIC_MODEL, resolve_model
        large = model is not None and resolve_model(model, device, "tiny") == REALISTIC_MODEL
        while len(_BATCHES) >= (1 if large else 8):           # a 0.5B policy + reference is ~4 GiB
            _BATCHES.pop(next(iter(_BATCHES)))
        _BATCHES[key] = _build(quick, seed, device, n_prompts, G, max_new_tokens, model, precision)
    base = _BATCHES[key]
    return Batch(base.model, v, base.prompts, sigma, base.precision, base.coords)


def _build(quick, seed, device, n_prompts, G, max_new_tokens, model=None, precision=None) -> Batch:
    from ...runtime.precision import build, group_shape, policy_config, recorded_coordinates

    if model is None and precision is None:
        preset = PolicyConfig.tiny if quick else PolicyConfig.small
        cfg = preset(seed=seed, device=device)
        model = build_policy(cfg)
        ref_model = build_policy(preset(seed=seed + 1, device=device))
        precision, coords = "float64", None
    else:
        default = "tiny" if quick else "small"
        G, max_new_tokens = group_shape(model, device, default, G, max_new_tokens)
        cfg = policy_config(model, precision, device, default=default, seed=seed)
        ref_cfg = policy_config(model, precision, device, default=default, seed=seed + 1)
        model, ref_model = build(cfg, precision), build(ref_cfg, precision)
        coords = recorded_coordinates(count_parameters(model), seed)
        coords = None if coords is None else coords.to(device)
    rng = np.random.default_rng(seed)
    prompts = []
    for p in range(n_prompts):
        prompt = [int(t) for t in rng.integers(1, cfg.vocab_size, size=3)]
        group = sample_group(model, G=G, prompt=prompt, max_new_tokens=max_new_tokens, seed=seed + 100 * p,
                             reward="last_token_even", require_mixed_rewards=True)
        with torch.no_grad():
            old, mask = token_logprobs(model, group)
            ref, _ = token_logprobs(ref_model, group)
        prompts.append(Prompt(group, np.asarray(group.rewards, dtype=np.float64), old, ref, mask))
    return Batch(model, None, prompts, "pop", precision, coords)


def _scales(cfg: Config, P: int) -> list[float]:
    s = cfg.scales
    out = [float(s)] * P if np.ndim(s) == 0 else [float(x) for x in s]
    if len(out) != P:
        raise InputError(f"{len(out)} reward scales for {P} prompts")
    return out


def objective(batch: Batch, cfg: Config, logps) -> torch.Tensor:
    """J(theta) of the module docstring from precomputed per-prompt log-probs ``logps``."""
    if cfg.loss is not None:
        return -cfg.loss(logps)
    v = cfg.variant or batch.variant
    J = 0.0
    for a, pr, logp in zip(_scales(cfg, len(batch.prompts)), batch.prompts, logps):
        if cfg.advantage and a != 0:
            part = coefficient_J if cfg.coefficients else surrogate_J
            J = J + part(v, logp, pr.old_logp, a * pr.rewards + cfg.shift, pr.mask, batch.sigma)
        if cfg.beta:
            J = J - cfg.beta * k3_penalty(logp, pr.ref_logp, pr.mask)
    return J


def _gradient(model, params, loss, max_grad_norm, retain=True) -> tuple[torch.Tensor, float]:
    grads = torch.autograd.grad(loss, params, retain_graph=retain)
    for p, g in zip(params, grads):
        p.grad = g.detach().clone()
    norm = float(torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads])))
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    g = flat_grad(model).clone()
    for p in params:
        p.grad = None
    return g, norm


def paired_run(batch: Batch, configs: dict[str, Config], *, driver: str, optimizer: str = "adamw",
               lr: float = 1e-3, eps: float = 1e-8, betas=(0.9, 0.999), steps: int = 3,
               progress: bool = False) -> dict[str, Record]:
    """Step every configuration's optimizer on gradients taken at the driver's parameters.

    Returns one :class:`Record` per configuration (see the module docstring for what a step is).
    ``progress``: a tqdm bar on stderr over the steps.
    """
    from tqdm import tqdm

    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    cls, wd = OPTIMIZERS[optimizer]
    model = clone_model(batch.model)
    params = list(model.parameters())
    N = count_parameters(model)
    dev, dt = params[0].device, params[0].dtype
    eps = _representable_eps(eps, dt)
    idx = batch.coords
    M = N if idx is None else int(idx.numel())
    # the driver's probe is full size (its step moves the model); the others hold the recorded coordinates
    probes = {k: torch.nn.Parameter(torch.zeros(N if k == driver else M, dtype=dt, device=dev)) for k in configs}
    opts = {k: cls([probes[k]], lr=lr, betas=betas, eps=eps, weight_decay=wd) for k in configs}
    recs = {k: Record() for k in configs}
    for _ in tqdm(range(steps), desc="optimizer steps", disable=not progress, leave=False):
        logps = [token_logprobs(model, pr.group)[0] for pr in batch.prompts]
        for name, cfg in configs.items():
            if cfg.grad_of is not None:
                other, factor = cfg.grad_of
                g = torch.as_tensor(factor * recs[other].grads[-1], device=dev, dtype=dt)
                norm = float(torch.linalg.vector_norm(g))
            else:
                g, norm = _gradient(model, params, -objective(batch, cfg, logps), cfg.max_grad_norm)
                if idx is not None and name != driver:
                    g = g[idx]
            probe = probes[name]
            with torch.no_grad():
                probe.zero_()
            probe.grad = g
            opts[name].step()
            st = opts[name].state[probe]
            t = float(st["step"])
            rec, sub = recs[name], (idx if idx is not None and name == driver else None)
            rec.steps.append(_record(probe.detach(), sub))
            rec.v_hat.append(_record(st["exp_avg_sq"] / (1 - betas[1] ** t), sub))
            rec.grads.append(_record(g, sub))
            rec.grad_norms.append(norm)
        with torch.no_grad():
            theta = param_vector(model)
            set_param_vector(model, theta * (1 - lr * wd) + probes[driver].detach())
    return recs


def trajectory_run(batch: Batch, cfg: Config, *, optimizer: str = "adamw", lr: float = 1e-3, eps: float = 1e-8,
                   betas=(0.9, 0.999), steps: int = 3) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """An ordinary training run: ``opt.step()`` on the model's own parameters.

    Returns (parameter vector after each step, flat gradient fed at each step).
    """
    cls, wd = OPTIMIZERS[optimizer]
    model = clone_model(batch.model)
    params = list(model.parameters())
    opt = cls(params, lr=lr, betas=betas, eps=_representable_eps(eps, params[0].dtype), weight_decay=wd)
    thetas, grads, idx = [], [], batch.coords
    for _ in range(steps):
        logps = [token_logprobs(model, pr.group)[0] for pr in batch.prompts]
        opt.zero_grad(set_to_none=True)
        (-objective(batch, cfg, logps)).backward()
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        grads.append(_record(flat_grad(model), idx))
        opt.step()
        thetas.append(_record(param_vector(model), idx))
    return thetas, grads


def _record(vec: torch.Tensor, idx) -> np.ndarray:
    """A recorded vector: the coordinates ``idx`` (all if None), as a float64 numpy array (exact widening)."""
    return (vec if idx is None else vec[idx]).detach().to(torch.float64).cpu().numpy().copy()


def _representable_eps(eps: float, dtype: torch.dtype) -> float:
    """Adam's eps as the optimizer sees it: a positive eps below the dtype's smallest normal number
    (e.g. the 1e-300 of the eps -> 0 limit, which float32 rounds to 0 and turns 0/0 into NaN on
    coordinates without gradient) is raised to that number; 0 and representable values are kept.

    >>> _representable_eps(1e-300, torch.float64)
    1e-300
    >>> _representable_eps(1e-300, torch.float32) == torch.finfo(torch.float32).tiny
    True
    """
    tiny = torch.finfo(dtype).tiny
    return tiny if 0 < eps < tiny else eps
