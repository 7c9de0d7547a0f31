"""Claim ``check-equivalence-registry``: the declarative spec form is faithful, and the equivalence
finder of ``grpo-proofs check`` recognises every Table 1 method (arXiv 2601.05002) as itself.

For each registry variant: :func:`grpo_proofs.check.spec.dump_spec` writes the declarative form (the weight
as a formula string), ``yaml.safe_dump``/``yaml.safe_load`` round-trip it as text, and
:func:`grpo_proofs.check.spec.spec_from_mapping` reads it back through the safe formula parser. The read-back
variant must equal the original field by field, with the weights' difference simplifying to exactly
zero; :func:`grpo_proofs.check.verdict.equivalents` of the read-back variant must list the original method
with the factor 1. Two independent paths meet here: the printer/parser pair, and SymPy's own
simplification of the difference.
"""

from __future__ import annotations

import sympy as sp
import yaml

from .spec import dump_spec, spec_from_mapping
from ..checking.tolerances import EXACT
from ..variants import REGISTRY
from .verdict import equivalents
from ..checking import Context, Outcome, claim

__all__ = ["round_trip_failures", "PAGE"]

PAGE = "check"


def round_trip_failures() -> tuple[list[str], dict]:
    """Problems found over the registry (empty when everything round-trips), and the texts written."""
    bad, texts = [], {}
    for name, v in REGISTRY.items():
        sigma = "sample" if v.std_normalised else "pop"
        text = yaml.safe_dump(dump_spec(v, sigma), sort_keys=False)
        texts[name] = text
        back = spec_from_mapping(yaml.safe_load(text), origin="yaml", source=f"{name}.yaml")
        w = back.variant
        if sp.simplify(w.alpha - v.alpha) != 0:
            bad.append(f"{name}: weight {w.alpha} != {v.alpha}")
        fields = ("name", "ratio", "eps_low", "eps_up", "advantage", "sigma_eps", "regularizer", "beta")
        bad += [f"{name}: {f} {getattr(w, f)!r} != {getattr(v, f)!r}" for f in fields if getattr(w, f) != getattr(v, f)]
        if dict(w.params) != dict(v.params) or back.sigma != sigma:
            bad.append(f"{name}: params/sigma differ")
        found = {m["name"]: m["factor"] for m in equivalents(w)["matches"]}
        if found.get(name) != "1":
            bad.append(f"{name}: not found equivalent to itself (matches: {found})")
    return bad, texts


@claim("check-equivalence-registry", title="Every Table 1 method round-trips through its YAML spec and is found equivalent to itself",
       page=PAGE, kind="symbolic",
       statement="For each of the ten registry methods, the declarative YAML spec written by grpo-proofs and read "
                 "back by its safe formula parser gives the same variant (weight difference simplifying to exactly 0, "
                 "every other field equal), and the equivalence search of grpo-proofs check lists the method "
                 "itself with factor 1.")
def _check(ctx: Context) -> Outcome:
    bad, texts = round_trip_failures()
    return Outcome(error=float(len(bad)), tolerance=EXACT,
                   detail=f"{len(REGISTRY)} methods round-tripped; problems: {'; '.join(bad) if bad else 'none'}",
                   data={"problems": bad, "yaml": texts, "compared": len(texts)})
