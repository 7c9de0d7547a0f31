"""Proposition 1 on a real transformer (arXiv 2601.05002, Sec. 4): the shared-prefix gradient identity.

A group is sampled from a causal LM with a forced prefix y_{1:k} for the
completions in S and free sampling after it (lengths differ), scored by a documented reward rule
(:mod:`grpo_proofs.runtime.sampling`). For each variant, the measured side is J of the method's hand-written
reference loss (:mod:`grpo_proofs.reference`, which shares no code with the derivation) on the model's
log-probs, or, for a user's variant that is no Table 1 method, its derived surrogate
(:func:`grpo_proofs.evaluate.torch_surrogate`); it is differentiated by autograd with respect to the model
parameters, keeping the gradient of the prefix positions only: the log-probs of every other token
enter J with their values but detached (``torch.where(prefix, logp, logp.detach())``), so the ratios,
clip branches and sequence ratios are exactly those of the full loss. Proposition 1 predicts this
gradient to be sum_t W_t grad log pi(y_t | x, y_<t) computed from ONE copy of the prefix
(:func:`grpo_proofs.runtime.policy.prefix_logprobs`), with W_t from :func:`grpo_proofs.props.prefix.api.prefix_coefficient`
at the same ratios. Sequence ratios (GSPO, GCPO): the coefficient of a prefix token depends on its
whole completion through s_i; detaching the other tokens keeps s_i (a value) and removes only their
own gradient paths, so the prediction takes s_i measured on the same log-ratios.

Log-ratios: ``old_logp = logp - x``. At s = 1, x = 0. Off-policy cases put the shared tokens at one
ratio per position, common to every i in S (same token, same context) and chosen inside, above and
below the clip band, and the other tokens at random ratios (token kinds), or give each completion a
sequence ratio inside, above or below the band (sequence kinds). Where the weights cancel (|W_t| <=
``CLOSED_FORM`` sum_{i in S} |A_i omega_{i,t}|), the bound is |g|_inf <= tol |g_U|_inf with g_U the
gradient the prefix would get without cancellation, sum_t (sum_{i in S} |A_i omega_{i,t}|) grad log pi(y_t).

The drift of the prefix in training is :mod:`grpo_proofs.props.prefix.drift`.

Models: GPT-2 presets in float64 on CPU (every op in float64): relative error against the
prediction <= ``MODEL_FLOAT64``. In float32 or bf16 autocast (``Setup.precision``; the CUDA default is the
Qwen2-0.5B shape, :mod:`grpo_proofs.runtime.precision`): rounding scales with the terms that cancel in W, not with
W, so the error is measured against |g_U|_inf and bounded by ``tolerances.PREFIX_FLOAT32`` /
``tolerances.PREFIX_BF16`` (``for_precision("prefix", ...)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InputError
from ...evaluate import torch_surrogate
from ...runtime.policy import build_policy, prefix_logprobs, sample_group, token_logprobs
from ...runtime.precision import MODELS
from ...runtime.threads import one_thread
from .api import group_terms
from ...runtime.numerics import rel_err
from ...weights import group_weights
from ...checking.tolerances import CLOSED_FORM, MODEL_FLOAT64, for_precision
from ...variants import REGISTRY, Ratio, Variant, get_variant

__all__ = ["Setup", "Case", "CASES", "Confirmation", "confirm", "confirm_group", "PRESETS", "build",
           "reference_for", "measured_J"]

#: the policy presets by name (:data:`grpo_proofs.runtime.precision.MODELS`)
PRESETS = MODELS


@dataclass(frozen=True)
class Setup:
    """One sampled group per case (defaults: the tiny float64 GPT-2 on CPU)."""

    model: str = "tiny"
    G: int = 8
    prompt: tuple[int, ...] = (2, 3)
    prefix: tuple[int, ...] = (5, 7, 9)
    max_new_tokens: int = 8
    #: r_i = 1 if the last non-EOS free token of o_i is even (grpo_proofs.runtime.rewards.last_token_even)
    reward: str = "last_token_even"
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"
    #: None: the model runs in ``dtype``; "float64", "float32" or "bf16" (bf16 autocast with float32
    #: master weights, :func:`grpo_proofs.runtime.precision.build`) overrides ``dtype``
    precision: str | None = None

    @property
    def arithmetic(self) -> str:
        """The precision the confirmation runs in: ``precision``, else ``dtype``."""
        return self.precision or self.dtype

    @property
    def tolerance(self) -> float:
        return for_precision("prefix", "bf16" if self.arithmetic == "bfloat16" else self.arithmetic)


@dataclass(frozen=True)
class Case:
    name: str
    #: S = the first ceil(2G/3) completions (else the whole group)
    subset: bool
    #: log-ratios != 0 (every clip branch), else s = 1
    off_policy: bool


CASES = (Case("s=1, whole group", False, False), Case("off-policy, whole group", False, True),
         Case("off-policy, subset", True, True))


@dataclass(frozen=True)
class Confirmation:
    """One variant on one sampled group: predicted and measured prefix gradients."""

    variant: str
    case: str
    shared: tuple[int, ...]
    lengths: tuple[int, ...]
    rewards: tuple[float, ...]
    #: token ratio of each prefix position (token kinds) or None
    prefix_ratios: tuple[float, ...] | None
    #: s_i of each completion (sequence kinds) or None
    sequence_ratios: tuple[float, ...] | None
    #: W_t of each prefix position
    W: tuple[float, ...]
    #: True if every W_t cancels (|W_t| <= CLOSED_FORM sum_S |A_i omega_i|): the gradient must vanish
    cancels: bool
    #: the checked error: float64, |g - g_pred|_inf / |g_pred|_inf (|g|_inf / |g_U|_inf where the weights
    #: cancel); float32, |g - g_pred|_inf / |g_U|_inf (rounding scales with the uncancelled terms)
    error: float
    #: |g - g_pred|_inf / |g_pred|_inf (inf where g_pred = 0)
    relative_error: float
    grad_norm: float
    uncancelled_norm: float
    tolerance: float = MODEL_FLOAT64
    #: what computed the measured side: "reference loss" or "derived surrogate" (a variant with no reference)
    measured_by: str = "reference loss"

    @property
    def passed(self) -> bool:
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)


def build(model: str, dtype: str = "float64", device: str = "cpu", seed: int = 0, precision: str | None = None):
    """The policy of a setup; ``precision`` (if given) overrides ``dtype`` (see :mod:`grpo_proofs.runtime.precision`)."""
    if model not in PRESETS:
        raise InputError(f"unknown model preset {model!r}; choose one of {', '.join(PRESETS)}")
    if precision is not None:
        from ...runtime.precision import build as build_in, policy_config
        return build_in(policy_config(model, precision, device, default=model, seed=seed), precision)
    return build_policy(PRESETS[model](dtype=dtype, device=device, seed=seed))


def _band(v: Variant) -> tuple[float, float, float]:
    """Ratios inside, above and below the clip band (open sides: 3 and 1/4)."""
    up = v.eps_up if v.eps_up is not None else 1.0
    low = v.eps_low if v.eps_low is not None else 0.5
    return 1 + up / 2, 1 + 2 * up, 1 - min(2 * low, (1 + low) / 2)


def _log_ratios(v: Variant, lengths, k: int, S, off_policy: bool, rng) -> list[np.ndarray]:
    if not off_policy:
        return [np.zeros(int(L)) for L in lengths]
    inside, above, below = _band(v)
    if not v.sequence_level:
        shared = np.log([(inside, above, below)[t % 3] for t in range(k)])
        out = [rng.uniform(-0.3, 0.3, size=int(L)) for L in lengths]
        for i in S:
            out[i][:k] = shared
        return out
    eps = min(e for e in (v.eps_low, v.eps_up) if e is not None)
    shared = 0.1 * eps * np.array([(-1) ** t * (t + 1) for t in range(k)])
    out = []
    for i, L in enumerate(lengths):
        total = math.log((inside, above, below, 1.0)[i % 4]) * (L if v.ratio is Ratio.SEQ_GEOMEAN else 1)
        x = np.full(int(L), total / L)
        if i in S:
            x[:k] = shared
            x[k:] = (total - shared.sum()) / (L - k)
        out.append(x)
    return out


def reference_for(v: Variant):
    """The hand-written reference loss of ``v`` (:data:`grpo_proofs.reference.REFERENCE`) when ``v`` is a
    Table 1 method exactly as registered, else None (a user's variant has only its derived surrogate)."""
    from ...reference import REFERENCE

    return REFERENCE.get(v.name) if REGISTRY.get(v.name) == v else None


def measured_J(v: Variant, logp: torch.Tensor, old: torch.Tensor, rewards, mask: torch.Tensor,
               sigma: str = "pop") -> tuple[torch.Tensor, str]:
    """J on padded (G, T) log-probs, with autograd, by the method's reference loss where one exists (the
    measured side of a real-model check must not share the derivation's code), else by the derived
    surrogate; and which of the two it was."""
    ref = reference_for(v)
    if ref is None:
        return torch_surrogate(v, logp, old, rewards, mask, sigma=sigma), "derived surrogate"
    r = torch.as_tensor(np.asarray(rewards, dtype=np.float64), dtype=logp.dtype, device=logp.device) \
        if not isinstance(rewards, torch.Tensor) else rewards.to(dtype=logp.dtype, device=logp.device)
    return -ref(logp, old, r, mask.to(logp.dtype), sigma=sigma), "reference loss"


def _flat(grads, params) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def confirm_group(model, group, variant, *, case: Case, rng, tolerance: float = MODEL_FLOAT64,
                  against_uncancelled: bool = False) -> Confirmation:
    """The identity for one variant on one sampled group (see the module docstring).

    ``against_uncancelled`` measures every error against |g_U|_inf (float32 runs)."""
    v = get_variant(variant)
    params = [p for p in model.parameters() if p.requires_grad]
    k, S = group.k, tuple(group.shared)
    rewards, lengths = np.asarray(group.rewards, dtype=np.float64), group.lengths
    logp, mask = token_logprobs(model, group)
    x = _log_ratios(v, lengths, k, S, case.off_policy, rng)
    xt = torch.zeros_like(logp)
    for i, xi in enumerate(x):
        xt[i, :len(xi)] = torch.as_tensor(xi, dtype=logp.dtype, device=logp.device)
    old = logp.detach() - xt
    pm = torch.zeros_like(mask, dtype=torch.bool)
    pm[list(S), :k] = True
    J, by = measured_J(v, torch.where(pm, logp, logp.detach()), old, rewards, mask)
    g = _flat(torch.autograd.grad(J, params, allow_unused=True), params)
    # the same log-ratios as the loss saw them, in float64
    xa = (logp.detach() - old).double().cpu().numpy()
    seq = ratios = None
    w = group_weights(v, rewards, lengths)       # the group's weights, once for every prefix position
    if v.sequence_level:
        u = np.array([xa[i, :L].sum() for i, L in enumerate(lengths)])
        seq = tuple(np.exp(u / lengths if v.ratio is Ratio.SEQ_GEOMEAN else u).tolist())
        terms = [group_terms(v, w, S, sequence_ratios=seq)] * k
    else:
        ratios = tuple(float(np.exp(xa[S[0], t])) for t in range(k))
        terms = [group_terms(v, w, S, ratio=r) for r in ratios]
    W = [t.W for t in terms]
    U = [float(np.abs(t.contributions).sum()) for t in terms]
    lp = prefix_logprobs(model, group.prompt, group.prefix, temperature=group.temperature)
    wt = lambda vals: torch.as_tensor(vals, dtype=lp.dtype, device=lp.device)  # noqa: E731
    pred = _flat(torch.autograd.grad((wt(W) * lp).sum(), params, allow_unused=True, retain_graph=True), params)
    unc = _flat(torch.autograd.grad((wt(U) * lp).sum(), params, allow_unused=True), params)
    cancels = all(abs(w) <= CLOSED_FORM * u for w, u in zip(W, U))
    g64, p64, u64 = (t.double().cpu().numpy() for t in (g, pred, unc))
    diff, gu, gp = float(np.abs(g64 - p64).max()), float(np.abs(u64).max()), float(np.abs(p64).max())
    rel = rel_err(g64, p64) if gp > 0 else math.inf
    err = diff / gu if (cancels or against_uncancelled) else rel
    return Confirmation(v.name, case.name, S, tuple(int(L) for L in lengths), tuple(rewards.tolist()), ratios, seq,
                        tuple(W), cancels, err, rel, float(np.abs(g64).max()), gu, tolerance, by)


def confirm(setup: Setup = Setup(), variants=None, cases=CASES, progress: bool = False) -> list[Confirmation]:
    """The identity for every variant (default: the registry) on one sampled group per case."""
    resolved = [get_variant(name) for name in (variants or REGISTRY)]
    with one_thread(setup.device):
        return _confirm(setup, resolved, cases, progress)


def _confirm(setup: Setup, names: list[Variant], cases, progress: bool) -> list[Confirmation]:
    model = build(setup.model, setup.dtype, setup.device, setup.seed, setup.precision)
    rng = np.random.default_rng(setup.seed)
    out = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(names) * len(cases), desc="prefix identity", unit="check")
    for n_case, case in enumerate(cases):
        S = tuple(range(math.ceil(2 * setup.G / 3))) if case.subset else None
        group = sample_group(model, G=setup.G, prompt=setup.prompt, prefix=setup.prefix,
                             max_new_tokens=setup.max_new_tokens, seed=setup.seed + 1000 * n_case, shared=S,
                             reward=setup.reward, require_mixed_rewards=True)
        for name in names:
            out.append(confirm_group(model, group, name, case=case, rng=rng, tolerance=setup.tolerance,
                                     against_uncancelled=setup.arithmetic != "float64"))
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return out
