"""Proposition 4 (arXiv 2601.05002, App. A): the loss value is not a performance signal.

At the first inner step (s = 1) phi(1, A_i) = A_i, so the surrogate's value is

    J = sum_i A_i Omega_i = G Cov_pop(A, Omega),      Omega_i = sum_t alpha_{i,t}     (beta = 0)

* length-normalised weights (GRPO, GRPO-V3.2, GSPO, GTPO: Omega_i the same for all i): J = 0;
* constant per-token weights (Dr. GRPO, DAPO, GCPO: alpha_{i,t} = C): J = C sum_i A_i |o_i|, a
  covariance of reward and length;
* general weights (CPPO's pruning, masks): J = G Cov_pop(A, Omega).

Surrogates written on log pi itself (GPG, CISPO) have the value sum_i A_i Lambda_i with
Lambda_i = sum_t alpha_{i,t} w_{i,t} log pi(y_{i,t}) (w = sg[clip(I)] = 1 at s = 1), i.e. G Cov_pop(A, Lambda):
a covariance of reward with weighted log-likelihood. None of these is the expected reward: a falling
loss does not mean a better policy, and for s != 1 importance-sampling noise is added on top.

The derived side is J of a concrete group from :func:`grpo_proofs.objective.surrogate` (symbolic
rewards, sigma, log pi_old) or the generic token term with symbolic lengths and a symbolic G; the
stated side is the regime's formula from Table 1. Numbers: autograd-free values of the hand-written
reference losses, and the compiled surrogate on a real sampled group.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from ... import notation as n
from ...evaluate import torch_surrogate
from ...runtime.numerics import rel_err
from ...objective import group_numbers, surrogate, token_term
from ...checking.tolerances import CLOSED_FORM
from ...variants import REGISTRY, Ratio, Variant
from ...checking import Context, Outcome, claim
from ..gradient.claims import padded, random_group
from ..prefix.derive import DEFAULT_MASKS, is_zero

__all__ = ["PAGE", "regime", "value_at_one", "stated_value", "numeric_value", "value_error"]

PAGE = "loss_value"
LENGTH_SETS = ((3, 2, 4, 2), (1, 5, 2))


def regime(v: Variant) -> str:
    """Table 1 reading: ``"log-prob"`` (GPG, CISPO), ``"length-normalised"`` (Omega_i free of |o_i|, A_i),
    ``"constant"`` (alpha free of |o_i|, A_i) or ``"general"``."""
    if v.ratio in (Ratio.LOGPROB, Ratio.SG_WEIGHT):
        return "log-prob"
    alpha = v.alpha_with_params().subs(DEFAULT_MASKS)
    if not (sp.cancel(n.L_i * alpha).free_symbols & {n.L_i, n.A_i}):      # Omega_i = |o_i| alpha_i
        return "length-normalised"
    if not (alpha.free_symbols & {n.L_i, n.A_i}):
        return "constant"
    return "general"


def value_at_one(v: Variant, lengths) -> tuple[sp.Expr, list[sp.Expr], dict]:
    """J of a concrete group at s = 1, derived from the surrogate: (J, A, old log-prob symbols by completion)."""
    grp = surrogate(v, lengths)
    r = [n.r_idx[j] for j in range(1, len(lengths) + 1)]
    A = [ri - sp.Add(*r) / len(r) for ri in r]
    point = {x: 0 for xi in grp.x for x in xi}
    point.update(dict(zip(grp.A, A)))
    point.update(DEFAULT_MASKS)
    return sp.Add(*[t.xreplace(point) for t in grp.terms]).doit(), A, grp.old


def stated_value(v: Variant, lengths, A, old) -> sp.Expr:
    """The regime's formula (Sec. 4 of the loss-value page) with Table 1's alpha, for the same group."""
    G, Ls = len(lengths), sp.Add(*lengths)
    alpha = [v.alpha_with_params().subs({n.G: G, n.L_i: L, n.L_sum: Ls, n.L_max: max(lengths), n.A_i: A[i]})
             .subs(DEFAULT_MASKS) for i, L in enumerate(lengths)]
    kind = regime(v)
    if kind == "length-normalised":
        return sp.Integer(0)
    if kind == "constant":
        return alpha[0] * sp.Add(*[A[i] * L for i, L in enumerate(lengths)])       # C sum_i A_i |o_i|
    if kind == "log-prob":
        Om = [alpha[i] * sp.Add(*old[i]) for i in range(G)]                         # Lambda_i
    else:
        Om = [alpha[i] * L for i, L in enumerate(lengths)]                          # Omega_i
    mean = sp.Add(*Om) / G
    return G * sp.Add(*[A[i] * (Om[i] - mean) for i in range(G)]) / G               # G Cov_pop(A, Omega)


def numeric_value(name: str, rewards, lengths, sigma: str = "pop") -> tuple[float, float, float]:
    """(J by the hand-written reference loss at s = 1, the regime's value from Table 1 numbers, scale)."""
    from ...reference import REFERENCE

    rng = np.random.default_rng(len(lengths))
    lp = [rng.normal(-2.0, 0.7, size=int(L)) for L in lengths]
    logp, mask = padded(lengths, lp, junk=5.0)
    J_ref = -float(REFERENCE[name](logp, logp.clone(), torch.as_tensor(np.asarray(rewards, float)), mask, sigma=sigma))
    num = group_numbers(name, rewards, lengths, sigma=sigma)
    v = REGISTRY[name]
    if regime(v) == "log-prob":
        Om = np.array([(a * l).sum() for a, l in zip(num.alpha, lp)])
    else:
        Om = num.Omega
    stated = {"length-normalised": 0.0, "constant": float(num.alpha[0][0] * np.dot(num.A, num.lengths))}.get(
        regime(v), float(len(num.A) * np.mean(num.A * (Om - Om.mean()))))
    return J_ref, stated, float(np.abs(num.A * Om).sum())


def value_error(J: float, stated: float, scale: float) -> float:
    """Relative error of a value; where the stated value cancels (|stated| <= CLOSED_FORM sum_i |A_i Omega_i|)
    the error is measured against that uncancelled scale."""
    if abs(stated) <= CLOSED_FORM * scale:
        return abs(J - stated) / scale if scale > 0 else abs(J - stated)
    return rel_err(J, stated)


def _real_model_errors(ctx: Context) -> float:
    """J of the compiled surrogate on a real sampled group (tiny float64 GPT-2) against G Cov_pop(A, Omega)."""
    from ..prefix.model import one_thread
    from ...runtime.policy import PolicyConfig, build_policy, sample_group, token_logprobs

    with one_thread("cpu"), torch.no_grad():
        model = build_policy(PolicyConfig.tiny(seed=ctx.seed))
        g = sample_group(model, G=8, prompt=(2, 3), max_new_tokens=8, seed=ctx.seed, reward="last_token_even",
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


@claim(
    "prop4-loss-value",
    title="The loss value at the first step (Prop. 4)",
    page=PAGE,
    statement=(
        "At s = 1 the surrogate's value is J = sum_i A_i Omega_i = G Cov_pop(A, Omega) (beta = 0): identically 0 "
        "for length-normalised weights, C sum_i A_i |o_i| for constant per-token weights, and proportional to "
        "Cov(A, Omega) in general; it measures a weighting artefact, not performance."
    ),
    kind="symbolic",
)
def check_loss_value(ctx: Context) -> Outcome:
    j, G, r, W = n.j_idx, n.G, n.r_idx, n.Omega_idx
    Sg = lambda f: sp.Sum(f, (j, 1, G))  # noqa: E731
    A_j = r[j] - Sg(r[j]) / G
    L = sp.IndexedBase("L", positive=True)
    bad = []
    if not is_zero(Sg(A_j * W[j]) - Sg(A_j * (W[j] - Sg(W[j]) / G))):          # sum A Omega = G Cov_pop
        bad.append("covariance form, symbolic G")
    regimes = {}
    for name, v in REGISTRY.items():
        regimes[name] = regime(v)
        for lengths in LENGTH_SETS:
            J, A, old = value_at_one(v, lengths)
            if not is_zero(J - stated_value(v, lengths, A, old)):
                bad.append(f"{name} |o|={lengths}")
        if v.ratio in (Ratio.TOKEN, Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT):
            term, extra = token_term(v)                   # one token (sequence) at s = 1, symbolic length
            at_one = term.subs({n.x: 0, **{s: 0 for s in extra.values() if isinstance(s, sp.Symbol)}})
            alpha = v.alpha_with_params().subs(DEFAULT_MASKS).subs({n.L_i: L[j], n.A_i: A_j, n.L_sum: Sg(L[j])})
            per_c = (at_one.subs({n.Omega: L[j] * alpha}) if v.sequence_level else L[j] * at_one.subs(n.a, alpha))
            J_G = Sg(per_c.subs(n.A_i, A_j))
            stated = {"length-normalised": 0, "constant": alpha * Sg(A_j * L[j])}.get(regimes[name])
            if stated is not None and not is_zero(J_G - stated):
                bad.append(f"{name} symbolic G and lengths")
    if bad:
        return Outcome(float("inf"), CLOSED_FORM, "nonzero residue: " + "; ".join(bad[:4]))
    rng = np.random.default_rng(ctx.seed)
    worst = 0.0
    for name, v in REGISTRY.items():
        for k in range(3 if ctx.quick else 20):
            rewards, lengths, _ = random_group(rng, v, max_len=40)
            J_ref, stated, scale = numeric_value(name, rewards, lengths, "sample" if k % 2 else "pop")
            worst = max(worst, value_error(J_ref, stated, scale))
    worst = max(worst, _real_model_errors(ctx))
    groups = ", ".join(f"{k}: {', '.join(x for x in regimes if regimes[x] == k)}"
                       for k in ("length-normalised", "constant", "general", "log-prob"))
    return Outcome(worst, CLOSED_FORM, groups, {"regimes": regimes})
