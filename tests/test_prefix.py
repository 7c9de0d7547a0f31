"""Proposition 1: the shared-prefix coefficient W, its identities, the real-model identity and the drift.

The expected values here are computed independently of the package: ``theory_W`` types the paper's
formula W = sum_{i in S} A_i omega_i with each method's alpha and clip bounds written from Table 1 in
this file (not read from ``grpo_proofs.variants``), and the exact SymPy group gradient.
"""

import dataclasses
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_proofs import notation as n
from grpo_proofs import prefix_coefficient
from grpo_proofs.checking import REGISTRY as CLAIMS
from grpo_proofs.checking import Context, all_claims, run_claim
from grpo_proofs.props.prefix.derive import derived_W, table1_omega, is_zero
from grpo_proofs.checking.table1 import TABLE1
from grpo_proofs.cli import main
from grpo_proofs.errors import InputError
from grpo_proofs.props.prefix import model as ex
from grpo_proofs.props.prefix import drift as dr
from grpo_proofs.props.prefix.api import prefix_terms
from grpo_proofs.variants import REGISTRY

# Table 1 (arXiv 2601.05002), typed here: alpha(G, |o_i|, sum_j |o_j|, sigma, A_i) and the clip bounds
ALPHA = {
    "grpo": lambda G, L, Ls, sd, A: 1 / (G * L * sd),
    "grpo_v32": lambda G, L, Ls, sd, A: 1 / (G * L),
    "gspo": lambda G, L, Ls, sd, A: 1 / (G * L * sd),
    "gtpo": lambda G, L, Ls, sd, A: 1 / (G * L),
    "dapo": lambda G, L, Ls, sd, A: 1 / (sd * Ls),
    "cppo": lambda G, L, Ls, sd, A: (abs(A) > 0) / (G * L * sd),          # gamma = 0
    "dr_grpo": lambda G, L, Ls, sd, A: 1 / G,
    "gpg": lambda G, L, Ls, sd, A: 1 / Ls,                                  # alpha_hat = F_norm = 1
    "cispo": lambda G, L, Ls, sd, A: 1 / (sd * Ls),
    "gcpo": lambda G, L, Ls, sd, A: 1 / (sd * G),
}
CLIP = {"grpo": (0.2, 0.2), "grpo_v32": (0.2, 0.2), "gspo": (3e-4, 4e-4), "gtpo": (0.2, 0.2), "dapo": (0.2, 0.28),
        "cppo": (0.2, 0.2), "dr_grpo": (0.2, 0.2), "gpg": (None, None), "cispo": (None, 4.0), "gcpo": (0.2, 0.2)}
SEQUENCE = {"gspo", "gcpo"}
NAMES = list(ALPHA)


def theory_W(name, rewards, lengths, S, ratio=1.0, seq=None, sigma="pop"):
    """(W, sum_S |A_i omega_i|) from the derivation pages in numpy."""
    r, L = np.asarray(rewards, float), np.asarray(lengths, float)
    A, G, Ls = r - r.mean(), len(r), L.sum()
    sd = r.std(ddof=0 if sigma == "pop" else 1)
    low, up = CLIP[name]
    W = scale = 0.0
    for i in S:
        a = ALPHA[name](G, L[i], Ls, sd, A[i])
        s = seq[i] if name in SEQUENCE else ratio
        if name == "gpg":
            omega = a                                          # REINFORCE: no ratio
        elif name == "cispo":
            omega = a * min(s, 1 + up)                         # sg[clip(I)] weight, gradient always flows
        else:
            clipped = (s > 1 + up and A[i] > 0) or (s < 1 - low and A[i] < 0)
            omega = 0.0 if clipped else a * s * (L[i] if name == "gcpo" else 1)
        W += A[i] * omega
        scale += abs(A[i] * omega)
    return W, scale


def _ratio(draw_region, u, name):
    """A ratio in a region (inside / above / below the band), 5% of eps away from each bound."""
    low, up = CLIP[name]
    low = 0.2 if low is None else low
    up = 0.2 if up is None else up
    if draw_region == "above":
        return 1 + up * (1.05 + 2 * u)
    if draw_region == "below":
        return max(1 - low * (1.05 + 2 * u), 0.05)
    return 1 - 0.95 * low + u * 0.95 * (low + up)


