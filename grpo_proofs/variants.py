"""The variant spec: one frozen, typed record per method of Table 1 (arXiv 2601.05002).

A :class:`Variant` says, in the paper's terms (Eq. 1-3), what a method optimises: the weight
alpha_{i,t} as a SymPy expression of the symbols in :mod:`grpo_proofs.notation`, the kind of
importance ratio, the clip bounds, the advantage normalisation, the regulariser and the
method's parameters, each kind from :mod:`grpo_proofs.kinds` (re-exported here). ``REGISTRY`` holds the ten methods of Table 1; ``BEYOND_TABLE1`` holds
formulations published after the paper (family ``"2026"``), each with the per-token term
(``surrogate``) it uses instead of the clipped one where it differs; ``VARIANTS`` is both, and
:func:`get_variant` finds a name in either. Users build their own.

>>> from grpo_proofs.variants import REGISTRY
>>> REGISTRY["grpo"].alpha
1/(G*L_i*sigma)
>>> REGISTRY["dapo"].eps_low, REGISTRY["dapo"].eps_up
(0.2, 0.28)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import sympy as sp

from . import notation as n
from .errors import InputError
from .kinds import PHI_PARAMS, Ratio, Regularizer, Surrogate

__all__ = ["Ratio", "Regularizer", "Surrogate", "Variant", "REGISTRY", "BEYOND_TABLE1", "VARIANTS", "get_variant",
           "PHI_PARAMS"]


@dataclass(frozen=True)
class Variant:
    """One GRPO-style method written as the unified surrogate (paper Eq. 1).

    ``alpha`` is alpha_{i,t}; any 1/sigma lives there (the advantage itself is only centered,
    A_i = r_i - mean r). ``advantage`` is ``"std"`` exactly when ``alpha`` contains ``sigma``;
    the numeric sigma is std(r) + ``sigma_eps`` (population or sample std is chosen per call).
    ``eps_low``/``eps_up`` of ``None`` mean no bound on that side; both ``None`` is no clipping.
    ``params`` fixes the method parameters that appear in ``alpha`` (CPPO ``gamma``, GPG
    ``F_norm``/``alpha_hat``). ``surrogate`` replaces Eq. 1's clipped term by another per-token
    term (:class:`Surrogate`), whose parameters ``phi_params`` holds; ``family`` is ``"table1"``
    for the paper's ten methods and ``"2026"`` for the formulations published after it.
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
    surrogate: Surrogate = Surrogate.CLIP
    phi_params: Mapping[str, float] = field(default_factory=dict)
    family: str = "table1"

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
        self._check_surrogate()

    def _check_surrogate(self) -> None:
        object.__setattr__(self, "surrogate", Surrogate(self.surrogate))
        object.__setattr__(self, "phi_params", MappingProxyType(dict(self.phi_params)))
        if self.family not in ("table1", "2026"):
            raise InputError(f"variant {self.name!r}: family must be 'table1' or '2026', got {self.family!r}")
        keys, ratio = PHI_PARAMS[self.surrogate]
        if set(self.phi_params) != set(keys):
            raise InputError(f"variant {self.name!r}: surrogate {self.surrogate.value!r} takes the parameters "
                             f"{', '.join(keys) or 'none'}; got {', '.join(sorted(self.phi_params)) or 'none'}")
        for key, val in self.phi_params.items():
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
                raise InputError(f"variant {self.name!r}: {key} must be a positive number, got {val!r}")
        if ratio is not None and self.ratio is not ratio:
            raise InputError(f"variant {self.name!r}: surrogate {self.surrogate.value!r} needs the ratio "
                             f"{ratio.value!r}, got {self.ratio.value!r}")
        if self.ratio is Ratio.SEQ_SG_WEIGHT and self.surrogate not in (Surrogate.TAPER, Surrogate.GAMMA):
            raise InputError(f"variant {self.name!r}: ratio 'sequence-sg-weight' needs the surrogate 'taper' or 'gamma'")
        if self.surrogate is Surrogate.QUADRATIC and (self.eps_low is None or self.eps_up is None):
            raise InputError(f"variant {self.name!r}: the quadratic penalty needs eps_low and eps_up (its scale per sign of A)")
        if self.surrogate in (Surrogate.TV_MASK, Surrogate.SIGMOID, Surrogate.TAPER, Surrogate.GAMMA) and self.clipped:
            raise InputError(f"variant {self.name!r}: surrogate {self.surrogate.value!r} has no ratio clip; set eps_low=eps_up=None")

    def __hash__(self) -> int:
        return hash((self.name, sp.srepr(self.alpha), self.ratio, self.eps_low, self.eps_up, self.advantage,
                     self.sigma_eps, self.regularizer, self.beta, tuple(sorted(self.params.items())),
                     self.surrogate, tuple(sorted(self.phi_params.items())), self.family))

    # -- conveniences -----------------------------------------------------------------
    @property
    def clipped(self) -> bool:
        """True if some clip bound is set."""
        return self.eps_low is not None or self.eps_up is not None

    @property
    def table1(self) -> bool:
        """True for the ten methods of the paper's Table 1."""
        return self.family == "table1"

    @property
    def needs_old_logp(self) -> bool:
        """True if the gradient depends on log pi_old itself, not only on the log-ratio (DPPO's TV mask)."""
        return self.surrogate is Surrogate.TV_MASK

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


