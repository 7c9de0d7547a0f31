"""Props 5, 6, 2 (reward scale and Adam): closed forms against torch.optim, mpmath and the real policy."""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_proofs import notation as n
from grpo_proofs.checking import tolerances
from grpo_proofs.runtime.adam import AdamRecurrence, adam_step_ratio, mp_sqrt, noninvariant_threshold
from grpo_proofs.checking import REGISTRY, Context, all_claims
from grpo_proofs.cli import main
from grpo_proofs.errors import InputError
from grpo_proofs.variants import REGISTRY as VARIANTS


from grpo_proofs.props.reward_scale.derive import (advantage_scaling, centering_residuals, moment_induction,
                                                   step_ratio_derivation)

LABELS = sorted(label for label, c in all_claims().items() if c.page == "reward_scale")


# --- adam_step_ratio: exact values, limits, bad input --------------------------------------------
def test_step_ratio_exact_values_and_limits():
    import grpo_proofs

    assert grpo_proofs.adam_step_ratio is adam_step_ratio
    assert adam_step_ratio(3.0, 1.0, 1.0) == 1.5                      # 3 (1 + 1)/(3 + 1)
    assert adam_step_ratio(2.0, 1.0, 4.0) == 1.2                      # (1 + 1/2)/(1 + 1/4) = 6/5
    assert adam_step_ratio(1e3, 0.0, 2.0) == 1.0 and adam_step_ratio(-7.0, 0.0, 2.0) == -1.0
    assert adam_step_ratio(5.0, 1e-8, 0.0) == 5.0 and adam_step_ratio(-5.0, 0.0, 0.0) == -1.0  # v_hat -> 0+
    assert adam_step_ratio(1.0, 0.3, 0.7) == 1.0
    v = np.array([0.0, 1e-20, 1.0, 1e6])
    out = adam_step_ratio(10.0, 1e-8, v)
    assert out.shape == v.shape and out[0] == 10.0 and abs(out[-1] - 1) < 1e-10
    # -> 1 as eps/(phi sqrt(v_hat)) -> 0, first order (eps/sqrt(v))(1 - 1/phi)
    for x in (1e-4, 1e-6, 1e-8):
        assert abs(adam_step_ratio(4.0, x, 1.0) - 1 - x * 0.75) < 2 * x * x


@pytest.mark.parametrize("phi, eps, v", [(0.0, 1e-8, 1.0), (math.nan, 1e-8, 1.0), (math.inf, 1e-8, 1.0),
                                          (1.0, -1e-8, 1.0), (1.0, math.inf, 1.0), (1.0, 1e-8, -1.0),
                                          (1.0, 1e-8, [1.0, math.nan]), ("a", 1e-8, 1.0)])
def test_step_ratio_bad_input(phi, eps, v):
    with pytest.raises(InputError):
        adam_step_ratio(phi, eps, v)


def test_threshold_is_where_the_ratio_crosses_tol():
    for phi, eps, tol in ((10.0, 1e-8, 1e-3), (0.1, 1e-5, 1e-2), (1e3, 1e-8, 0.5), (3.0, 1.0, 0.5)):
        s = noninvariant_threshold(phi, eps, tol)
        assert abs(adam_step_ratio(phi, eps, (s * (1 - 1e-9)) ** 2) - 1) > tol
        assert abs(adam_step_ratio(phi, eps, (s * (1 + 1e-9)) ** 2) - 1) < tol
    assert noninvariant_threshold(-2.0, 1e-8, 1e-3) == math.inf
    assert noninvariant_threshold(1.0005, 1e-8, 1e-3) == 0.0
    with pytest.raises(InputError):
        noninvariant_threshold(2.0, 1e-8, 0.0)


# --- symbolic derivations ----------------------------------------------------------------------
def test_symbolic_identities():
    assert set(centering_residuals().values()) == {0}
    assert set(moment_induction().values()) == {0}
    d = step_ratio_derivation()
    assert d["R - paper (phi > 0)"] == 0 and d["paper step (phi > 0)"] == 0 and d["limit"] == 1
    assert sp.simplify(d["eps = 0"] - sp.sign(n.phi)) == 0
    for name, v in VARIANTS.items():
        a = advantage_scaling(v)
        assert a["residual"] == 0, name
        want = n.phi * (n.sigma_r + n.c_sigma) / (sp.Abs(n.phi) * n.sigma_r + n.c_sigma) if v.std_normalised else n.phi
        assert sp.cancel(a["k"] - want) == 0, name


# --- hypothesis: torch.optim against the closed form and the hand-written recurrence ------------
def _torch_steps(cls, grads, *, lr, eps, wd):
    """Preconditioned steps of a real torch optimizer, read from a parameter reset to 0 each step."""
    p = torch.nn.Parameter(torch.zeros(grads.shape[1], dtype=torch.float64))
    opt = cls([p], lr=lr, betas=(0.9, 0.999), eps=eps, weight_decay=wd)
    out = []
    for g in grads:
        with torch.no_grad():
            p.zero_()
        p.grad = torch.as_tensor(g)
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


magnitudes = st.floats(-9, 2)
signs = st.sampled_from([-1.0, 1.0])


@st.composite
def histories(draw):
    T, d = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    mags = np.array(draw(st.lists(magnitudes, min_size=T * d, max_size=T * d))).reshape(T, d)
    sg = np.array(draw(st.lists(signs, min_size=T * d, max_size=T * d))).reshape(T, d)
    return sg * 10.0 ** mags


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grads=histories(), phi_exp=st.floats(-4, 4), phi_sign=signs,
       eps=st.one_of(st.just(0.0), st.floats(-12, -2).map(lambda e: 10.0 ** e)),
       opt=st.sampled_from(["adam", "adamw"]))
