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
stated side is the regime's formula with the weights of the hand-typed Table 1
(:data:`grpo_proofs.checking.table1.TABLE1`). Numbers: values of the hand-written reference losses
against the regime's value from the hand-typed Table 1, on random groups and on a real sampled group,
where the compiled surrogate's value is also compared with the reference's; fewer values than the floor
(5 per method) fail the claim.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ... import notation as n
from ...checking import Context, Outcome, claim
from ...checking.table1 import TABLE1
from ...checking.tolerances import CLOSED_FORM
from ...objective import token_term
from ...variants import REGISTRY, Ratio
from ..gradient.api import random_group
from ..prefix.derive import is_zero
from .api import numeric_value, value_error
from .derive import regime, stated_value, value_at_one
from .model import real_model_error

__all__ = ["PAGE", "check_loss_value"]

PAGE = "loss_value"
LENGTH_SETS = ((3, 2, 4, 2), (1, 5, 2))


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
            alpha = v.alpha_with_params().subs(n.DEFAULT_MASKS).subs({n.L_i: L[j], n.A_i: A_j, n.L_sum: Sg(L[j])})
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
    model_worst, model_compared = real_model_error(ctx.seed)
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
