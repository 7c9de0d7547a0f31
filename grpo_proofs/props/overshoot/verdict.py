"""Props. 3, 7 asked of one variant: the zero-gradient region and C_(T,k) for the steps it takes.

A batch used for mu optimizer steps starts at s = 1 (nothing clipped at its first step), so the
advantage gradient can vanish from inner step T >= 2 on, and the steps T..mu follow before the
next batch resets the ratios: only C_(T,k) with T + k <= mu describe a step the optimizer takes
(:func:`reachable`), and the drift after clipping within a batch is sum_(j <= mu - T) C_(T,j).
"""

from __future__ import annotations

import math

from ...errors import InputError
from .api import overshoot_ratio, overshoot_total
from ...variants import Ratio, Surrogate, Variant

__all__ = ["reachable", "overshoot_verdict"]


def reachable(T: int, k: int, mu: int | None) -> bool:
    """Whether C_(T,k) describes a step the optimizer takes: 2 <= T and T + k <= mu inner steps per batch.

    The first inner step of a batch has s = 1 (nothing is clipped), so the gradient can vanish from
    step T >= 2 on; the steps T..T+k must lie within the batch's mu steps (the next batch resets the
    ratios). mu None: no bound.

    >>> reachable(5, 4, 8), reachable(2, 0, 2), reachable(2, 0, 1)
    (False, True, False)
    """
    return T >= 2 and (mu is None or T + k <= mu)


#: the later terms without a zero-gradient region, and why
_NO_ZERO = {
    Surrogate.QUADRATIC: ("no zero-gradient region: the quadratic penalty's gradient s (A - |A| (s - 1)/eps) vanishes "
                          "only at s = 1 + sgn(A) eps and pushes back beyond it; Adam's carried momentum still moves "
                          "past that point for a few steps before the restoring gradient turns it (the overshoot "
                          "page derives the excursion)"),
    Surrogate.SIGMOID: ("no zero-gradient region: the sigmoid gate's gradient decays like exp(-tau |s - 1|) but never "
                        "vanishes, so the carried momentum meets a weak pull, not a hard stop"),
    Surrogate.TAPER: ("no zero-gradient region: the weight min(s_i, 1) > 0 scales a log-likelihood gradient that never "
                      "vanishes"),
    Surrogate.GAMMA: ("no zero-gradient region: the weight Phi(s_i) > 0 scales a log-likelihood gradient that never "
                      "vanishes (Phi underflows to 0 only for sequence ratios far from 1)"),
}


def overshoot_verdict(v: Variant, T: int | None, k: int | None, beta1: float, beta2: float, mu: int | None) -> dict:
    """Props. 3, 7 for ``v``: the zero-gradient region and C_(T,k) for the steps the optimizer takes
    (every reachable step by default; see :func:`reachable`), the drift within a batch."""
    rho = beta1 / math.sqrt(beta2)
    limit = overshoot_total(beta1, beta2)
    if mu is not None and mu < 2:
        T = k = None
        table, drift, later = [], 0.0, 0.0
    else:
        T = (2 if mu is not None else 5) if T is None else T
        k = ((mu - T) if mu is not None else 4) if k is None else k
        if not reachable(T, k, mu):
            raise InputError(f"T = {T}, k = {k}: step T + k = {T + k} lies past the mu = {mu} optimizer steps each "
                             f"batch is used for; choose T >= 2 and T + k <= {mu}")
        table = [{"k": j, "C_Tk": overshoot_ratio(T, j, beta1, beta2)} for j in range(k + 1)]
        n_after = (mu - T) if mu is not None else None
        drift = (sum(overshoot_ratio(T, j, beta1, beta2) for j in range(n_after + 1)) if n_after is not None
                 else limit)
        later = (sum(rho ** (j + 1) for j in range(n_after + 1)) if n_after is not None else limit)
    exposed = (v.ratio in (Ratio.TOKEN, Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT) and v.clipped
               and v.surrogate in (Surrogate.CLIP, Surrogate.UP)) or v.surrogate is Surrogate.TV_MASK
    what = "s_i" if v.sequence_level else "s_(i,t)"
    sides = ([f"{what} > 1 + {v.eps_up:g} with A_i > 0"] if v.eps_up is not None else []) + \
            ([f"{what} < 1 - {v.eps_low:g} with A_i < 0"] if v.eps_low is not None else [])
    if v.surrogate is Surrogate.UP:  # REINFORCE on the positive side: only the negative side is ever clipped
        sides = sides[1:] if v.eps_up is not None else sides
    if v.surrogate is Surrogate.TV_MASK:
        d = v.phi_params["delta_tv"]
        sides = [f"p - p_old > {d:g} with A_i > 0", f"p - p_old < -{d:g} with A_i < 0"]
    if v.surrogate in _NO_ZERO:
        reason = _NO_ZERO[v.surrogate]
    elif exposed:
        reason = (f"the clipped branch has zero advantage gradient ({' or '.join(sides)}); once every contribution "
                  f"reaching a parameter is clipped, Adam keeps moving it: the step k updates later is C_(T,k) times "
                  f"the last pre-clip step (Prop. 7), about rho^(k+1), rho = beta1/sqrt(beta2) = {rho:.4f}")
        if len(sides) == 1:
            reason += ("; with a clip on one side only, the completions of the other advantage sign keep their "
                       "gradient, so a parameter they reach never sees a zero advantage gradient")
    elif v.ratio is Ratio.SG_WEIGHT:
        reason = "the clip acts on a stop-gradient weight sg[clip(I)]: the gradient alpha clip(I) A always flows"
    elif v.ratio is Ratio.LOGPROB:
        reason = "no ratio and no clip: the gradient alpha A never vanishes"
    else:
        reason = "no clip bound: no zero-gradient region (and nothing holds the ratio near 1 either)"
    if mu == 1:
        reason += "; with mu = 1 optimizer step per sampled batch the ratio is 1 at that step and clipping never acts"
    elif mu is not None and exposed:
        reason += (f"; with mu = {mu} optimizer steps per batch the first step has s = 1, so the gradient can vanish "
                   f"from inner step T = 2 on at the earliest: at most mu - 1 = {mu - 1} zero-gradient step(s) "
                   "(T..mu) before the next batch resets the ratios")
    return {"exposed": exposed, "one_sided": exposed and len(sides) == 1, "region": sides if exposed else [],
            "reason": reason, "T": T, "k": k,
            "beta1": beta1, "beta2": beta2, "mu": mu, "C_Tk": table[-1]["C_Tk"] if table else None, "table": table,
            "rho": rho, "total_drift": drift, "later_batches_drift": later, "drift_unbounded_mu": limit,
            "formula": "C_(T,k) = b1^(k+1) (1 - b1^(T-1))/(1 - b1^(T+k)) sqrt((1 - b2^(T+k))/(b2^(k+1) (1 - b2^(T-1))))"}
