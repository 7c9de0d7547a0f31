"""Load the variant a user wants checked: a registry name, a Python file, a YAML/TOML spec or a trainer config.

Four ways to name a GRPO-style objective (the unified surrogate of arXiv 2601.05002, Eq. 1):

* a registry name: ``grpo``, ``dapo``, ``cfpo``, ... (:data:`grpo_proofs.variants.VARIANTS`);
* ``FILE.py:NAME``: the Python file is executed (only because the user named it) and ``NAME`` must
  be a :class:`~grpo_proofs.variants.Variant` or a zero-argument callable returning one;
* a declarative YAML, TOML or JSON spec, whose weight is a formula string parsed safely by
  :func:`grpo_proofs.check.formula.parse_weight`::

      name: length_aware            # optional (default: the file name)
      alpha: "1/(G*sqrt(L_i)*sigma)"
      ratio: token                  # token | sequence-geomean | sequence-product | logprob | sg-weight
      clip: [0.2, 0.28]             # null: no clipping; 0.2: symmetric; [low, up] (either may be null)
      advantage: std-sample         # centered | std-pop | std-sample
      regularizer: none             # optional: none | k3 | iw-k3 | entropy (with beta > 0)
      beta: 0.0                     # optional; also sigma_eps, params, mu, title, source, notes

* a trainer config, mapped onto the surrogate by :func:`grpo_proofs.trainers.to_variant` for the
  release it describes: a file whose only top-level key is ``trl``, ``verl`` or ``openrlhf``, or a
  config as the trainer reads it (``trl grpo --config`` YAML, a TRL run's training-args JSON, a verl
  Hydra YAML, a verl or OpenRLHF command line in a ``.sh`` file;
  :mod:`grpo_proofs.trainers.config_files`).

Every failure (missing file or field, bad YAML, unknown symbol...) is one :class:`InputError` line.

>>> s = spec_from_mapping({"alpha": "1/(G*L_i*sigma)", "ratio": "token", "clip": 0.2,
...                        "advantage": "std-pop"}, name="mine")
>>> s.variant.alpha, s.variant.eps_low, s.variant.eps_up, s.sigma
(1/(G*L_i*sigma), 0.2, 0.2, 'pop')
>>> from grpo_proofs.variants import REGISTRY
>>> dump_spec(REGISTRY["dapo"])["clip"]
[0.2, 0.28]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import notation as n
from ..errors import InputError, kind_of, shown
from .formula import parse_weight
from .formula_text import to_formula
from ..variants import Ratio, Regularizer, Variant

__all__ = ["Spec", "spec_from_mapping", "trainer_spec", "dump_spec", "REQUIRED", "OPTIONAL", "ADVANTAGES", "TRAINER_KEYS"]

#: fields a declarative spec must give, and the optional ones
REQUIRED = ("alpha", "ratio", "clip", "advantage")
OPTIONAL = ("name", "regularizer", "beta", "sigma_eps", "params", "mu", "title", "source", "notes")
#: advantage normalisation -> (Variant.advantage, sigma kind)
ADVANTAGES = {"centered": ("centered", "pop"), "std-pop": ("std", "pop"), "std-sample": ("std", "sample")}
TRAINER_KEYS = ("trl", "verl", "openrlhf")


@dataclass(frozen=True)
class Spec:
    """A variant to check and what the spec says beyond it."""

    variant: Variant
    #: population ("pop") or sample ("sample") std of the rewards in sigma
    sigma: str = "pop"
    #: registry | python | yaml | toml | json | trainer
    origin: str = "registry"
    #: what the user gave (name or path)
    source: str = ""
    #: optimizer steps per sampled batch, when the spec fixes it
    mu: int | None = None
    #: Adam's (beta1, beta2) and the global grad-norm clip, when a trainer config fixes them
    betas: tuple[float, float] | None = None
    grad_clip: float | None = None
    #: the trainer mapping (grpo_proofs.trainers.TrainerMapping) of a trainer config
    mapping: object | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _number(value, what: str, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{what} must be a number, got {shown(value)}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0) or (nonneg and v < 0):
        raise InputError(f"{what} must be a finite number{' > 0' if positive else ' >= 0' if nonneg else ''}, got {shown(value)}")
    return v


def _clip(value, where: str) -> tuple[float | None, float | None]:
    """null -> (None, None); eps -> (eps, eps); [low, up] -> (low, up) with null for an open side."""
    if value is None:
        return None, None
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise InputError(f"{where}: clip must be null, one number or [low, up], got {shown(value)}")
        return tuple(None if e is None else _number(e, f"{where}: clip bound", positive=True) for e in value)
    e = _number(value, f"{where}: clip", positive=True)
    return e, e


def spec_from_mapping(d, *, name: str = "custom", origin: str = "yaml", source: str = "") -> Spec:
    """Build a :class:`Spec` from a declarative mapping (the parsed YAML/TOML/JSON)."""
    where = source or "spec"
    if not isinstance(d, dict):
        raise InputError(f"{where}: the spec must be a mapping of fields ({', '.join(REQUIRED)}), got {kind_of(d)}")
    unknown = sorted(set(d) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}; fields are "
                         f"{', '.join(REQUIRED)} (required) and {', '.join(OPTIONAL)}")
    for key in REQUIRED:
        if key not in d:
            raise InputError(f"{where}: the spec is missing the field {key!r} (required: {', '.join(REQUIRED)}; "
                             "clip may be null for no clipping)")
    formula = d["alpha"]
    if isinstance(formula, (int, float)) and not isinstance(formula, bool):
        formula = repr(formula)  # a bare number in YAML/TOML: a constant weight
    alpha = parse_weight(formula)
    ratios = [r.value for r in Ratio]
    if d["ratio"] not in ratios:
        raise InputError(f"{where}: ratio must be one of {', '.join(ratios)}, got {shown(d['ratio'])}")
    if d["advantage"] not in ADVANTAGES:
        raise InputError(f"{where}: advantage must be one of {', '.join(ADVANTAGES)}, got {shown(d['advantage'])}")
    adv, sigma = ADVANTAGES[d["advantage"]]
    if (adv == "std") != (n.sigma in alpha.free_symbols):
        raise InputError(
            f"{where}: advantage {d['advantage']!r} " + ("divides A_i by sigma, so the weight must contain 1/sigma "
            "(any 1/std is folded into alpha, e.g. alpha: \"1/(G*L_i*sigma)\")" if adv == "std" else
            "is only centered, so the weight must not contain sigma (use std-pop or std-sample)"))
    eps_low, eps_up = _clip(d["clip"], where)
    reg = d.get("regularizer", "none")
    regs = [r.value for r in Regularizer]
    if reg not in regs:
        raise InputError(f"{where}: regularizer must be one of {', '.join(regs)}, got {shown(reg)}")
    beta = _number(d.get("beta", 0.0), f"{where}: beta", nonneg=True)
    if reg == "none" and beta != 0:
        raise InputError(f"{where}: beta = {beta:g} but regularizer is none; name the regularizer (k3, iw-k3, entropy)")
    params = d.get("params") or {}
    if not isinstance(params, dict):
        raise InputError(f"{where}: params must be a mapping such as {{gamma: 0.1}}, got {shown(params)}")
    params = {str(k): _number(v, f"{where}: params.{k}") for k, v in params.items()}
    mu = d.get("mu")
    if mu is not None and (isinstance(mu, bool) or not isinstance(mu, int) or mu < 1):
        raise InputError(f"{where}: mu (optimizer steps per sampled batch) must be a whole number >= 1, got {shown(mu)}")
    text = {k: d.get(k, "") for k in ("title", "source", "notes")}
    for k, v in text.items():
        if not isinstance(v, str):
            raise InputError(f"{where}: {k} must be a string, got {shown(v)}")
    vname = d.get("name", name)
    if not isinstance(vname, str) or not vname:
        raise InputError(f"{where}: name must be a non-empty string, got {shown(vname)}")
    v = Variant(vname, alpha, Ratio(d["ratio"]), eps_low, eps_up, adv,
                _number(d.get("sigma_eps", 0.0), f"{where}: sigma_eps", nonneg=True), Regularizer(reg), beta, params,
                **text)
    return Spec(v, sigma, origin, source, mu)


def dump_spec(v: Variant, sigma: str = "pop") -> dict:
    """The declarative form of a Variant (what :func:`spec_from_mapping` reads back)."""
    clip = None if not v.clipped else [v.eps_low, v.eps_up]
    adv = "centered" if v.advantage == "centered" else f"std-{sigma}"
    out = {"name": v.name, "alpha": to_formula(v.alpha), "ratio": v.ratio.value, "clip": clip, "advantage": adv,
           "regularizer": v.regularizer.value, "beta": float(v.beta), "sigma_eps": float(v.sigma_eps)}
    if v.params:
        out["params"] = {k: float(x) for k, x in v.params.items()}
    for k in ("title", "source", "notes"):
        if getattr(v, k):
            out[k] = getattr(v, k)
    return out


def trainer_spec(trainer: str, config: dict, origin: str, source: str) -> Spec:
    if config is not None and not isinstance(config, dict):
        raise InputError(f"{source}: {trainer}: must map config keys to values, got {kind_of(config)}")
    from ..trainers import to_variant

    mp = to_variant(trainer, config or {})
    v = mp.variant
    rel = mp.release
    notes = [f"trainer release: {rel.title} ({mp.config['_release_source']}): {rel.summary}"]
    if mp.ignored:
        notes.append(f"options not seen by the loss ({len(mp.ignored)}): {', '.join(mp.ignored)}")
    notes += list(mp.notes)
    if mp.exact.startswith("no:"):
        notes.append(f"the one-group variant does not reproduce this config's gradient:{mp.exact[3:]}")
    elif mp.exact != "always":
        notes.append(f"the one-group variant reproduces this config's gradient {mp.exact}")
    mu = max(1, int(round(mp.mu)))
    sigma = "sample" if v.std_normalised else "pop"
    return Spec(v, sigma, "trainer", source, mu, tuple(mp.adam_betas), mp.grad_clip, mp, tuple(notes))

