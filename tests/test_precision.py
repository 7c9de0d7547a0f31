"""The CUDA code path's logic on the CPU: contexts with a model preset and a precision, bf16 autocast,
recorded coordinate subsets, tolerances by precision, and ``verify --precision`` rows.

Everything here runs on the CPU with the small Qwen2 preset in float32 and in bf16 autocast (float32
master weights): the arithmetic a CUDA run uses, on the same code.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from grpo_proofs.checking import tolerances
from grpo_proofs.checking import Context, run_claim
from grpo_proofs.errors import InputError
from grpo_proofs.runtime.policy import PolicyConfig, clone_model
from grpo_proofs.runtime.precision import build, group_shape, policy_config, recorded_coordinates

ROOT = Path(__file__).resolve().parents[1]


def test_context_fields_and_validation():
    assert Context().effective_precision == "float64"
    assert Context(device="cuda").effective_precision == "float32"
    assert Context(precision="bf16").effective_precision == "bf16"
    with pytest.raises(InputError, match="precision"):
        Context(precision="fp16")
    with pytest.raises(InputError, match="model"):
        Context(model="gpt5")


def test_presets_by_device():
    assert policy_config(None, None, "cpu", default="small").arch == "gpt2"
    cuda = policy_config(None, None, "cuda", default="small")
    assert (cuda.hidden, cuda.layers, cuda.vocab_size, cuda.dtype) == (896, 24, 151936, "float32")
    assert policy_config("qwen2_small", "bf16", "cpu", default="tiny").dtype == "float32"   # master weights
    assert group_shape(None, "cuda", "tiny", 8, 5) == (16, 1024)
    assert group_shape("qwen2_small", "cuda", "tiny", 8, 5) == (8, 5)


def test_bf16_autocast_forward_on_cpu():
    cfg = PolicyConfig.qwen2_small(dtype="float32")
    m32, m16 = build(cfg, "float32"), build(cfg, "bf16")
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        a, b = m32(input_ids=ids).logits, m16(input_ids=ids).logits
    assert b.dtype == torch.float32 and all(p.dtype == torch.float32 for p in m16.parameters())
    rel = float((a - b).abs().max() / a.abs().max())
    assert 1e-5 < rel < 0.1                        # bf16 rounding, not float32 and not garbage
    with torch.no_grad():
        c = clone_model(m16)(input_ids=ids).logits     # the copy keeps the autocast hooks
        assert torch.equal(c, b)
        assert torch.equal(m32(input_ids=ids).logits, a)   # and the float32 model has none


def test_recorded_coordinates_subset():
    assert recorded_coordinates(100, limit=100) is None
    idx = recorded_coordinates(1000, seed=3, limit=50)
    assert len(set(idx.tolist())) == 50 and torch.equal(idx, recorded_coordinates(1000, seed=3, limit=50))


def test_paired_run_on_a_coordinate_subset_matches_the_full_run(monkeypatch):
    """Adam is elementwise: the steps recorded on a subset equal the full run's at those coordinates."""
    import grpo_proofs.runtime.precision as prec
    from grpo_proofs.props.reward_scale import model as rs

    kw = dict(quick=True, seed=0, n_prompts=1, G=4, max_new_tokens=4, model="qwen2_small", precision="float32")
    cfgs = {"r": rs.Config(), "10": rs.Config(scales=10.0), "exact": rs.Config(grad_of=("r", 10.0))}
    monkeypatch.setattr(rs, "_BATCHES", {})
    full = rs.paired_run(rs.make_batch("dr_grpo", **kw), cfgs, driver="r", steps=2)
    monkeypatch.setattr(rs, "_BATCHES", {})
    monkeypatch.setattr(prec, "MAX_RECORDED", 1000)
    batch = rs.make_batch("dr_grpo", **kw)
    assert batch.n_recorded == 1000 < batch.n_params
    sub = rs.paired_run(batch, cfgs, driver="r", steps=2)
    idx = batch.coords.numpy()
    for name in cfgs:
        for t in range(2):
            assert np.array_equal(sub[name].steps[t], full[name].steps[t][idx])
            assert np.array_equal(sub[name].v_hat[t], full[name].v_hat[t][idx])


def test_representable_eps_keeps_the_limit_regime_finite():
    from grpo_proofs.props.reward_scale.model import _representable_eps

    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([p], lr=1e-3, eps=_representable_eps(1e-300, torch.float32))
    p.grad = torch.tensor([0.0, 1e-3, -2.0])
    opt.step()
    assert torch.isfinite(p).all() and p[0] == 0 and torch.allclose(p[1:], torch.tensor([-1e-3, 1e-3]))


def test_tolerances_by_precision():
    assert tolerances.for_precision("model", "float64") == tolerances.MODEL_FLOAT64
    assert tolerances.for_precision("optimizer", "float64") == tolerances.OPTIMIZER_FLOAT64
    for kind in ("model", "optimizer", "trajectory"):
        assert tolerances.for_precision(kind, "float64") < tolerances.for_precision(kind, "float32") \
            < tolerances.for_precision(kind, "bf16")
    with pytest.raises(InputError):
        tolerances.for_precision("model", "fp8")


@pytest.mark.parametrize("precision", ["float32", "bf16"])
def test_gradient_identity_low_precision(precision):
    """Autograd of the batched surrogate vs the derived weights on unpadded forwards, qwen2_small."""
    from grpo_proofs.props.tolerance import gradient_identity

    errs = gradient_identity(model="qwen2_small", precision=precision, seed=1, G=4, max_new_tokens=6,
                             variants=["grpo", "gspo", "cispo"])
    assert max(errs) <= tolerances.for_precision("model", precision)
    assert max(errs) > 1e-9                        # low precision really ran (float64 agrees to ~1e-15)


@pytest.mark.parametrize("precision", ["float32", "bf16"])
def test_claims_on_qwen2_small(precision):
    for label in ("prop3-premise-exact", "prop2-sigma-eps-leak"):
        out = run_claim(label, Context(quick=True, model="qwen2_small", precision=precision))
        assert out.passed, f"{label} [{precision}]: {out.detail}"
        assert out.tolerance == tolerances.for_precision(
            "trajectory" if label.startswith("prop3") else "optimizer", precision)


def test_verify_precision_rows(capsys):
    from grpo_proofs.cli import main

    code = main(["verify", "--quick", "--precision", "float32,bf16", "--model", "qwen2_small",
                 "--only", "prop3-premise-exact,prop7-overshoot-ratio", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "prop3-premise-exact [float32]" in out and "prop3-premise-exact [bf16]" in out
    assert "prop7-overshoot-ratio [" not in out and "prop7-overshoot-ratio" in out   # symbolic: once


def test_verify_cuda_without_cuda_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = subprocess.run([sys.executable, "-m", "grpo_proofs", "verify", "--device", "cuda"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "no CUDA device" in out.stderr


def test_verify_rejects_unknown_precision(capsys):
    from grpo_proofs.cli import main

    assert main(["verify", "--precision", "fp16", "--only", "prop7-overshoot-ratio"]) == 2
    assert "--precision" in capsys.readouterr().err


def test_tolerance_benchmark_smoke():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tolerance.py"), "--device", "cpu",
                          "--precisions", "float32", "--seeds", "1", "--only", "premise-step"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "premise-step" in out.stdout and "recommended" in out.stdout


def test_tolerance_benchmark_refuses_cuda_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tolerance.py"), "--device", "cuda"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
