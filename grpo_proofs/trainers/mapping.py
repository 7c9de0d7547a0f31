"""A trainer config as the unified surrogate: per-token weight, one-group Variant, Table 1 match.

Every trainer loss modelled here has the form L = sum_{i,t} w_{i,t} phi_{i,t}; its gradient is
dL/dl_{i,t} = -omega_{i,t} A_i f_{i,t}, with f the surrogate's branch factor (r 1 for the PPO
clip, 1 for REINFORCE, ...). :class:`TrainerMapping` keeps

* ``weight``: omega_{i,t} as a SymPy expression of the batch symbols of
  :mod:`grpo_proofs.notation` (K micro-batches, b_k rows / N_k tokens / T_k width of micro-batch
  k, B rows and N tokens of the step, S non-empty rows, S_g steps per generation batch,
  L_i = |o_i|, L_max, C); the advantage
  is not in it. For GSPO-style sequence ratios omega = c_i/|o_i| with c_i the sequence weight.
* ``variant``: the one-group reduction, a :class:`~grpo_proofs.variants.Variant` whose alpha
  (symbols G, L_i, L_sum, L_max, sigma only) is omega with the whole step one group in one
  micro-batch (K = 1, b_k = B = S = G, N_k = N = L_sum, T_k = T_pad = L_max = the longest
  completion), times 1/sigma when the trainer divides the advantage by a std. A Variant cannot
  carry micro-batch composition; ``weight`` can.
* ``matches``: the Table 1 rows with the same ratio kind whose alpha differs from the reduced
  one by a constant factor (a function of G and L_max only).

>>> m = to_variant("trl", {"loss_type": "grpo"}, version="1.16.0")
>>> m.weight, m.variant.alpha, m.matches, m.release.title
(1/(K*L_i*b_k), 1/(G*L_i*sigma), ('grpo',), 'TRL 1.16.0')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import sympy as sp

from .. import notation as n
from ..variants import REGISTRY, Ratio, Regularizer, Variant
from . import trainer_module
from .config_terms import C, REDUCTION, READERS, S_g

__all__ = ["TrainerMapping", "to_variant", "REDUCTION"]

E8 = sp.Rational(1, 10**8)


def _exact(x: float) -> sp.Rational:
    return sp.Rational(repr(float(x)))


@dataclass(frozen=True)
class TrainerMapping:
    """What one trainer config optimises, in the terms of the unified surrogate (see module doc)."""

    trainer: str
    config: Mapping
    #: ppo-clip | cispo-cap | cispo-clip | sapo | vespo | reinforce | geo-mean
    surrogate: str
    sequence: bool
    weight: sp.Expr
    kl: str | None
    kl_coef: float
    kl_weight: sp.Expr | None
    #: KL penalty inside the reward (not the loss), or None
    kl_in_reward: str | None
    #: std-group | std-batch | whiten | centered | shifted | critic
    advantage_kind: str
    advantage: str
    variant: Variant
    #: when the Variant's gradient equals the trainer's ("always", "while r < 3 on A < 0 tokens", ...)
    exact: str
    matches: tuple[str, ...]
    closest: tuple[str, ...]
    #: the Variant's alpha without the 1e-8 guards and with symbolic constants (for people)
    alpha_clean: sp.Expr
    #: optimizer steps taken on one sampled batch (num_iterations / ppo_epochs / max_epochs times slices)
    mu: float
    adam_betas: tuple[float, float]
    grad_clip: float | None
    #: dual-clip bound (verl vanilla, OpenRLHF dual_clip) and TRL delta, when they act
    dual_clip: float | None = None
    delta: float | None = None
    #: symbol -> value of the config constants in ``weight`` (L_max, C, S_g)
    constants: Mapping = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: the release described (:class:`grpo_proofs.trainers.releases.Release`)
    release: object = None
    #: options of the release given in the config that the loss does not read
    ignored: tuple[str, ...] = ()

    @property
    def reduced_weight(self) -> sp.Expr:
        """omega with the step one group in one micro-batch (advantage excluded)."""
        return sp.cancel(self.weight.subs(REDUCTION))

    def formula(self) -> str:
        """'omega_{i,t} = ...' for people (padding excluded)."""
        return f"omega_i,t = {sp.sstr(self.weight)}"


def _variant(trainer: str, d: dict) -> tuple[Variant, str, sp.Expr]:
    """The one-group Variant, when its gradient equals the trainer's, and the clean alpha for matching."""
    kind, _ = d["adv"]
    w = sp.cancel(d["weight"].subs(REDUCTION))
    extra = sp.Integer(1)
    if d.get("est") in ("rloo", "rloo_vectorized") or (trainer == "openrlhf" and d.get("est") == "rloo"):
        extra = n.G / (n.G - 1)
    params = {}
    if trainer == "verl" and d.get("est") == "gpg":
        extra, params = n.alpha_hat / n.F_norm, {"alpha_hat": 1.0, "F_norm": 1.0}
    std = kind in ("std-group", "std-batch")
    alpha = w * extra / (n.sigma if std else 1)
    eps_lo, eps_hi = d["eps"]
    exact, ratio = "always", Ratio.SEQ_GEOMEAN if d["sequence"] else Ratio.TOKEN
    lo, hi = eps_lo, eps_hi
    s = d["surrogate"]
    if s == "cispo-cap":
        if eps_hi > 1 and not d["sequence"]:
            ratio, lo, hi = Ratio.SG_WEIGHT, None, eps_hi - 1
        else:
            ratio, lo, hi = Ratio.LOGPROB, None, None
            alpha = alpha * _exact(eps_hi)
            exact = f"while r >= epsilon_high = {eps_hi:g} (then min(r, eps_high) = eps_high)"
    elif s == "cispo-clip":
        ratio = Ratio.SG_WEIGHT
    elif s != "ppo-clip":
        ratio, lo, hi = Ratio.LOGPROB, None, None
        exact = "always" if s == "reinforce" else f"at r = 1 only ({s} has no Table 1 surrogate)"
    if d["dual"] is not None:
        exact = f"while r < {d['dual']:g} on A < 0 tokens (dual clip)"
    if d["delta"] is not None:
        exact = f"while r < delta = {d['delta']:g}"
    if kind in ("whiten", "shifted", "critic"):
        exact = f"no: the advantage ({d['adv'][1]}) is not r - mean scaled per group"
    if d["sequence"] and trainer == "verl":
        exact = "while log s_i <= 10 (verl clamps the sequence log-ratio)"
    reg, beta = Regularizer.NONE, 0.0
    if d["kl"] in ("k3", "low_var_kl", "k3+"):
        reg, beta = Regularizer.K3, d["kl_coef"]
    elif d["kl"] == "k3*r":
        reg, beta = Regularizer.IW_K3, d["kl_coef"]
    numeric = alpha.subs({k: _exact(v) for k, v in d["constants"].items()
                          if k is not S_g and (k is not n.L_max or trainer == "trl")})
    rel = d["release"]
    v = Variant(f"{trainer}-{rel.version}:{s}", sp.nsimplify(numeric) if numeric.free_symbols <= {n.G} else numeric, ratio, lo, hi,
                "std" if std else "centered", d["sigma_eps"] if std else 0.0, reg, beta, params,
                title=f"{rel.title} config", source=f"{rel.title} (grpo_proofs.trainers)", notes=d["adv"][1])
    clean = sp.cancel(d["weight"].subs(E8, 0).subs(REDUCTION)) * extra / (n.sigma if std else 1)
    if s == "cispo-cap" and ratio is Ratio.LOGPROB:
        clean = clean * _exact(eps_hi)
    return v, exact, clean