@st.composite
def groups(draw, name):
    G = draw(st.integers(2, 10))
    binary = draw(st.booleans())
    el = st.sampled_from([0.0, 1.0]) if binary else st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 3))
    rewards = draw(st.lists(el, min_size=G, max_size=G).filter(lambda r: max(r) > min(r)))
    lengths = draw(st.lists(st.integers(1, 50), min_size=G, max_size=G))
    S = sorted(draw(st.sets(st.integers(0, G - 1), min_size=1)))
    regions = st.sampled_from(["inside", "above", "below"])
    ratio = _ratio(draw(regions), draw(st.floats(0, 1)), name)
    seq = [_ratio(draw(regions), draw(st.floats(0, 1)), name) for _ in range(G)]
    return rewards, lengths, S, ratio, seq, draw(st.sampled_from(["pop", "sample"]))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prefix_coefficient_matches_theory_formula(name, data):
    rewards, lengths, S, ratio, seq, sigma = data.draw(groups(name))
    kw = {"sequence_ratios": seq} if name in SEQUENCE else {"ratio": ratio}
    W = prefix_coefficient(name, rewards, lengths, shared=S, sigma=sigma, **kw)
    want, scale = theory_W(name, rewards, lengths, S, ratio, seq, sigma)
    assert abs(W - want) <= 1e-12 * max(scale, 1e-300)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prefix_coefficient_matches_symbolic_group_gradient(name, data):
    """Small groups: the API against SymPy's exact group gradient (s = 1 and a ratio off 1)."""
    G = data.draw(st.integers(2, 4))
    lengths = data.draw(st.lists(st.integers(2, 3), min_size=G, max_size=G))
    rewards = data.draw(st.lists(st.integers(0, 3), min_size=G, max_size=G).filter(lambda r: max(r) > min(r)))
    S = sorted(data.draw(st.sets(st.integers(0, G - 1), min_size=1)))
    v = REGISTRY[name]
    A = [sp.Rational(x) - sp.Rational(sum(rewards), G) for x in rewards]
    sd = np.std(rewards)
    s_off = [sp.Rational(13, 10), 1, sp.Rational(7, 10), sp.Rational(21, 20)][:G] if name != "gspo" else \
        [sp.Rational(10003, 10000), 1, sp.Rational(9996, 10000), sp.Rational(10001, 10000)][:G]
    for s in ([1] * G, s_off if name in SEQUENCE else [s_off[0]] * G):
        W_sym = float(derived_W(v, lengths, S, A, s).subs(n.sigma, sp.Float(sd, 30)))
        kw = {"sequence_ratios": [float(x) for x in s]} if name in SEQUENCE else {"ratio": float(s[0])}
        W = prefix_coefficient(name, rewards, lengths, shared=S, **kw)
        _, scale = theory_W(name, rewards, lengths, S, float(s[0]), [float(x) for x in s])
        assert abs(W - W_sym) <= 1e-12 * max(scale, 1e-300)


def test_worked_example():
    """the paper: G=4, r=[1,0,0,1], |o|=[10,30,20,40], s=1: GRPO (pop std) 1/96, Dr. GRPO and DAPO 0."""
    ex_ = dict(rewards=[1, 0, 0, 1], lengths=[10, 30, 20, 40])
    assert Fraction(prefix_coefficient("grpo", **ex_)).limit_denominator(10**6) == Fraction(1, 96)
    assert prefix_coefficient("dr_grpo", **ex_) == 0.0 and prefix_coefficient("dapo", **ex_) == 0.0
    # binary closed form sqrt(p(1-p)) (h_c - h_w) with p = 1/2
    assert math.isclose(0.5 * ((1 / 10 + 1 / 40) / 2 - (1 / 30 + 1 / 20) / 2), 1 / 96, rel_tol=1e-15)


@pytest.mark.parametrize("name", ["grpo", "dapo", "dr_grpo", "cppo", "grpo_v32", "gtpo"])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_restoring_sign_past_the_bounds(name, data):
    rewards, lengths, S, _, _, sigma = data.draw(groups(name))
    low, up = CLIP[name]
    A = np.asarray(rewards) - np.mean(rewards)
    above = prefix_coefficient(name, rewards, lengths, shared=S, ratio=1 + up + 0.01, sigma=sigma)
    below = prefix_coefficient(name, rewards, lengths, shared=S, ratio=1 - low - 0.01, sigma=sigma)
    assert above <= 0 and below >= 0
    assert (above < 0) == any(A[i] < 0 for i in S) and (below > 0) == any(A[i] > 0 for i in S)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), name=st.sampled_from(NAMES))
