"""Every real-model confirmation on CUDA, in float32 and in bf16 autocast (float32 master weights).

All tests here carry ``@pytest.mark.gpu`` and are skipped without CUDA (``tests/conftest.py``). The
per-claim tests use the ``qwen2_small`` preset (seconds each); ``test_realistic_shape`` runs two
confirmations on the Qwen2-0.5B shape at G = 16, completions up to 1024 tokens (what
``grpo-proofs verify --device cuda`` runs for every claim). Tolerances come from
:func:`grpo_proofs.checking.tolerances.for_precision` by precision, as in the claims themselves.
"""

import pytest
import torch

from grpo_proofs.checking import tolerances
from grpo_proofs.checking import Context, all_claims, run_claim

MODEL_CLAIMS = sorted(label for label, c in all_claims().items() if c.kind == "model")

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("label", MODEL_CLAIMS)
def test_model_claim_on_cuda(label, precision):
    out = run_claim(label, Context(device="cuda", quick=True, precision=precision, model="qwen2_small"))
    assert out.passed, f"{label} [{precision}] on CUDA: error {out.error:.3e} > {out.tolerance:.1e}: {out.detail}"


@pytest.mark.parametrize("label", ["prop3-premise-exact", "prop2-adam-invariance"])
def test_realistic_shape(label):
    for precision in ("float32", "bf16"):
        out = run_claim(label, Context(device="cuda", quick=True, precision=precision))
        assert out.passed, f"{label} [{precision}] on the Qwen2-0.5B shape: {out.detail}"


@pytest.mark.parametrize("precision", ["float64", "float32", "bf16"])
def test_gradient_identity_on_cuda(precision):
    from grpo_proofs.props.tolerance import gradient_identity

    errs = gradient_identity(model="qwen2_small", precision=precision, device="cuda", seed=0,
                             variants=["grpo", "dr_grpo", "gspo"])
    assert max(errs) <= tolerances.for_precision("model", precision)


def test_bf16_autocast_runs_bf16_matmuls_on_cuda():
    from grpo_proofs.runtime.policy import PolicyConfig
    from grpo_proofs.runtime.precision import build

    cfg = PolicyConfig.qwen2_small(dtype="float32", device="cuda")
    m32, m16 = build(cfg, "float32"), build(cfg, "bf16")
    ids = torch.tensor([[1, 2, 3, 4, 5]], device="cuda")
    with torch.no_grad():
        a, b = m32(input_ids=ids).logits, m16(input_ids=ids).logits
    assert b.dtype == torch.float32 and next(m16.parameters()).dtype == torch.float32
    rel = float((a - b).abs().max() / a.abs().max())
    assert 1e-5 < rel < 0.1                       # bf16 rounding, not float32, and not garbage


def test_verify_cuda_quick_precision_rows(capsys):
    from grpo_proofs.cli import main

    code = main(["verify", "--device", "cuda", "--quick", "--model", "qwen2_small", "--only", "prop3-premise-exact"])
    out = capsys.readouterr().out
    assert code == 0 and "prop3-premise-exact [float32]" in out and "prop3-premise-exact [bf16]" in out
