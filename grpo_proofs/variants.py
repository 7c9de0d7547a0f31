"""The variant spec: one frozen, typed record per method of Table 1 (arXiv 2601.05002).

A :class:`Variant` says, in the paper's terms (Eq. 1-3), what a method optimises: the weight
alpha_{i,t} as a SymPy expression of the symbols in :mod:`grpo_proofs.notation`, the kind of
importance ratio, the clip bounds, the advantage normalisation, the regulariser and the
method's parameters. ``REGISTRY`` holds the ten methods of Table 1; users build their own.

>>> from grpo_proofs.variants import REGISTRY
>>> REGISTRY["grpo"].alpha
1/(G*L_i*sigma)
>>> REGISTRY["dapo"].eps_low, REGISTRY["dapo"].eps_up
(0.2, 0.28)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Mapping

import sympy as sp

from . import notation as n
from .errors import InputError

__all__ = ["Ratio", "Regularizer", "Variant", "REGISTRY", "get_variant"]


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


class Regularizer(str, Enum):
    """R(theta) in Eq. 1."""

    NONE = "none"
    #: k3 estimator pi_ref/pi - log(pi_ref/pi) - 1
    K3 = "k3"
    #: importance-weighted k3, I * k3 (DeepSeek-V3.2)
    IW_K3 = "iw-k3"
    #: an entropy term (GTPO)
    ENTROPY = "entropy"


@dataclass(frozen=True)
class Variant:
    """One GRPO-style method written as the unified surrogate (paper Eq. 1).

    ``alpha`` is alpha_{i,t}; any 1/sigma lives there (the advantage itself is only centered,
    A_i = r_i - mean r). ``advantage`` is ``"std"`` exactly when ``alpha`` contains ``sigma``;
    the numeric sigma is std(r) + ``sigma_eps`` (population or sample std is chosen per call).
    ``eps_low``/``eps_up`` of ``None`` mean no bound on that side; both ``None`` is no clipping.
    ``params`` fixes the method parameters that appear in ``alpha`` (CPPO ``gamma``, GPG
    ``F_norm``/``alpha_hat``).
    """

    name: str
    alpha: sp.Expr
    ratio: Ratio = Ratio.TOKEN
    eps_low: float | None = 0.2
    eps_up: float | None = 0.2
    advantage: str = "std"
    sigma_eps: float = 0.0
    regularizer: Regularizer = Regularizer.NONE
    beta: float = 0.0
    params: Mapping[str, float] = field(default_factory=dict)
    title: str = ""
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", sp.sympify(self.alpha))
        object.__setattr__(self, "ratio", Ratio(self.ratio))
        object.__setattr__(self, "regularizer", Regularizer(self.regularizer))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        allowed = set(n.WEIGHT_SYMBOLS.values())
        unknown = self.alpha.free_symbols - allowed
        if unknown:
            names = ", ".join(sorted(map(str, unknown)))
            raise InputError(
                f"variant {self.name!r}: weight uses unknown symbol(s) {names}; "
                f"allowed: {', '.join(n.WEIGHT_SYMBOLS)}"
            )
        for side, eps in (("eps_low", self.eps_low), ("eps_up", self.eps_up)):
            if eps is not None and not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
                raise InputError(f"variant {self.name!r}: {side} must be a positive number or None, got {eps!r}")
        if self.advantage not in ("centered", "std"):
            raise InputError(f"variant {self.name!r}: advantage must be 'centered' or 'std', got {self.advantage!r}")
        has_sigma = n.sigma in self.alpha.free_symbols
        if has_sigma != (self.advantage == "std"):
            raise InputError(
                f"variant {self.name!r}: advantage={self.advantage!r} but the weight "
                f"{'contains' if has_sigma else 'does not contain'} sigma; put 1/sigma in the weight "
                "exactly when the advantage is std-normalised"
            )
        if not (math.isfinite(self.sigma_eps) and self.sigma_eps >= 0):
            raise InputError(f"variant {self.name!r}: sigma_eps must be >= 0, got {self.sigma_eps!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise InputError(f"variant {self.name!r}: beta must be >= 0, got {self.beta!r}")
        for key in self.params:
            if key not in n.WEIGHT_SYMBOLS or n.WEIGHT_SYMBOLS[key] not in n.PARAMETER_SYMBOLS:
                raise InputError(
                    f"variant {self.name!r}: unknown parameter {key!r}; parameters are "
                    f"{', '.join(sorted(k for k, v in n.WEIGHT_SYMBOLS.items() if v in n.PARAMETER_SYMBOLS))}"
                )
        missing = {str(sym) for sym in self.alpha.free_symbols & n.PARAMETER_SYMBOLS} - {
            str(n.WEIGHT_SYMBOLS[k]) for k in self.params
        }
        if missing:
            raise InputError(f"variant {self.name!r}: weight uses parameter(s) {', '.join(sorted(missing))} without a value in params")
        if self.ratio in (Ratio.LOGPROB,) and (self.eps_low is not None or self.eps_up is not None):
            raise InputError(f"variant {self.name!r}: a log-prob (REINFORCE) surrogate has no clipping; set eps_low=eps_up=None")

    def __hash__(self) -> int:
        return hash((self.name, sp.srepr(self.alpha), self.ratio, self.eps_low, self.eps_up, self.advantage,
                     self.sigma_eps, self.regularizer, self.beta, tuple(sorted(self.params.items()))))

    # -- conveniences -----------------------------------------------------------------
    @property
    def clipped(self) -> bool:
        """True if some clip bound is set."""
        return self.eps_low is not None or self.eps_up is not None

    @property
    def std_normalised(self) -> bool:
        return self.advantage == "std"

    @property
    def sequence_level(self) -> bool:
        return self.ratio in (Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT)

    def alpha_with_params(self) -> sp.Expr:
        """alpha with the method parameters substituted by their values (exact rationals)."""
        subs = {n.WEIGHT_SYMBOLS[k]: sp.nsimplify(v, rational=True) for k, v in self.params.items()}
        return self.alpha.subs(subs)

    def replace(self, **changes) -> "Variant":
        """A copy with some fields changed (validated again)."""
        from dataclasses import replace

        return replace(self, **changes)


_S = 1 / (n.G * n.L_i * n.sigma)  # alpha^S_i of Table 1

REGISTRY: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("grpo", _S, Ratio.TOKEN, 0.2, 0.2, "std", 0.0, Regularizer.K3, 0.04,
                title="GRPO (DeepSeekMath / R1)", source="Shao et al. 2024, arXiv 2402.03300"),
        Variant("grpo_v32", n.M / (n.G * n.L_i), Ratio.TOKEN, 0.2, 0.2, "centered", 0.0, Regularizer.IW_K3, 0.04,
                title="GRPO (DeepSeek-V3.2)", source="DeepSeek-AI 2025, DeepSeek-V3.2",
                notes="M: off-policy sequence mask (1 unless given)"),
        Variant("gspo", _S, Ratio.SEQ_GEOMEAN, 3e-4, 4e-4, "std", 0.0, Regularizer.NONE, 0.0,
                title="GSPO", source="Zheng et al. 2025, arXiv 2507.18071",
                notes="sequence ratio with the 1/|y_i| exponent that Table 1 omits"),
        Variant("gtpo", n.delta * n.lam / (n.G * n.L_i), Ratio.TOKEN, 0.2, 0.2, "centered", 0.0, Regularizer.ENTROPY, 0.0,
                title="GTPO", source="Simoni et al. 2025, arXiv 2508.03772",
                notes="lambda: conflict-token protection, delta: entropy filter (1 unless given)"),
        Variant("dapo", 1 / (n.sigma * n.L_sum), Ratio.TOKEN, 0.2, 0.28, "std", 0.0, Regularizer.NONE, 0.0,
                title="DAPO", source="Yu et al. 2025, arXiv 2503.14476", notes="token-level mean, clip-higher"),
        Variant("cppo", _S * sp.Piecewise((1, sp.Abs(n.A_i) > n.gamma * n.sigma), (0, True)), Ratio.TOKEN, 0.2, 0.2,
                "std", 0.0, Regularizer.K3, 0.04, params={"gamma": 0.0},
                title="CPPO", source="Lin et al. 2025, arXiv 2503.22342",
                notes="prunes completions with |A_i|/sigma <= gamma"),
        Variant("dr_grpo", 1 / n.G, Ratio.TOKEN, 0.2, 0.2, "centered", 0.0, Regularizer.K3, 0.0,
                title="Dr. GRPO", source="Liu et al. 2025, arXiv 2503.20783",
                notes="implementations use 1/(G L_max), the same up to a constant factor"),
        Variant("gpg", n.alpha_hat / (n.F_norm * n.L_sum), Ratio.LOGPROB, None, None, "centered", 0.0, Regularizer.NONE, 0.0,
                params={"alpha_hat": 1.0, "F_norm": 1.0},
                title="GPG", source="Chu et al. 2025, arXiv 2504.02546", notes="REINFORCE surrogate, no ratio, no clip"),
        Variant("cispo", n.M / (n.sigma * n.L_sum), Ratio.SG_WEIGHT, None, 4.0, "std", 0.0, Regularizer.NONE, 0.0,
                title="CISPO", source="MiniMax 2025, arXiv 2506.13585",
                notes="clips the stop-gradient weight sg[I] at 1+eps_up; the gradient always flows"),
        Variant("gcpo", 1 / (n.sigma * n.G), Ratio.SEQ_PRODUCT, 0.2, 0.2, "std", 0.0, Regularizer.NONE, 0.0,
                title="GCPO", source="arXiv 2601.05002, Table 1", notes="full sequence-product ratio"),
    ]
}


def get_variant(variant: "str | Variant") -> Variant:
    """A registry name or a Variant -> the Variant (clear error for an unknown name)."""
    if isinstance(variant, Variant):
        return variant
    if isinstance(variant, str) and variant in REGISTRY:
        return REGISTRY[variant]
    raise InputError(f"unknown variant {variant!r}; choose one of: {', '.join(REGISTRY)} (or pass a Variant)")
