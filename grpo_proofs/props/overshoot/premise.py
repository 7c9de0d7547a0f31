"""Props 3 and 7 within the steps a config takes: the excursion past the clip bound, predicted and measured.

A fixed batch (prompt [2, 3], four completions of distinct tokens, rewards [1, 0, 0, 1], so no two
completions with opposite advantages share a (context, token) pair) is trained on a variant's loss
for ``mu`` inner steps by a real ``torch.optim.Adam`` (float64 tiny GPT-2, no weight decay). The
learning rate is searched so that every token is past its clip bound at the loss evaluation of inner
step T (and not before): from step T on the advantage gradient is exactly zero, the premise of
Prop. 3.

Prediction, for the steps T, T + 1, ... that the premise keeps covering: the parameters move by
C^eps_(T,j) times the step of inner step T - 1, per coordinate (Prop. 7 with Adam's eps kept:
:func:`grpo_proofs.props.overshoot.api.overshoot_ratio_eps`), so the predicted parameters after step T + j are
theta_(T-1) + sum_(i<=j) C^eps_(T,i) step_(T-1), and the predicted excursion of every token past its bound
is read from the model at those parameters. The premise holds at step T + j + 1 as long as every token
is still past its bound at the predicted parameters; the prediction stops at the first step where
one is not (then that token's gradient acts again). Measured: the parameters and excursions of the
real run. Both are compared step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .api import overshoot_ratio_eps
from ...runtime.adam import second_moment_after
from ...runtime.policy import PolicyConfig, build_policy, completion_logprobs, flat_grad, param_vector, set_param_vector
from ...variants import Variant, get_variant
from ...runtime.precision import build, policy_config, recorded_index, take_recorded
from .clip import clip_ratio, forbidden, negated_surrogate
from .model import Run

__all__ = ["DESIGNS", "PremiseRun", "premise_run", "first_zero_step", "LR_GRID", "premise_case", "post_entry_drift"]

PROMPT = [2, 3]
#: batches tried in order: one token per completion, then three (no shared (context, token) pair)
DESIGNS = ([[5], [7], [9], [11]], [[5, 3, 8], [7, 2, 1], [9, 4, 4], [11, 6, 13]])
REWARDS = [1.0, 0.0, 0.0, 1.0]
#: learning rates tried, smallest first (the gentlest lr whose premise starts at step T)
LR_GRID = tuple(float(x) for x in np.geomspace(1e-4, 3e-2, 21))


@dataclass
class PremiseRun:
    """One run: per inner step t = 1..mu the loss evaluation's clipped mask and gradient, and after the
    step the parameters (``thetas[0]``: initial) and every token's excursion past its bound (log-ratio
    units, negative inside the band); the prediction for the covered steps T..T+k."""

    variant: str
    lr: float
    T: int | None
    mu: int
    betas: tuple[float, float]
    eps: float
    comps: list[list[int]]
    grad_max: list[float] = field(default_factory=list)
    all_clipped: list[bool] = field(default_factory=list)
    excursion: list[np.ndarray] = field(default_factory=list)
    predicted_excursion: list[np.ndarray] = field(default_factory=list)
    step_error: list[float] = field(default_factory=list)
    #: the same steps predicted with C_(T,k) alone (eps neglected): a control that must be visibly worse
    step_error_eps_neglected: list[float] = field(default_factory=list)
    covered: int = 0


def _excursion(v: Variant, model, comps, old, mask, r) -> tuple[np.ndarray, bool]:
    """Signed distance past the bound per token (log s - log(1 + eps_up) for A > 0, log(1 - eps_low) -
    log s for A < 0), and whether every token is past it."""
    with torch.no_grad():
        lp, _ = completion_logprobs(model, PROMPT, comps)
        s = clip_ratio(v, lp, old, mask)
        bad, _ = forbidden(v, s, r - r.mean(), mask)
    A = (r - r.mean())[:, None].expand_as(s)
    up = torch.log(s) - np.log1p(v.eps_up) if v.eps_up is not None else torch.full_like(s, -np.inf)
    low = np.log1p(-v.eps_low) - torch.log(s) if v.eps_low is not None else torch.full_like(s, -np.inf)
    dist = torch.where(A > 0, up, low)
    on = mask > 0
    return dist[on].cpu().numpy(), bool(bad[on].all())


def first_zero_step(variant: str | Variant, comps, lr: float, limit: int, betas, eps: float, device: str = "cpu",
                    seed: int = 0) -> int | None:
    """The first inner step t <= ``limit`` whose loss evaluation has every token past its bound (None: none)."""
    v = get_variant(variant)
    model = build_policy(PolicyConfig.tiny(seed=seed), device=device)
    with torch.no_grad():
        old, mask = completion_logprobs(model, PROMPT, comps)
    r = torch.tensor(REWARDS, dtype=old.dtype, device=old.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps)
    for t in range(1, limit + 1):
        _, every = _excursion(v, model, comps, old, mask, r)
        if every:
            return t
        opt.zero_grad()
        lp, _ = completion_logprobs(model, PROMPT, comps)
        negated_surrogate(v)(lp, old, r, mask).backward()
        opt.step()
    return None


def premise_run(variant: str | Variant, T: int, mu: int, betas=(0.9, 0.999), eps: float = 1e-8,
                device: str = "cpu", seed: int = 0) -> PremiseRun:
    """Search the batch design and lr for a premise that starts at inner step T, run mu steps, predict."""
    v = get_variant(variant)
    comps, lr = None, None
    for design in DESIGNS:
        for trial in LR_GRID:
            if first_zero_step(v, design, trial, T, betas, eps, device, seed) == T:
                comps, lr = design, trial
                break
        if comps is not None:
            break
    out = PremiseRun(v.name, lr if lr is not None else float("nan"), T if comps is not None else None, mu,
                     tuple(betas), eps, comps or [])
    if comps is None:
        return out
    model = build_policy(PolicyConfig.tiny(seed=seed), device=device)
    with torch.no_grad():
        old, mask = completion_logprobs(model, PROMPT, comps)
    r = torch.tensor(REWARDS, dtype=old.dtype, device=old.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps)
    thetas, grads = [param_vector(model)], []
    for _ in range(mu):
        _, every = _excursion(v, model, comps, old, mask, r)
        out.all_clipped.append(every)
        opt.zero_grad()
        lp, _ = completion_logprobs(model, PROMPT, comps)
        negated_surrogate(v)(lp, old, r, mask).backward()
        g = flat_grad(model).detach().clone()
        grads.append(g)
        out.grad_max.append(float(g.abs().max()))
        opt.step()
        thetas.append(param_vector(model))
        out.excursion.append(_excursion(v, model, comps, old, mask, r)[0])
    _predict(out, v, model, comps, old, mask, r, thetas, grads)
    return out


def _predict(out: PremiseRun, v, model, comps, old, mask, r, thetas, grads) -> None:
    """Fill the prediction for the steps T..T+k the premise covers (see the module docstring)."""
    T, (b1, b2) = out.T, out.betas
    last = (thetas[T - 1] - thetas[T - 2]).cpu().numpy()
    vv = second_moment_after([g.cpu().numpy() for g in grads[:T - 1]], b2)
    sqrt_vhat = np.sqrt(vv / (1 - b2 ** (T - 1)))
    theta = thetas[T - 1].cpu().numpy().copy()
    saved = param_vector(model)
    try:
        for j in range(out.mu - T + 1):
            ratio = np.where(vv > 0, overshoot_ratio_eps(T, j, b1, b2, out.eps, np.where(vv > 0, sqrt_vhat, 1.0)), 0.0)
            step = ratio * last
            meas = (thetas[T + j] - thetas[T + j - 1]).cpu().numpy()
            out.step_error.append(float(np.abs(meas - step).max() / max(float(np.abs(step).max()), 1e-300)))
            plain = np.where(vv > 0, overshoot_ratio_eps(T, j, b1, b2, 0.0, 1.0), 0.0) * last
            out.step_error_eps_neglected.append(float(np.abs(meas - plain).max() / max(float(np.abs(plain).max()), 1e-300)))
            theta = theta + step
            set_param_vector(model, torch.as_tensor(theta, dtype=thetas[0].dtype, device=thetas[0].device))
            exc, every = _excursion(v, model, comps, old, mask, r)
            out.predicted_excursion.append(exc)
            out.covered = j + 1
            if not every:  # a token back inside its band: its gradient acts at the next step
                break
    finally:
        set_param_vector(model, saved)


def premise_case(shared: bool = False, *, mu: int = 12, lr: float = 5e-4, betas=(0.9, 0.999), eps: float = 1e-8,
                 variant: str = "grpo", device: str = "cpu", seed: int = 0, model: str | None = None,
                 precision: str | None = None) -> dict:
    """A batch where the premise holds exactly (``shared=False``) or fails through a shared token.

    Prompt [2, 3], four completions, rewards [1, 0, 0, 1] (A = +-1/2). Without ``shared`` no two
    completions with opposite advantages share a (context, token) pair, so once every token is past
    its bound the advantage gradient is exactly zero. ``shared=True`` makes completion 2 (A = -1/2,
    two tokens) start with the first token of completion 1 (A = +1/2, three tokens): the two copies
    have different weights 1/(G |o_i| sigma) (Prop. 1), so the token moves, and once one copy is
    clipped the other keeps a restoring gradient. Adam without weight decay runs
    ``mu`` steps. ``model`` / ``precision`` (:mod:`grpo_proofs.runtime.precision`): another preset or arithmetic
    than the float64 tiny GPT-2 (both None: that model); on a model larger than
    :data:`~grpo_proofs.runtime.precision.MAX_RECORDED` parameters, gradients and parameters are recorded on a
    fixed random subset of coordinates (``coords``).

    Returns: per step the flat gradient, the parameters (``thetas[0]`` initial), the bool clipped
    mask (G, T) at the loss evaluation, ``shared_mask`` (tokens in a shared context), betas, eps, lr.
    """
    comps = [[5, 3, 8], [7, 2, 1], [9, 4, 4], [11, 6, 13]]
    if shared:
        comps[1] = [comps[0][0], 2]
    v = get_variant(variant)
    if model is None and precision is None:
        net = build_policy(PolicyConfig.tiny(seed=seed), device=device)
    else:
        net = build(policy_config(model, precision, device, default="tiny", seed=seed), precision)
    model, idx = net, recorded_index(net, seed)
    prompt = [2, 3]
    with torch.no_grad():
        old, mask = completion_logprobs(model, prompt, comps)
    r = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=old.dtype, device=old.device)
    shared_mask = np.zeros(tuple(mask.shape), dtype=bool)
    if shared:
        shared_mask[0, 0] = shared_mask[1, 0] = True
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=0.0)
    loss_fn, grads, thetas, clipped = negated_surrogate(v), [], [take_recorded(param_vector(model), idx).cpu().numpy()], []
    for _ in range(mu):
        opt.zero_grad()
        lp, _ = completion_logprobs(model, prompt, comps)
        with torch.no_grad():
            bad, _ = forbidden(v, clip_ratio(v, lp, old, mask), r - r.mean(), mask, old)
        clipped.append(bad.cpu().numpy())
        loss_fn(lp, old, r, mask).backward()
        grads.append(take_recorded(flat_grad(model), idx).detach().cpu().numpy().copy())
        opt.step()
        thetas.append(take_recorded(param_vector(model), idx).cpu().numpy())
    return {"grads": grads, "thetas": thetas, "clipped": clipped, "mask": mask.cpu().numpy() > 0,
            "shared_mask": shared_mask, "betas": tuple(betas), "eps": eps, "lr": lr,
            "coords": None if idx is None else idx.cpu().numpy()}


def post_entry_drift(rn: Run, variant: str = "grpo", batches=None) -> dict:
    """Per token: what happens after it first passes its bound within a batch (log-ratio units).

    For a token entering the forbidden side at inner step t0 < mu: the entry step
    delta = |log s_t0 - log s_{t0-1}|, the further drift D = dist(mu) - dist(t0) into the forbidden
    side (dist = log s - log(1+eps_up) for A > 0, log(1-eps_low) - log s for A < 0), and the
    premise prediction D_pred = delta * sum_{k < mu-t0} ratio_k, whose own gradient vanished at
    t0 + 1: ratio_k = C_{T,k} (Adam, eps neglected, T = the optimizer's step counter at t0 + 1),
    mu_m^(k+1) (SGD with momentum), 0 (SGD). ``batches``: indices (default all).
    """
    from .api import overshoot_ratio
    v = get_variant(variant)
    up = np.log(1 + v.eps_up) if v.eps_up is not None else np.inf
    low = np.log(1 - v.eps_low) if v.eps_low is not None else -np.inf
    rows = []
    for b in (range(len(rn.ratios)) if batches is None else batches):
        R, side = np.log(rn.ratios[b]), rn.sides[b]
        dist = np.where(side > 0, R - up, np.where(side < 0, low - R, -np.inf))
        mu_b = R.shape[0] - 1
        for j in range(R.shape[1]):
            ent = np.nonzero(dist[:, j] > 0)[0]
            if len(ent) == 0 or ent[0] >= mu_b or ent[0] == 0:
                continue
            t0 = int(ent[0])
            delta, D, n = abs(R[t0, j] - R[t0 - 1, j]), dist[-1, j] - dist[t0, j], mu_b - t0
            if rn.optimizer == "adam":
                T = rn.offsets[b] + t0 + 1
                pred = delta * sum(overshoot_ratio(T, k, *rn.betas) for k in range(n))
            elif rn.optimizer == "sgd-momentum":
                pred = delta * sum(rn.momentum ** (k + 1) for k in range(n))
            else:
                pred = 0.0
            rows.append({"batch": b, "token": j, "entry_step": t0, "delta": float(delta), "drift": float(D),
                         "drift_pred": float(pred)})
    over = [r_["drift"] / r_["delta"] for r_ in rows]
    return {"tokens": rows, "max_drift_over_delta": max(over, default=None),
            "min_drift_over_delta": min(over, default=None),
            "median_drift_over_pred": (float(np.median([r_["drift"] / r_["drift_pred"] for r_ in rows]))
                                       if rows and rn.optimizer != "sgd" else None)}
