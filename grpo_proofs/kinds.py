"""The kinds a :class:`~grpo_proofs.variants.Variant` is built from (arXiv 2601.05002, Eq. 1-3, Table 1).

:class:`Ratio` says how the importance ratio s depends on the policy, :class:`Surrogate` which per-token
term phi(s, A) replaces Eq. 1's clipped one (the formulations published after the paper),
``PHI_PARAMS`` the parameters each term takes and the ratio kind it needs, and :class:`Regularizer`
the R(theta) of Eq. 1. :mod:`grpo_proofs.variants` re-exports all four with the Variant.

>>> Surrogate("quadratic"), PHI_PARAMS[Surrogate.SIGMOID]
(<Surrogate.QUADRATIC: 'quadratic'>, (('tau_pos', 'tau_neg'), <Ratio.TOKEN: 'token'>))
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Ratio", "Surrogate", "PHI_PARAMS", "Regularizer"]


class Ratio(str, Enum):
    """How s_{i,t} depends on the policy (paper Table 1, column s_{i,t})."""

    #: s = pi_theta / pi_old per token
    TOKEN = "token"
    #: s_i = (pi_theta(y_i) / pi_old(y_i))^(1/|y_i|), GSPO: the same for every token of y_i
    SEQ_GEOMEAN = "sequence-geomean"
    #: s_i = pi_theta(y_i) / pi_old(y_i), GCPO: the full product
    SEQ_PRODUCT = "sequence-product"
    #: the surrogate is alpha * A * log pi_theta (REINFORCE, GPG): no ratio, no clip
    LOGPROB = "logprob"
    #: the surrogate is alpha * sg[clip(I)] * A * log pi_theta (CISPO): the clip acts on a weight
    SG_WEIGHT = "sg-weight"
    #: the surrogate is alpha * sg[f(s_i, A_i)] * A * log pi_theta, f a function of the completion's
    #: full sequence ratio s_i = pi_theta(y_i)/pi_old(y_i) (TOPR, VESPO; ``Variant.surrogate`` picks f)
    SEQ_SG_WEIGHT = "sequence-sg-weight"


class Surrogate(str, Enum):
    """The per-token term phi(s, A) of the surrogate (J maximised), when it is not Eq. 1's clip.

    ``CLIP`` is Eq. 1's min(s A, clip(s) A) (or the ratio kind's own form: GPG, CISPO).
    """

    CLIP = "clip"
    #: CFPO (arXiv 2601.22801): s A - |A| (s - 1)^2 / (2 eps), eps = eps_up if A > 0 else eps_low
    QUADRATIC = "quadratic"
    #: DPPO binary TV (arXiv 2602.04879): (1 - sg[M]) s A, M = 1 where p - p_old passes +-delta_tv in
    #: the direction the advantage pushes (p = pi_theta, p_old = pi_old of the token)
    TV_MASK = "tv-mask"
    #: UP (arXiv 2607.06987): A > 0: A exp(log pi - sg[log pi]) (REINFORCE); A <= 0: the clipped term
    UP = "up"
    #: SAPO (TRL ``sapo``): (4/tau) sigmoid(tau (s - 1)) A, tau = tau_pos if A > 0 else tau_neg
    SIGMOID = "sigmoid"
    #: TOPR (arXiv 2503.14286): weight f = 1 if A >= 0 else min(s_i, 1) (with ``SEQ_SG_WEIGHT``)
    TAPER = "taper"
    #: VESPO (TRL ``vespo``): weight f = exp(lam + k log w - lam w), w = s_i with log w clamped to
    #: [log 1e-8, 20], (k, lam) = (k_pos, lambda_pos) if A >= 0 else (k_neg, lambda_neg)
    GAMMA = "gamma"


#: the parameters each surrogate takes (in ``Variant.phi_params``) and the ratio kind it needs
PHI_PARAMS: dict[Surrogate, tuple[tuple[str, ...], Ratio | None]] = {
    Surrogate.CLIP: ((), None),
    Surrogate.QUADRATIC: ((), Ratio.TOKEN),
    Surrogate.TV_MASK: (("delta_tv",), Ratio.TOKEN),
    Surrogate.UP: ((), Ratio.TOKEN),
    Surrogate.SIGMOID: (("tau_pos", "tau_neg"), Ratio.TOKEN),
    Surrogate.TAPER: ((), Ratio.SEQ_SG_WEIGHT),
    Surrogate.GAMMA: (("k_pos", "lambda_pos", "k_neg", "lambda_neg"), Ratio.SEQ_SG_WEIGHT),
}


class Regularizer(str, Enum):
    """R(theta) in Eq. 1."""

    NONE = "none"
    #: k3 estimator pi_ref/pi - log(pi_ref/pi) - 1
    K3 = "k3"
    #: importance-weighted k3, I * k3 (DeepSeek-V3.2)
    IW_K3 = "iw-k3"
    #: an entropy term (GTPO)
    ENTROPY = "entropy"