def test_covariance_decomposition(data, name):
    rewards, lengths, S, ratio, seq, sigma = data.draw(groups(name))
    kw = {"sequence_ratios": seq} if name in SEQUENCE else {"ratio": ratio}
    t = prefix_terms(name, rewards, lengths, shared=S, sigma=sigma, **kw)
    A, w = t.A[S], t.omega[S]
    cov = np.mean(A * w) - np.mean(A) * np.mean(w)                  # population covariance over S
    scale = np.abs(A * w).sum() + 1e-300
    assert abs(t.covariance_term - len(S) * cov) <= 1e-12 * scale
    assert abs(t.covariance_term + t.mean_term - t.W) <= 1e-12 * scale
    if len(S) == len(rewards):
        assert abs(t.mean_term) <= 1e-12 * scale


@pytest.mark.parametrize("kwargs, match", [
    (dict(shared=[0, 4]), "out of range"),
    (dict(shared=[1, 1]), "twice"),
    (dict(shared=[]), "empty"),
    (dict(shared=[True]), "whole completion indices"),
    (dict(shared=[0.5]), "whole completion indices"),
    (dict(ratio=0.0), "ratio"),
    (dict(ratio=-1.0), "ratio"),
    (dict(ratio=float("nan")), "ratio"),
    (dict(sequence_ratios=[1.0] * 4), "token-level"),
    (dict(sigma="mad"), "sigma"),
])
def test_bad_input_token_variant(kwargs, match):
    with pytest.raises(InputError, match=match):
        prefix_coefficient("grpo", [1, 0, 0, 1], [10, 30, 20, 40], **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sequence_ratios=[1.0, 1.0]), "one s_i per completion"),
    (dict(sequence_ratios=[1.0, 1.0, -1.0, 1.0]), "sequence_ratios"),
    (dict(ratio=1.25), "sequence ratio"),
])
def test_bad_input_sequence_variant(kwargs, match):
    with pytest.raises(InputError, match=match):
        prefix_coefficient("gspo", [1, 0, 0, 1], [10, 30, 20, 40], **kwargs)


def test_bad_group_and_variant():
    with pytest.raises(InputError, match="unknown variant"):
        prefix_coefficient("ppo", [1, 0], [1, 2])
    with pytest.raises(InputError, match="all rewards are equal"):
        prefix_coefficient("grpo", [1, 1], [1, 2])
    with pytest.raises(InputError, match=">= 1 token"):
        prefix_coefficient("grpo", [1, 0], [0, 2])
    assert prefix_coefficient("dr_grpo", [1, 1], [1, 2]) == 0.0          # centered only: A = 0, W = 0


def test_negative_control_typed_formula_without_clipping_is_caught():
    """The symbolic comparison would notice a wrong statement: omega without the clip indicator."""
    v = REGISTRY["grpo"]
    A = [sp.Rational(1, 2), -sp.Rational(1, 2), -sp.Rational(1, 2), sp.Rational(1, 2)]
    s = [sp.Rational(3, 2)] * 4
    W = derived_W(v, (3, 2, 4, 2), range(4), A, s)
    right = table1_omega(v, (3, 2, 4, 2), A, s)
    wrong = table1_omega(dataclasses.replace(TABLE1["grpo"], eps_low=None, eps_up=None), (3, 2, 4, 2), A, s)
    assert is_zero(W - sum(a * w for a, w in zip(A, right)))
    assert not is_zero(W - sum(a * w for a, w in zip(A, wrong)))


# -- real model --------------------------------------------------------------------------------------


def test_real_model_identity_every_variant():
    rows = ex.confirm(ex.Setup(model="tiny", G=8, seed=3))
    assert len(rows) == len(REGISTRY) * len(ex.CASES)
    for r in rows:
        assert r.error <= 1e-10, (r.variant, r.case, r.error)
        assert len(set(r.lengths)) > 1
    at_one = {r.variant for r in rows if r.case == "s=1, whole group" and r.cancels}
    assert at_one == {"dr_grpo", "dapo", "gpg", "cispo"}
    # past the upper bound Dr. GRPO's whole-group prefix gradient is restoring, not zero
    dr = next(r for r in rows if r.variant == "dr_grpo" and r.case == "off-policy, whole group")
    assert dr.prefix_ratios[1] > 1.2 and dr.W[1] < 0 and not dr.cancels