def test_torch_optimizer_matches_closed_form(grads, phi_exp, phi_sign, eps, opt):
    from grpo_proofs.props.reward_scale.experiments import step_scales

    phi = phi_sign * 10.0 ** phi_exp
    cls, wd = (torch.optim.Adam, 0.0) if opt == "adam" else (torch.optim.AdamW, 0.1)
    lr = 1e-3
    un = _torch_steps(cls, grads, lr=lr, eps=eps, wd=wd)
    sc = _torch_steps(cls, phi * grads, lr=lr, eps=eps, wd=wd)
    rec = AdamRecurrence(lr=lr, beta1=0.9, beta2=0.999, eps=eps)
    v_hats, hand = [], []
    for g in grads:
        _, pre = rec.step(np.zeros_like(g), g)
        hand.append(pre)
        v_hats.append(rec.v_hat)
    scales = step_scales(grads, v_hats, lr=lr, eps=eps)
    for t in range(len(grads)):
        R = adam_step_ratio(phi, eps, v_hats[t])
        assert np.all(np.abs(un[t] - hand[t]) <= tolerances.OPTIMIZER_FLOAT64 * scales[t])
        assert np.all(np.abs(sc[t] - R * un[t]) <= tolerances.OPTIMIZER_FLOAT64 * np.abs(R) * scales[t])


@settings(max_examples=25, deadline=None)
@given(grads=histories(), phi=st.sampled_from(["0.001", "0.1", "-3", "10", "1000"]),
       eps=st.sampled_from(["0", "1e-8", "1e-5"]))
def test_mpmath_recurrence_matches_closed_form(grads, phi, eps):
    """A 40-digit Adam on phi g against R(phi, eps, v_hat) (float64) x the 40-digit step on g."""
    with mpmath.workdps(40):
        G = np.array([[mpmath.mpf(float(x)) for x in row] for row in grads], dtype=object)
        runs = []
        for scale in (mpmath.mpf(1), mpmath.mpf(phi)):
            rec = AdamRecurrence(lr=mpmath.mpf("0.001"), beta1=mpmath.mpf("0.9"), beta2=mpmath.mpf("0.999"),
                                 eps=mpmath.mpf(eps), sqrt=mp_sqrt)
            runs.append([(rec.step(np.zeros(G.shape[1], dtype=object), scale * g)[1], rec.v_hat) for g in G])
        for (s1, v1), (sp_, _) in zip(*runs):
            R = adam_step_ratio(float(phi), float(eps), np.array([float(v) for v in v1]))
            got = np.array([float(x) for x in sp_])
            want = R * np.array([float(x) for x in s1])
            assert np.all(np.abs(got - want) <= 1e-13 * np.abs(want))


# --- every claim, quick mode ------------------------------------------------------------------
def test_labels():
    required = {"prop5-advantage-scaling", "prop6-moment-scaling", "prop2-adam-invariance", "prop2-sgd-scales",
                "prop2-aggregation-in-practice"}
    assert required <= set(LABELS) and len(LABELS) == 15


@pytest.mark.parametrize("label", LABELS)
def test_claim_quick(label):
    out = REGISTRY[label].run(Context(quick=True))
    assert out.passed, f"{label}: {out.detail}"


# --- the CLI ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["--variant", "dr_grpo", "--phi", "0"],
    ["--variant", "dr_grpo", "--phi", "10", "--eps", "0"],
    ["--variant", "dr_grpo", "--phi", "10", "--eps=-1e-8"],
    ["--variant", "nope", "--phi", "10"],
    ["--variant", "dr_grpo", "--phi", "10", "--steps", "0"],
    ["--variant", "dr_grpo", "--phi", "inf"],
    ["--variant", "dr_grpo", "--phi", "10", "--max-grad-norm=-1"],
])
def test_cli_bad_input(argv, capsys):
    assert main(["scale", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grpo-proofs scale: error:")


def test_cli_cuda_refused_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert main(["scale", "--variant", "dr_grpo", "--phi", "10", "--device", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_cli_json_and_plot(capsys, tmp_path):
    rc = main(["scale", "--variant", "dr_grpo", "--phi", "100", "--steps", "2", "--json", "--plot", str(tmp_path)])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    for key in ("phi", "eps", "max_rel_err_predicted_vs_measured", "noninvariant_fraction"):
        assert key in rep
    assert rep["phi"] == 100 and rep["eps"] == 1e-8
    assert rep["max_rel_err_predicted_vs_measured"] <= tolerances.OPTIMIZER_FLOAT64
    assert rep["deviation_measured"] == pytest.approx(rep["deviation_predicted"], rel=1e-6)
    assert (tmp_path / "reward_scale_gradient_scale.png").stat().st_size > 1000


def test_cli_table_with_kl_and_clipping(capsys):
    assert main(["scale", "--variant", "dr_grpo", "--phi", "0.1", "--beta", "0.04", "--max-grad-norm", "1.0",
                 "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "non-invariant fraction" in out and "predicted vs measured" in out


# --- CUDA ------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_step_ratio_on_cuda():
    from grpo_proofs.props.reward_scale.experiments import step_ratio_experiment

    res = step_ratio_experiment(Context(device="cuda", quick=True))    # float32 on CUDA by default
    assert res["max_rel_err"] <= tolerances.for_precision("optimizer", "float32")