def _matches(v: Variant, clean: sp.Expr, kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if kind == "critic":
        return (), ()
    unit = n.DEFAULT_MASKS
    found, near = [], []
    for name, ref in REGISTRY.items():
        if ref.ratio is not v.ratio:
            continue
        q = sp.cancel(clean.subs(n.alpha_hat / n.F_norm, 1) / ref.alpha_with_params().subs(unit))
        if q.has(sp.Piecewise):
            continue
        free = q.free_symbols
        if free <= {n.G, n.L_max, C}:
            found.append(name)
        elif free <= {n.G, n.L_max, C, n.sigma}:
            near.append(name)
    found.sort(key=lambda name: REGISTRY[name].regularizer is not v.regularizer)  # same regulariser first
    return tuple(found), () if found else tuple(near)


def to_variant(trainer: str, config=None, *, version=None) -> TrainerMapping:
    """Map a trainer config of a release onto the unified surrogate (see the module docstring)."""
    mod = trainer_module(trainer)
    c = mod.config(config, version)
    d = READERS[mod.NAME](c)
    d["release"] = c["_release"]
    v, exact, clean = _variant(mod.NAME, d)
    found, near = _matches(v, clean, d["adv"][0])
    if v.ratio is Ratio.LOGPROB and d["surrogate"] not in ("reinforce", "cispo-cap"):
        found, near = (), found + near  # only equal at r = 1
    return TrainerMapping(mod.NAME, c, d["surrogate"], d["sequence"], d["weight"], d["kl"], float(d["kl_coef"]),
                          d["kl_weight"], d["kl_in_reward"], d["adv"][0], d["adv"][1], v, exact, found, near, clean,
                          float(d["mu"]), tuple(float(b) for b in d["betas"]),
                          None if d["clip"] is None else float(d["clip"]), d["dual"], d["delta"],
                          dict(d["constants"]), tuple(d["notes"]), c["_release"], tuple(c["_ignored"]))