def test_training_drift_and_plot(tmp_path):
    res = dr.drift(dr.DriftSetup(steps=6, G=12, seed=1))
    a_grpo, a_dr = res.attributable("grpo"), res.attributable("dr_grpo")
    assert res.predicted("grpo") > 0 and a_grpo > 0                     # short correct answers: W > 0
    assert abs(a_dr) <= 1e-10 * abs(a_grpo)
    assert np.all(np.abs(res.runs[("dr_grpo", False)].W) <= 1e-15)
    path = dr.plot_drift(res, tmp_path / "plots")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.gpu
def test_real_model_identity_cuda_float32():
    from grpo_proofs.checking.tolerances import PREFIX_FLOAT32

    rows = ex.confirm(ex.Setup(model="qwen2_small", G=12, dtype="float32", device="cuda"))
    worst = max(r.error for r in rows)
    print(f"CUDA float32 prefix identity: worst relative error {worst:.2e}")
    assert worst <= PREFIX_FLOAT32


# -- claims and CLI ----------------------------------------------------------------------------------

LABELS = ["prop1-prefix-coefficient", "prop1-whole-group-cancellation", "prop1-covariance-form",
          "prop1-binary-closed-form", "prop1-restoring-gradient", "prop1-sequence-ratio-noncancellation",
          "prop1-real-model", "prop1-training-drift"]


def test_labels_registered_in_paper_order():
    from grpo_proofs.checking import _MODULES

    labels = list(all_claims())
    assert all(l in labels for l in LABELS + ["prop4-loss-value"])
    order = [_MODULES.index(f"grpo_proofs.props.{m}") for m in
             ("gradient.claims", "prefix.claims", "prefix.claims_model", "loss_value.claims")]
    assert order == sorted(order)
    assert all(CLAIMS[l].page == "prefix" for l in LABELS) and CLAIMS["prop4-loss-value"].page == "loss_value"


@pytest.mark.parametrize("label", LABELS)
def test_claim_passes_quick(label):
    out = run_claim(label, Context(quick=True))
    assert out.passed, out.detail


def test_cli_table_and_json(capsys):
    argv = ["prefix", "--variant", "grpo", "--rewards", "1,0,0,1", "--lengths", "10,30,20,40"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "W = sum_(i in S) A_i omega_i = 0.0104167" in out and "G Cov_pop" in out and "pushed up" in out
    assert main(argv + ["--json", "--shared", "0,3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["shared"] == [0, 3] and math.isclose(data["W"], 0.5 / 20 + 0.5 / 80, rel_tol=1e-14)
    assert [c["i"] for c in data["completions"]] == [0, 3]


@pytest.mark.parametrize("extra, message", [
    (["--shared", "0,9"], "out of range"),
    (["--ratio", "-2"], "ratio"),
    (["--ratio", "1,2"], "one number"),
    (["--variant", "nope"], "unknown variant"),
])
def test_cli_bad_input(capsys, extra, message):
    argv = ["prefix", "--variant", "grpo", "--rewards", "1,0,0,1", "--lengths", "10,30,20,40"] + extra
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_help_and_missing(capsys):
    with pytest.raises(SystemExit) as e:
        main(["prefix", "--help"])
    assert e.value.code == 0
    assert main(["prefix", "--rewards", "1,0"]) == 2
    assert "missing --variant" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["prefix", "--confirm", "--device", "cuda"]) == 2


def test_cli_confirm_and_train(capsys, tmp_path):
    assert main(["prefix", "--confirm", "--variant", "dapo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and [r["case"] for r in data["rows"]] == [c.name for c in ex.CASES]
    assert main(["prefix", "--train", "--steps", "3", "--plot", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["variants"]) == {"grpo", "dr_grpo"} and data["plot"].endswith(".png")
    assert (tmp_path / "prop1_training_drift.png").stat().st_size > 0
    assert main(["prefix", "--train", "--steps", "0"]) == 2
