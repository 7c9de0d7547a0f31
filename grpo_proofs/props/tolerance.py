"""The error distributions behind the float32 / bf16 tolerances (``benchmarks/tolerance.py``).

The same confirmations run in float64 and in lower precision, on the same device, model preset and
groups; every function returns a list of error samples (one per variant, optimizer row or step), so a
distribution (median, 99th percentile, max over seeds and groups) can be formed. Four tolerance kinds
(:data:`grpo_proofs.checking.tolerances.BY_PRECISION`):

* ``model``: :func:`gradient_identity`, the gradient of one sampled group's surrogate J through the
  whole transformer computed twice: autograd of J on one right-padded batched forward, against
  sum_{i,t} w_{i,t} grad log pi(o_{i,t} | x, o_{i,<t}) with w = dJ/dlog pi from the SymPy derivative
  (:func:`grpo_proofs.evaluate.token_gradient`, Eq. 13-15 of arXiv 2601.05002) and one unpadded
  forward per completion; relative error ||a - b|| / ||b|| over all parameters;
* ``prefix``: :func:`prefix_identity`, Prop. 1's shared-prefix gradient identity (the claim
  ``prop1-real-model``; in low precision its error is measured against the uncancelled gradient);
* ``optimizer``: :func:`adam_step_ratio`, Prop. 2's per-coordinate steps at phi r against
  R(phi, eps, v_hat) x the steps at r (:func:`~grpo_proofs.props.reward_scale.experiments.step_ratio_experiment`);
* ``trajectory``: :func:`premise_step` (Props 3/7: Adam's steps after every contribution is clipped
  against C_{T,k}, steps read as parameter differences) and :func:`trajectory_limit` (Prop. 2's limit:
  two AdamW trainings at r and phi r).

:func:`recommend` turns an observed maximum into a bound: 10x, rounded up to a power of ten.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checking import Context
from ..errors import InputError
from ..evaluate import token_gradient, torch_surrogate
from ..runtime.policy import completion_logprobs, flat_grad, sample_group
from ..runtime.precision import PRECISIONS, build, policy_config
from ..variants import REGISTRY

__all__ = ["KINDS", "CONFIRMATIONS", "gradient_identity", "prefix_identity",
           "adam_step_ratio", "premise_step", "trajectory_limit",
           "recommend", "summarise", "measure"]

#: confirmation name -> tolerance kind
KINDS = {"gradient-identity": "model", "prefix-identity": "prefix", "adam-step-ratio": "optimizer",
         "premise-step": "trajectory", "trajectory-limit": "trajectory"}


def recommend(observed_max: float) -> float:
    """The bound chosen from an observed maximum error: 10x it, rounded up to a power of ten.

    >>> recommend(3.2e-7), recommend(1e-5), recommend(0.0)
    (1e-05, 0.0001, 0.0)
    """
    if not math.isfinite(observed_max) or observed_max < 0:
        raise InputError(f"an observed error must be finite and >= 0, got {observed_max!r}")
    if observed_max == 0:
        return 0.0
    return float(10.0 ** math.ceil(math.log10(10 * observed_max) - 1e-12))


def _log_ratios(rng: np.random.Generator, lengths, variant) -> list[np.ndarray]:
    """Off-policy log-ratios on every clip branch, at least 0.01 away from each bound."""
    bounds = [math.log(1 + variant.eps_up)] if variant.eps_up is not None else []
    if variant.eps_low is not None and variant.eps_low < 1:
        bounds.append(math.log(1 - variant.eps_low))
    out = []
    for L in lengths:
        x = rng.uniform(-0.4, 0.4, size=int(L))
        for b in bounds:
            near = np.abs(x - b) < 0.01
            x[near] = b + np.where(x[near] >= b, 0.01, -0.01)
        out.append(x)
    return out


def gradient_identity(*, model: str = "qwen2_small", precision: str = "float64", device: str = "cpu",
                      seed: int = 0, G: int = 8, max_new_tokens: int = 10, variants=None) -> list[float]:
    """One sampled group, every variant: ||grad J (autograd, batched) - sum w grad log pi (derived, unpadded)||
    / ||sum w grad log pi||; one error per variant (see the module docstring). Ratios are off-policy
    (log pi_old = log pi - x with x uniform in [-0.4, 0.4], kept 0.01 away from the clip bounds)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    net = build(policy_config(model, precision, device, default="tiny", seed=seed), precision)
    params = list(net.parameters())
    group = sample_group(net, G=G, prompt=[2, 3], max_new_tokens=max_new_tokens, seed=seed,
                         reward="last_token_even", require_mixed_rewards=True)
    rng = np.random.default_rng(seed)
    errors = []
    for name in (variants or list(REGISTRY)):
        v = REGISTRY[name]
        logp, mask = completion_logprobs(net, group.prompt, group.completions)
        x = _log_ratios(rng, group.lengths, v)
        xpad = torch.zeros_like(logp)
        for i, xi in enumerate(x):
            xpad[i, :len(xi)] = torch.as_tensor(xi, dtype=logp.dtype, device=logp.device)
        old = (logp - xpad).detach()
        J = torch_surrogate(v, logp, old, group.rewards, mask)
        a = torch.cat([g.reshape(-1) for g in torch.autograd.grad(J, params, allow_unused=False)])
        # the log-ratios J actually saw (rounded to the model's dtype) feed the derived weights
        seen = [((logp - old)[i, :L]).detach().double().cpu().numpy() for i, L in enumerate(group.lengths)]
        w = token_gradient(v, group.rewards, group.lengths, log_ratios=seen)
        net.zero_grad(set_to_none=True)
        for i, c in enumerate(group.completions):
            lp_i, _ = completion_logprobs(net, group.prompt, [c])
            (torch.as_tensor(w[i], dtype=lp_i.dtype, device=lp_i.device) * lp_i[0]).sum().backward()
        b = flat_grad(net).detach()
        net.zero_grad(set_to_none=True)
        a, b = a.double(), b.double()
        errors.append(float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)))
    return errors