_TOKEN_MEAN = 1 / (n.sigma * n.L_sum)  # DAPO's token-level mean: uniform within a group


def _by_sign(pos, neg):
    """A factor that is ``pos`` for A_i > 0, ``neg`` for A_i < 0 (and 1 at A_i = 0, where A_i omega = 0)."""
    return sp.Piecewise((pos, n.A_i > 0), (neg, n.A_i < 0), (1, True))


#: formulations published after the paper, written as the unified surrogate (family "2026")
BEYOND_TABLE1: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("cfpo", _S, Ratio.TOKEN, 0.2, 0.2, "std", surrogate=Surrogate.QUADRATIC, family="2026",
                title="CFPO", source="Cagatan et al. 2026, arXiv 2601.22801",
                notes="quadratic penalty |A|(s-1)^2/(2 eps) instead of the clip: the gradient vanishes at "
                      "s = 1 + sgn(A) eps and pushes back beyond it; GRPO's weight"),
        Variant("dppo_tv", _S, Ratio.TOKEN, None, None, "std", surrogate=Surrogate.TV_MASK,
                phi_params={"delta_tv": 0.2}, family="2026",
                title="DPPO (binary TV)", source="Qi et al. 2026, arXiv 2602.04879",
                notes="trust region on p - p_old (token probabilities), a hard mask; GRPO's weight; "
                      "delta_tv = 0.2 is this registry's value (the paper tunes it)"),
        Variant("up", _S, Ratio.TOKEN, 0.2, 0.2, "std", surrogate=Surrogate.UP, family="2026",
                title="UP", source="arXiv 2607.06987",
                notes="REINFORCE (no ratio, no clip) for A > 0, the clipped term for A <= 0; GRPO's weight"),
        Variant("topr", 1 / (n.G * n.L_i), Ratio.SEQ_SG_WEIGHT, None, None, "centered", surrogate=Surrogate.TAPER,
                family="2026", title="TOPR", source="Le Roux et al. 2025, arXiv 2503.14286",
                notes="sg[min(s_i, 1)] tapers negative-advantage completions only; seq-mean-token-mean weight"),
        Variant("luspo", 1 / (n.G * n.sigma), Ratio.SEQ_GEOMEAN, 3e-4, 4e-4, "std", family="2026",
                title="LUSPO", source="arXiv 2602.05261 (TRL loss_type='luspo')",
                notes="GSPO's sequence term times |o_i|: the 1/|o_i| length weight removed"),
        Variant("sapo", _S, Ratio.TOKEN, None, None, "std", surrogate=Surrogate.SIGMOID,
                phi_params={"tau_pos": 1.0, "tau_neg": 1.05}, family="2026",
                title="SAPO", source="Gao et al. 2025, arXiv 2511.20347 (TRL 1.16.0 loss_type='sapo')",
                notes="smooth sigmoid gate instead of the hard clip; TRL's temperatures and weight"),
        Variant("vespo", _TOKEN_MEAN, Ratio.SEQ_SG_WEIGHT, None, None, "std", surrogate=Surrogate.GAMMA,
                phi_params={"k_pos": 2.0, "lambda_pos": 3.0, "k_neg": 3.0, "lambda_neg": 2.0}, family="2026",
                title="VESPO", source="TRL 1.16.0 loss_type='vespo' (GRPOTrainer.get_gamma_weights)",
                notes="stop-gradient gamma weight of the sequence ratio on a log-likelihood term; TRL's "
                      "token-mean weight and (k, lambda)"),
        Variant("stare", _TOKEN_MEAN * _by_sign(1 + n.chi / 10, 1 - n.chi / 10), Ratio.TOKEN, 0.2, 0.28, "std",
                family="2026", title="STARE", source="arXiv 2606.19236",
                notes="weight x1.1 on selected (top-surprisal) tokens with A > 0, x0.9 with A < 0 (chi = 1 on "
                      "a selected token); DAPO's token mean and clip as the base"),
        Variant("wapo", _TOKEN_MEAN * sp.Piecewise((1, n.A_i > 0), (0, True)), Ratio.TOKEN, 0.2, 0.28, "std",
                family="2026", title="WAPO", source="arXiv 2606.16154",
                notes="updates only completions with A > 0; DAPO's token mean and clip as the base"),
    ]
}

#: every registered variant: the ten of Table 1, then those beyond it
VARIANTS: dict[str, Variant] = {**REGISTRY, **BEYOND_TABLE1}


def get_variant(variant: "str | Variant") -> Variant:
    """A registry name or a Variant -> the Variant (clear error for an unknown name).

    >>> get_variant("cfpo").family, get_variant("grpo").table1
    ('2026', True)
    """
    if isinstance(variant, Variant):
        return variant
    if isinstance(variant, str) and variant in VARIANTS:
        return VARIANTS[variant]
    raise InputError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANTS)} (or pass a Variant)")
