"""Props 3, 7: Adam's step after clipping, the one-logit toy, the real policy, the CLI (float64, CPU)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_proofs.checking import tolerances as tol
from grpo_proofs.checking import Context, all_claims, run_claim
from grpo_proofs.cli import main
from grpo_proofs.errors import InputError
from grpo_proofs.props.overshoot import model as ex
from grpo_proofs.props.overshoot.clip import forbidden
from grpo_proofs.props.overshoot.premise import post_entry_drift
from grpo_proofs.props.overshoot.api import (clip_toy, overshoot_ratio, overshoot_ratio_eps, overshoot_total,
                                             run_clip_toy)

LABELS = ["prop7-overshoot-ratio", "prop7-paper-c-t4-value", "prop7-adam-zero-gradient",
          "prop3-clip-toy-overshoot", "prop3-sgd-stops", "prop3-momentum-overshoot", "prop3-premise-exact",
          "prop3-real-model-overshoot"]


def test_labels_registered_on_one_page():
    claims = all_claims()
    ours = [lbl for lbl, c in claims.items() if c.page == "overshoot"]
    assert sorted(ours) == sorted(LABELS)


@pytest.mark.parametrize("label", LABELS)
def test_claim_quick(label):
    out = run_claim(label, Context(quick=True))
    assert out.passed, f"{label}: {out.detail} (error {out.error}, tolerance {out.tolerance})"


# ------------------------------------------------------------------ closed form vs two real optimizers

def numpy_adam_steps(grads, b1, b2, eps):
    """Canonical Adam by hand (Kingma & Ba): the preconditioned step m_hat/(sqrt(v_hat)+eps) per step."""
    m = np.zeros_like(grads[0])
    v = np.zeros_like(grads[0])
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out, v


def torch_adam_steps(grads, b1, b2, eps, lr=0.5):
    """torch.optim.Adam steps, read exactly: the parameter is zeroed before each step (no weight decay,
    so the update does not depend on it) and the step is -param/lr afterwards."""
    x = torch.zeros(len(grads[0]), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=lr, betas=(b1, b2), eps=eps)
    out = []
    for g in grads:
        with torch.no_grad():
            x.zero_()
        x.grad = torch.as_tensor(g, dtype=torch.float64).clone()
        opt.step()
        out.append(-x.detach().numpy().copy() / lr)
    return out


def gradients(T, k, n, seed):
    rng = np.random.default_rng(seed)
    pre = [rng.normal(1.0, 1.0, n) * np.logspace(-3, 0, n) for _ in range(T - 1)]
    return pre + [np.zeros(n) for _ in range(k + 1)]


@settings(deadline=None, max_examples=40)
@given(T=st.integers(2, 40), k=st.integers(0, 25), b1=st.floats(0.5, 0.99), b2=st.floats(0.5, 0.9999),
       seed=st.integers(0, 2**16))
def test_closed_form_vs_numpy_vs_torch(T, k, b1, b2, seed):
    grads = gradients(T, k, 6, seed)
    np_steps, _ = numpy_adam_steps(grads, b1, b2, 0.0)
    th_steps = torch_adam_steps(grads, b1, b2, 0.0)
    C = overshoot_ratio(T, k, b1, b2)
    for steps in (np_steps, th_steps):
        measured = steps[T - 1 + k] / steps[T - 2]
        np.testing.assert_allclose(measured, C, rtol=tol.OPTIMIZER_FLOAT64, atol=0)


@settings(deadline=None, max_examples=25)
@given(T=st.integers(2, 30), k=st.integers(0, 15), b1=st.floats(0.5, 0.99), b2=st.floats(0.5, 0.999),
       seed=st.integers(0, 2**16))
def test_eps_corrected_ratio_vs_torch(T, k, b1, b2, seed):
    eps = 1e-3                                            # comparable to sqrt(v_hat) of the small coordinates
    grads = gradients(T, k, 6, seed)
    _, v_prev = numpy_adam_steps(grads[:T - 1], b1, b2, eps)
    r = np.sqrt(v_prev / (1 - b2 ** (T - 1)))
    measured = torch_adam_steps(grads, b1, b2, eps)
    ratio = measured[T - 1 + k] / measured[T - 2]
    np.testing.assert_allclose(ratio, overshoot_ratio_eps(T, k, b1, b2, eps, r), rtol=tol.OPTIMIZER_FLOAT64, atol=0)
    # eps matters here: the plain C_{T,k} misses the small coordinates by more than 1e-6
    assert np.max(np.abs(ratio / overshoot_ratio(T, k, b1, b2) - 1)) > 1e-6


def test_limits_and_total():
    rho = 0.9 / math.sqrt(0.95)
    # T -> oo: C_T -> rho, C_{T,k} -> rho^(k+1) (0.95^5000 underflows the bias corrections to 1)
    assert overshoot_ratio(5000, 0, 0.9, 0.95) == pytest.approx(rho, rel=tol.CLOSED_FORM)
    assert overshoot_ratio(5000, 7, 0.9, 0.95) == pytest.approx(rho**8, rel=tol.CLOSED_FORM)
    # T = 2, k = 0 by hand: beta1/(1+beta1) sqrt((1+beta2)/beta2) = 1/3 * 2 at (1/2, 1/3)
    assert overshoot_ratio(2, 0, 0.5, 1 / 3) == pytest.approx(2 / 3, rel=tol.CLOSED_FORM)
    # total drift: brute-force sum of the series
    assert overshoot_total(0.9, 0.95) == pytest.approx(sum(rho ** (j + 1) for j in range(2000)), rel=tol.CLOSED_FORM)
    assert overshoot_total(0.99, 0.95) == math.inf                       # rho >= 1: diverges
    # the paper's example (0.9, 0.95): rho^5 = 0.67128..., not 0.66
    assert round(rho**5, 2) == 0.67


@pytest.mark.parametrize("bad", [dict(T=1), dict(k=-1), dict(beta1=1.0), dict(beta2=0.0), dict(T=2.5),
                                 dict(beta1=float("nan")), dict(T=True)])
def test_bad_input(bad):
    args = dict(T=5, k=4, beta1=0.9, beta2=0.95) | bad
    with pytest.raises(InputError):
        overshoot_ratio(**args)


# ------------------------------------------------------------------ the one-logit toy

def test_clip_toy_post_clip_steps_follow_closed_form():
    run = run_clip_toy("adam", eps=0.0, steps=20)
    z = [run.z0] + run.z
    dz = np.diff(z)                                                     # dz[t-1] = step t
    T = next(t for t, g in enumerate(run.grad, start=1) if g == 0.0)
    assert all(g == 0.0 for g in run.grad[T - 1:]) and run.s[T - 2] > 1.2 >= (run.s[T - 3] if T > 2 else 1.0)
    for k in range(len(dz) - T + 1):
        assert dz[T - 1 + k] / dz[T - 2] == pytest.approx(overshoot_ratio(T, k, 0.9, 0.999), rel=tol.CLOSED_FORM)
    # s = sigmoid(z)/p_old is what clip_toy returns
    assert clip_toy("adam", eps=0.0, steps=20) == run.s
    np.testing.assert_allclose(run.s, 1 / (1 + np.exp(-np.array(run.z))) / 0.5, rtol=1e-15)


def test_clip_toy_sgd_stops_and_adam_goes_on():
    s_sgd = clip_toy("sgd", lr=0.3, steps=12)
    first = next(i for i, s in enumerate(s_sgd) if s > 1.2)
    assert all(s == s_sgd[first] for s in s_sgd[first:])
    s_adam = clip_toy("adam", steps=12)
    first_a = next(i for i, s in enumerate(s_adam) if s > 1.2)
    assert first_a < 11 and s_adam[-1] > s_adam[first_a] and all(np.diff(s_adam) > 0)
    s_mom = clip_toy("sgd", lr=0.1, momentum=0.9, steps=12)
    assert s_mom[-1] > max(s_sgd)


@pytest.mark.parametrize("bad", [dict(optimizer="rmsprop"), dict(lr=0.0), dict(clip=1.5), dict(p_old=1.0),
                                 dict(steps=0), dict(momentum=1.0), dict(betas=(0.9, 1.0))])
def test_clip_toy_bad_input(bad):
    with pytest.raises(InputError):
        clip_toy(**bad)


# ------------------------------------------------------------------ real-model helpers

def test_forbidden_and_post_entry_by_hand():
    v = ex.get_variant("dapo")                                           # eps_low 0.2, eps_up 0.28
    s = torch.tensor([[1.3, 1.1], [0.7, 0.9]], dtype=torch.float64)
    A = torch.tensor([1.0, -1.0], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    bad, exc = forbidden(v, s, A, mask)
    assert bad.tolist() == [[True, False], [True, False]]
    np.testing.assert_allclose(exc.numpy(), [[1.3 - 1.28, 0], [0.8 - 0.7, 0]], rtol=1e-14, atol=1e-15)
    # one A > 0 token entering at step 2 (log 1.2 = 0.182 < 0.2) and moving on; SGD prediction 0
    ratios = np.exp(np.array([[0.0], [0.1], [0.2], [0.25]]))
    rn = ex.Run("sgd", "none", 1.0, ratios=[ratios], sides=[np.array([1.0])], offsets=[0])
    out = post_entry_drift(rn, "grpo")
    (tok,) = out["tokens"]
    assert tok["entry_step"] == 2 and tok["delta"] == pytest.approx(0.1) and tok["drift"] == pytest.approx(0.05)
    assert tok["drift_pred"] == 0.0 and out["max_drift_over_delta"] == pytest.approx(0.5)


def test_run_offsets_and_adam_rel_reset():
    setup = ex.Setup(G=4, mu=2, n_batches=2, max_new_tokens=3)
    none = ex.run(setup, "adam", "none", lr=1e-4)
    rel = ex.run(setup, "adam", "adam-rel", lr=1e-4)
    assert none.offsets == [0, 2] and rel.offsets == [0, 0]
    assert len(none.steps) == 4 and all(np.isfinite(s["max_excursion"]) for s in none.steps)
    # batch 0 is the same run; Adam-Rel changes batch 1 only
    assert none.steps[1]["ratio_quantiles"] == rel.steps[1]["ratio_quantiles"]
    assert none.steps[3]["ratio_quantiles"] != rel.steps[3]["ratio_quantiles"]


def test_plot_writes_png(tmp_path):
    setup = ex.Setup(G=4, mu=2, n_batches=1, max_new_tokens=3)
    path = ex.plot([ex.run(setup, "sgd", lr=1e-3)], tmp_path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ CLI

def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_closed_form_json(capsys):
    code, out, _ = cli(capsys, "overshoot", "--beta1", "0.9", "--beta2", "0.95", "--T", "5", "--k", "4", "--json")
    data = json.loads(out)
    rho = 0.9 / math.sqrt(0.95)
    assert code == 0 and data["limit_C_T"] == pytest.approx(rho, rel=1e-15)
    assert data["large_T"] == pytest.approx(rho**5, rel=1e-14)
    # C_{5,4} by hand from the formula with exact fractions in floating point
    b1, b2 = 0.9, 0.95
    by_hand = b1**5 * (1 - b1**4) / (1 - b1**9) * math.sqrt((1 - b2**9) / (b2**5 * (1 - b2**4)))
    assert data["C_Tk"] == pytest.approx(by_hand, rel=1e-13)
    assert data["total_drift"] == pytest.approx(rho / (1 - rho), rel=1e-14)
    code, out, _ = cli(capsys, "overshoot")
    assert code == 0 and "0.923381" in out


@pytest.mark.parametrize("argv", [["--beta1", "1.5"], ["--beta2", "0"], ["--T", "1"], ["--k", "-1"], ["--T", "x"],
                                  ["--simulate", "--mu", "0"], ["--simulate", "--optimizer", "rmsprop"],
                                  ["--simulate", "--variant", "nope"], ["--simulate", "--mitigation", "x"]])
def test_cli_bad_input_one_line_exit_2(capsys, argv):
    code, out, err = cli(capsys, "overshoot", *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_cli_cuda_refused_without_cuda(capsys):
    code, _, err = cli(capsys, "overshoot", "--simulate", "--device", "cuda")
    assert code == 2 and "CUDA" in err


def test_cli_simulate_json(capsys):
    code, out, _ = cli(capsys, "overshoot", "--simulate", "--variant", "grpo", "--mu", "3", "--optimizer", "sgd",
                       "--batches", "1", "--first-step", "0.1", "--json")
    data = json.loads(out)
    assert code == 0 and data["runs"][0]["optimizer"] == "sgd" and len(data["runs"][0]["steps"]) == 3
    assert 0 <= data["runs"][0]["max_forbidden_frac"] <= 1


@pytest.mark.gpu
def test_gpu_premise_and_real_model():
    for label in ("prop3-premise-exact", "prop3-real-model-overshoot"):
        out = run_claim(label, Context(device="cuda", quick=True))
        assert out.passed, f"{label} on CUDA: {out.detail}"
