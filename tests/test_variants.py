"""The Variant spec and the Table 1 registry."""

import pytest
import sympy as sp

from grpo_proofs import notation as n
from grpo_proofs.errors import InputError
from grpo_proofs.variants import REGISTRY, Ratio, Variant, get_variant

TABLE1 = ["grpo", "grpo_v32", "gspo", "gtpo", "dapo", "cppo", "dr_grpo", "gpg", "cispo", "gcpo"]


def test_registry_has_exactly_table1():
    assert list(REGISTRY) == TABLE1


def test_paper_defaults():
    assert (REGISTRY["grpo"].eps_low, REGISTRY["grpo"].eps_up) == (0.2, 0.2)
    assert (REGISTRY["dapo"].eps_low, REGISTRY["dapo"].eps_up) == (0.2, 0.28)
    assert (REGISTRY["gspo"].eps_low, REGISTRY["gspo"].eps_up) == (3e-4, 4e-4)
    assert REGISTRY["gspo"].ratio is Ratio.SEQ_GEOMEAN and REGISTRY["gcpo"].ratio is Ratio.SEQ_PRODUCT
    assert REGISTRY["gpg"].ratio is Ratio.LOGPROB and not REGISTRY["gpg"].clipped
    assert REGISTRY["cispo"].ratio is Ratio.SG_WEIGHT


def test_weights_are_table1_expressions():
    # alpha^S = 1/(G |o_i| sigma), written independently here
    S = 1 / (sp.Symbol("G", integer=True, positive=True) * sp.Symbol("L_i", integer=True, positive=True)
             * sp.Symbol("sigma", positive=True))
    assert sp.simplify(REGISTRY["grpo"].alpha - S) == 0
    assert sp.simplify(REGISTRY["dapo"].alpha - 1 / (n.sigma * n.L_sum)) == 0
    assert sp.simplify(REGISTRY["dr_grpo"].alpha - 1 / n.G) == 0


def test_frozen_and_hashable():
    v = REGISTRY["grpo"]
    with pytest.raises(Exception):
        v.eps_low = 0.1
    assert hash(v) == hash(REGISTRY["grpo"].replace())
    assert v.replace(eps_up=0.3).eps_up == 0.3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=sp.Symbol("theta")), "unknown symbol"),
        (dict(alpha=1 / n.G, eps_low=0.0), "eps_low must be a positive"),
        (dict(alpha=1 / n.G, eps_up=-1.0), "eps_up must be a positive"),
        (dict(alpha=1 / n.G, advantage="std"), "does not contain sigma"),
        (dict(alpha=1 / (n.G * n.sigma), advantage="centered"), "contains sigma"),
        (dict(alpha=n.gamma / n.G, advantage="centered"), "without a value"),
        (dict(alpha=1 / n.G, advantage="centered", params={"bogus": 1}), "unknown parameter"),
        (dict(alpha=1 / n.G, advantage="centered", ratio="logprob"), "no clipping"),
    ],
)
def test_bad_variants_are_refused(kwargs, message):
    kwargs.setdefault("advantage", "centered")
    with pytest.raises(InputError, match=message):
        Variant("mine", **kwargs)


def test_unknown_name():
    with pytest.raises(InputError, match="unknown variant 'nope'"):
        get_variant("nope")
