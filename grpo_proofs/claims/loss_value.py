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

from .. import notation as n
from ..checking.table1 import TABLE1
from ..evaluate import torch_surrogate
from ..numerics import rel_err
from ..objective import surrogate, token_term
from ..tolerances import CLOSED_FORM
from ..variants import REGISTRY, Ratio, Variant, get_variant
from . import Context, Outcome, claim
from .gradient import padded, random_group
from .prefix_algebra import DEFAULT_MASKS, is_zero

__all__ = ["PAGE", "regime", "value_at_one", "stated_value", "stated_numbers", "table1_numbers", "numeric_value",
           "value_error"]

PAGE = "prop4"
LENGTH_SETS = ((3, 2, 4, 2), (1, 5, 2))


def regime(v: Variant) -> str:
    """Table 1 reading (the hand-typed row of :data:`grpo_proofs.checking.table1.TABLE1`): ``"log-prob"``
    (GPG, CISPO), ``"length-normalised"`` (Omega_i = |o_i| alpha_i free of |o_i|, A_i), ``"constant"``
    (alpha free of |o_i|, A_i) or ``"general"``."""
    row = TABLE1[v.name]
    if row.ratio in ("logprob", "sg-weight"):
        return "log-prob"
    probes = [(L, A) for L in (2, 5) for A in (0.5, -0.25, 0.0)]
    alpha = [row.alpha(G=4, L_i=L, L_sum=11, sigma=0.5, A_i=A) for L, A in probes]
    if len({round(L * a, 15) for (L, _), a in zip(probes, alpha)}) == 1:
        return "length-normalised"
    if len(set(alpha)) == 1:
        return "constant"
    return "general"


def table1_numbers(name: str, rewards, lengths, sigma: str = "pop") -> tuple[np.ndarray, np.ndarray]:
    """(A_i, alpha_i) of a group from the hand-typed Table 1 (masks 1): A_i = r_i - mean r, alpha_i
    with sigma = std(r) (population or sample), independent of :func:`grpo_proofs.objective.group_numbers`."""
    r = np.asarray(rewards, float)
    L = np.asarray(lengths, float)
    A = r - r.mean()
    sd = float(r.std(ddof=0 if sigma == "pop" else 1))
    row = TABLE1[name]
    alpha = np.array([float(row.alpha(G=len(r), L_i=L[i], L_sum=L.sum(), sigma=sd, A_i=A[i])) for i in range(len(r))])
    return A, alpha


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
    """The regime's formula (Sec. 4 of the loss-value page) with Table 1's alpha (the hand-typed row of
    :data:`~grpo_proofs.checking.table1.TABLE1`), for the same group."""
    G, Ls = len(lengths), sp.Add(*lengths)
    row = TABLE1[v.name]
    alpha = [sp.sympify(row.alpha(G=sp.Integer(G), L_i=sp.Integer(L), L_sum=Ls, sigma=n.sigma, A_i=A[i]))
             for i, L in enumerate(lengths)]
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


def stated_numbers(name: str, rewards, lengths, logprobs, sigma: str = "pop") -> tuple[float, float]:
    """(the regime's value from the hand-typed Table 1, the uncancelled scale sum_i |A_i Omega_i|) for a
    group whose per-token log-probs (list of arrays, one per completion) are ``logprobs`` (used by the
    log-prob regime only)."""
    A, alpha = table1_numbers(name, rewards, lengths, sigma)
    kind = regime(get_variant(name))
    if kind == "log-prob":
        Om = np.array([a * np.sum(lp) for a, lp in zip(alpha, logprobs)])          # Lambda_i
    else:
        Om = alpha * np.asarray(lengths, float)                                     # Omega_i
    stated = {"length-normalised": 0.0, "constant": float(alpha[0] * np.dot(A, np.asarray(lengths, float)))}.get(
        kind, float(len(A) * np.mean(A * (Om - Om.mean()))))
    return stated, float(np.abs(A * Om).sum())


def numeric_value(name: str, rewards, lengths, sigma: str = "pop") -> tuple[float, float, float]:
    """(J by the hand-written reference loss at s = 1, the regime's value from Table 1 numbers, scale)."""
    from ..reference import REFERENCE

    rng = np.random.default_rng(len(lengths))
    lp = [rng.normal(-2.0, 0.7, size=int(L)) for L in lengths]
    logp, mask = padded(lengths, lp, junk=5.0)
    J_ref = -float(REFERENCE[name](logp, logp.clone(), torch.as_tensor(np.asarray(rewards, float)), mask, sigma=sigma))
    stated, scale = stated_numbers(name, rewards, lengths, lp, sigma)
    return J_ref, stated, scale


def value_error(J: float, stated: float, scale: float) -> float:
    """Relative error of a value; where the stated value cancels (|stated| <= CLOSED_FORM sum_i |A_i Omega_i|)
    the error is measured against that uncancelled scale."""
    if abs(stated) <= CLOSED_FORM * scale:
        return abs(J - stated) / scale if scale > 0 else abs(J - stated)
    return rel_err(J, stated)


def _real_model_errors(ctx: Context) -> tuple[float, int]:
    """On a real sampled group (tiny float64 GPT-2), per Table 1 method: J of the hand-written reference
    loss on the model's log-probs against the regime's value from the hand-typed Table 1, and the compiled
    surrogate's J against the reference's. (largest relative error, values compared)."""
    from ..experiments.prefix import one_thread
    from ..policy import PolicyConfig, build_policy, sample_group, token_logprobs
    from ..reference import REFERENCE

    with one_thread("cpu"), torch.no_grad():
        model = build_policy(PolicyConfig.tiny(seed=ctx.seed))
        g = sample_group(model, G=8, prompt=(2, 3), max_new_tokens=8, seed=ctx.seed, reward="last_token_even",
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
            C = sp.sympify(TABLE1[name].alpha(G=G, L_i=L[j], L_sum=Sg(L[j]), sigma=n.sigma, A_i=A_j))  # typed
            stated = {"length-normalised": 0, "constant": C * Sg(A_j * L[j])}.get(regimes[name])
            if stated is not None and not is_zero(J_G - stated):
                bad.append(f"{name} symbolic G and lengths")
    if bad:
        return Outcome(float("inf"), CLOSED_FORM, "nonzero residue: " + "; ".join(bad[:4]))
    rng = np.random.default_rng(ctx.seed)
    worst, compared = 0.0, 0
    for name, v in REGISTRY.items():
        for k in range(3 if ctx.quick else 20):
            rewards, lengths, _ = random_group(rng, v, max_len=40)
            J_ref, stated, scale = numeric_value(name, rewards, lengths, "sample" if k % 2 else "pop")
            worst = max(worst, value_error(J_ref, stated, scale))
            compared += 1
    model_worst, model_compared = _real_model_errors(ctx)
    worst = max(worst, model_worst)
    groups = ", ".join(f"{k}: {', '.join(x for x in regimes if regimes[x] == k)}"
                       for k in ("length-normalised", "constant", "general", "log-prob"))
    symbolic = len(REGISTRY) * len(LENGTH_SETS)
    floor = len(REGISTRY) * (3 + 2)
    total = compared + model_compared
    if total < floor:
        return Outcome(float("inf"), CLOSED_FORM, f"FAILS: {total} values compared, below the floor of {floor}")
    return Outcome(worst, CLOSED_FORM, f"{groups}; {symbolic} exact groups, {compared} random groups (reference loss "
                   f"vs Table 1), {model_compared} real-model values (reference loss vs Table 1, compiled vs reference)",
                   {"regimes": regimes, "compared": total + symbolic, "floor": floor})
