"""What a real-model check may be asked to run with, and the one refusal of a CUDA device that is not there.

Importing this module loads no Torch: the command line checks its flags against these names before
any model is built (the presets themselves are :data:`grpo_proofs.runtime.precision.MODELS`).

>>> PRECISIONS, MODEL_NAMES[-1]
(('float64', 'float32', 'bf16'), 'qwen2_0_5b')
>>> require_cuda("cpu")   # nothing to refuse
"""

from __future__ import annotations

from ..errors import InputError

__all__ = ["PRECISIONS", "MODEL_NAMES", "SCALE_OPTIMIZERS", "OVERSHOOT_OPTIMIZERS", "MITIGATIONS", "require_cuda"]

#: the arithmetic a confirmation can run in (``bf16`` = bf16 autocast, float32 master weights)
PRECISIONS = ("float64", "float32", "bf16")
#: the policy presets a check may name (:class:`grpo_proofs.runtime.policy.PolicyConfig` constructors)
MODEL_NAMES = ("tiny", "small", "qwen2_small", "qwen2_0_5b")
#: the optimizers of the reward-scale runs (``grpo-proofs scale --optimizer``; torch.optim.Adam and AdamW)
SCALE_OPTIMIZERS = ("adam", "adamw")
#: the optimizers and mitigations of the overshoot runs (``grpo-proofs overshoot --simulate``)
OVERSHOOT_OPTIMIZERS = ("adam", "sgd", "sgd-momentum")
MITIGATIONS = ("none", "mu1", "reset", "adam-rel")


def require_cuda(device: str, *, flag: bool = False) -> None:
    """Refuse a ``cuda`` device on a machine without CUDA, in one line; ``flag``: word it as the ``--device`` flag."""
    if not device.startswith("cuda"):
        return
    import torch

    if torch.cuda.is_available():
        return
    if flag:
        raise InputError("--device cuda was asked for but this machine has no CUDA device; use --device cpu")
    raise InputError(f"device {device!r} asked but CUDA is not available; use device='cpu'")
