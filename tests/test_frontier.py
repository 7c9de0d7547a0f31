"""The frontier claims (CFPO against Prop. 3): derivations, independent paths, planted wrong statements."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from grpo_proofs.checking import Context, run_claim
from grpo_proofs.errors import InputError
from grpo_proofs.props.overshoot.api import overshoot_ratio, overshoot_total
from grpo_proofs.props.frontier import api, claims, derive, model

A = sp.Symbol("A", positive=True)


def test_restoring_point_both_signs():
    assert derive.restoring_point(1)["s_star"] == sp.Rational(6, 5)
    assert derive.restoring_point(-1)["s_star"] == sp.Rational(4, 5)
    e = sp.Symbol("e", positive=True)
    assert sp.simplify(derive.restoring_point(1, e)["kappa"] - A * (1 + e) ** 2 / e) == 0
    assert sp.simplify(derive.restoring_point(-1, e)["kappa"] - A * (1 - e) ** 2 / e) == 0


def test_linear_map_determinant_and_ringing():
    lin = derive.linear_post_boundary()
    b1 = sp.Symbol("beta_1", positive=True)
    assert lin["det"] == b1 and lin["roots_kappa0"] == [1, b1]
    # eigenvalue modulus sqrt(beta1) in the ringing regime, numerically
    mat = np.array(lin["matrix_q"].subs({b1: 0.9, derive.q_stiff: 0.2, sp.Symbol("h", positive=True): 1.0}),
                   dtype=float)
    assert np.allclose(np.abs(np.linalg.eigvals(mat)), math.sqrt(0.9), rtol=1e-12)


@pytest.mark.parametrize("name", ["grpo", "cfpo"])
@pytest.mark.parametrize("lr, betas", [(0.05, (0.9, 0.999)), (0.3, (0.8, 0.9))])
def test_toy_recurrence_equals_torch_adam(name, lr, betas):
    pred, meas = api.toy_predicted(name, lr, betas, steps=50), model.toy_measured(name, lr, betas, steps=50)
    assert max(abs(a - b) for a, b in zip(pred, meas)) <= 1e-12 * max(abs(v) for v in meas)


def test_negative_control_clip_gradient_does_not_predict_cfpo():
    pred, meas = api.toy_predicted("grpo", 0.05, steps=60), model.toy_measured("cfpo", 0.05, steps=60)
    assert max(abs(a - b) for a, b in zip(pred, meas)) > 1e-2


def test_zero_stiffness_is_prop7_and_stiffness_shrinks_the_excursion():
    for b in ((0.9, 0.999), (0.9, 0.95)):
        e = api.post_boundary_excursion(*b, T=40, steps=600)
        assert e.peak == pytest.approx(sum(overshoot_ratio(40, k, *b) for k in range(600)), rel=1e-12)
        peaks = [api.post_boundary_excursion(*b, stiffness=c).peak for c in api.STIFFNESS]
        assert all(x > y for x, y in zip(peaks, peaks[1:]))
    # large T: the zero-stiffness excursion tends to rho/(1 - rho)
    e = api.post_boundary_excursion(0.9, 0.95, T=2000, steps=2000)
    assert e.peak == pytest.approx(overshoot_total(0.9, 0.95), rel=1e-6)
    with pytest.raises(InputError):
        api.post_boundary_excursion(0.9, 0.999, T=1)


def test_planted_wrong_statements_fail():
    wrong = {1: 6 / 5, -1: 16 / 5}  # (1 + eps) without the square and 1/eps, per unit |A|
    assert not claims.restoring_check(Context(quick=True), stated_kappa=wrong).passed
    assert not claims.overshoot_check(Context(quick=True), stated_smaller=False).passed


@pytest.mark.parametrize("label", ["frontier-cfpo-restoring", "frontier-cfpo-overshoot", "frontier-prefix-sign-weights"])
def test_claims_pass_quick(label):
    out = run_claim(label, Context(quick=True))
    assert out.passed, out.detail


def test_prefix_sign_weights_claim_and_planted_k():
    from grpo_proofs.check.claims_frontier import prefix_check

    assert prefix_check(Context(quick=True), model_confirm=False).passed
    assert not prefix_check(Context(quick=True), stated_stare_k=0.2, model_confirm=False).passed
    W = derive.prefix_W_sign_weights()
    assert W["uniform"] == 0 and W["wapo"] == derive.c_w * derive.S_P