def prefix_identity(*, model: str = "qwen2_small", precision: str = "float64", device: str = "cpu",
                    seed: int = 0) -> list[float]:
    """Prop. 1's shared-prefix identity, one error per (variant, case) on one sampled group per case: the
    claim ``prop1-real-model`` (relative error in float64, |g - g_pred|_inf / |g_U|_inf otherwise)."""
    from .prefix import model as ex
    from ..runtime.precision import master_dtype

    setup = ex.Setup(model=model, G=8, max_new_tokens=8, dtype=master_dtype(precision), precision=precision,
                     device=device, seed=seed)
    return [r.error for r in ex.confirm(setup)]


def _ctx(model, precision, device, seed) -> Context:
    return Context(device=device, seed=seed, quick=True, model=model, precision=precision)


def adam_step_ratio(*, model: str = "qwen2_small", precision: str = "float64", device: str = "cpu",
                    seed: int = 0) -> list[float]:
    """Prop. 2 step-ratio errors, one per (optimizer, eps, phi) row and per path (autograd gradients
    on the compared coordinates, and the exact premise phi x g): the claim ``prop2-adam-invariance``."""
    from .reward_scale.experiments import step_ratio_experiment

    res = step_ratio_experiment(_ctx(model, precision, device, seed))
    rows = res["rows"]
    return [r["autograd_per_coordinate"] for r in rows] + [r["exact_premise_per_coordinate"] for r in rows]


def premise_step(*, model: str = "qwen2_small", precision: str = "float64", device: str = "cpu",
                 seed: int = 0, mu: int = 9) -> list[float]:
    """Props 3/7 premise errors (eps kept), one per step k after the gradient vanished: the claim
    ``prop3-premise-exact``."""
    from .overshoot.optim import premise_errors
    from .overshoot.premise import premise_case

    case = premise_case(False, mu=mu, device=device, seed=seed, model=model, precision=precision)
    gmax = [float(np.abs(g).max()) for g in case["grads"]]
    zero = [i for i, g in enumerate(gmax) if g == 0.0]
    if not zero or zero != list(range(zero[0], mu)) or zero[0] < 1:
        raise RuntimeError(f"the advantage gradient did not vanish for good (max |g| per step: {gmax})")
    return premise_errors(case, zero[0] + 1)[0]


def trajectory_limit(*, model: str = "qwen2_small", precision: str = "float64", device: str = "cpu",
                     seed: int = 0) -> list[float]:
    """Prop. 2 limit: max |theta_phi - theta_1| / (T lr) per phi (eps -> 0): the claim ``prop2-trajectory-limit``."""
    from .reward_scale.experiments import trajectory_experiment

    res = trajectory_experiment(_ctx(model, precision, device, seed))
    return [r["max_dev_resolved"] for r in res["rows"] if r["eps"] < 1e-100]


CONFIRMATIONS = {"gradient-identity": gradient_identity, "prefix-identity": prefix_identity,
                 "adam-step-ratio": adam_step_ratio, "premise-step": premise_step, "trajectory-limit": trajectory_limit}


def summarise(samples) -> dict:
    """median, 99th percentile and max of a list of errors, and the bound :func:`recommend` gives."""
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise InputError("need a non-empty list of finite errors")
    return {"n": int(a.size), "median": float(np.median(a)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max()), "recommended": recommend(float(a.max()))}


def measure(*, device: str = "cpu", precisions=PRECISIONS, seeds=range(5), model: str = "qwen2_small",
            confirmations=None, progress=None) -> dict:
    """Run every confirmation for every (precision, seed); returns {confirmation: {precision: samples}}."""
    names = list(confirmations or CONFIRMATIONS)
    out: dict = {c: {p: [] for p in precisions} for c in names}
    for c in names:
        for p in precisions:
            for s in seeds:
                out[c][p] += CONFIRMATIONS[c](model=model, precision=p, device=device, seed=s)
                if progress is not None:
                    progress.update(1)
    return out
