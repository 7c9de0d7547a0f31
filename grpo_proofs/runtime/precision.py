"""Where and in which arithmetic a real-model confirmation runs: model preset, precision, tolerance.

Every real-model confirmation (Props 1, 2, 3/7 of arXiv 2601.05002 on a transformer policy) compares
two independent computations. The arithmetic they run in is one of :data:`PRECISIONS`:

* ``float64``: weights, activations and optimizer state in float64 (the CPU default; Qwen2 presets get
  ``norm_in_dtype=True`` so that their RMSNorm does not round to float32);
* ``float32``: everything in float32 (the CUDA default);
* ``bf16``: bf16 autocast for the forward pass with float32 master weights, float32 gradients and
  float32 optimizer state (what mixed-precision trainers run); logits are returned in float32.

The model is a :class:`~grpo_proofs.runtime.policy.PolicyConfig` preset named in :data:`MODELS`. With no name
given, each confirmation keeps its own CPU preset (the float64 GPT-2 ``tiny``/``small``) on the CPU and
uses the Qwen2-0.5B shape on CUDA; that shape always runs at the realistic batch of :data:`REALISTIC`
(G = 16 completions of up to 1024 tokens). A check's tolerance comes from
:func:`grpo_proofs.checking.tolerances.for_precision` by the precision it ran in.

>>> resolve_precision(None, "cpu"), resolve_precision(None, "cuda"), resolve_precision("bf16", "cpu")
('float64', 'float32', 'bf16')
>>> policy_config(None, "float32", "cpu", default="tiny").dtype
'float32'
>>> policy_config("qwen2_small", "float64", "cpu", default="tiny").norm_in_dtype
True
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..errors import InputError
from .params import count_parameters
from .choices import MODEL_NAMES, PRECISIONS
from .policy import PolicyConfig, build_policy

__all__ = ["PRECISIONS", "MODELS", "REALISTIC", "REALISTIC_MODEL", "MAX_RECORDED", "resolve_precision",
           "resolve_model", "master_dtype", "policy_config", "group_shape", "build", "autocast_forward",
           "recorded_coordinates", "recorded_index", "take_recorded", "device_type"]

#: the model presets a context may name (their names: :data:`grpo_proofs.runtime.choices.MODEL_NAMES`)
MODELS = {name: getattr(PolicyConfig, name) for name in MODEL_NAMES}
#: the default model on CUDA
REALISTIC_MODEL = "qwen2_0_5b"
#: group shape every confirmation uses on the realistic model: G completions, at most this many new tokens
REALISTIC = {"G": 16, "max_new_tokens": 1024}
#: vectors over all parameters (steps, gradients, v_hat) are recorded on at most this many coordinates
#: (a fixed random subset; Adam is elementwise, so a subset changes no arithmetic): 494M-parameter
#: records per step and configuration would need hundreds of GiB
MAX_RECORDED = 2_000_000


def resolve_precision(precision: str | None, device: str) -> str:
    """The precision a context runs in: ``None`` means float64 on the CPU and float32 on CUDA."""
    if precision is None:
        return "float32" if device.startswith("cuda") else "float64"
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def resolve_model(model: str | None, device: str, default: str) -> str:
    """The preset a check runs: ``model`` if named, else ``default`` on the CPU and Qwen2-0.5B on CUDA."""
    if model is None:
        return REALISTIC_MODEL if device.startswith("cuda") else default
    if model not in MODELS:
        raise InputError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    return model


def master_dtype(precision: str) -> str:
    """dtype of the weights, gradients and optimizer state: float64, or float32 (float32 and bf16)."""
    return "float64" if resolve_precision(precision, "cpu") == "float64" else "float32"


def policy_config(model: str | None, precision: str | None, device: str, *, default: str,
                  **overrides) -> PolicyConfig:
    """The :class:`PolicyConfig` of a check: preset, master dtype, device, ``overrides`` (e.g. seed)."""
    name = resolve_model(model, device, default)
    dtype = master_dtype(resolve_precision(precision, device))
    cfg = MODELS[name](**overrides)
    extra = {"norm_in_dtype": True} if dtype == "float64" and cfg.arch != "gpt2" else {}
    return replace(cfg, dtype=dtype, device=device, **extra)


def group_shape(model: str | None, device: str, default: str, G: int, max_new_tokens: int) -> tuple[int, int]:
    """(G, max_new_tokens): the realistic shape on the Qwen2-0.5B preset, the check's own otherwise."""
    if resolve_model(model, device, default) == REALISTIC_MODEL:
        return REALISTIC["G"], REALISTIC["max_new_tokens"]
    return G, max_new_tokens


def device_type(device: str) -> str:
    """``"cuda"`` for ``cuda[:n]``, else ``"cpu"`` (what :class:`torch.autocast` takes)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


class _Autocast:
    """Forward pre-/post-hooks running a module's forward under bf16 autocast, logits upcast to float32."""

    def __init__(self, device: str):
        self.device = device_type(device)
        self.active: list = []

    def enter(self, module, args):
        ctx = torch.autocast(self.device, dtype=torch.bfloat16)
        ctx.__enter__()
        self.active.append(ctx)

    def exit(self, module, args, output):
        self.active.pop().__exit__(None, None, None)
        logits = getattr(output, "logits", None)
        if isinstance(logits, torch.Tensor) and logits.dtype == torch.bfloat16:
            output.logits = logits.float()
        return output


def autocast_forward(model: nn.Module) -> nn.Module:
    """Make ``model``'s forward run in bf16 autocast (weights stay in their dtype), in place.

    Installed as forward hooks, so the model keeps its class (``generate``, ``config``, tied weights)
    and :func:`~grpo_proofs.runtime.policy.clone_model` copies the behaviour. Backward runs outside the
    autocast region, as in a mixed-precision trainer.

    >>> m = autocast_forward(build_policy(PolicyConfig.tiny(dtype="float32")))
    >>> m(input_ids=torch.tensor([[1, 2]])).logits.dtype, next(m.parameters()).dtype
    (torch.float32, torch.float32)
    """
    hooks = _Autocast(next(model.parameters()).device.type)
    model.register_forward_pre_hook(hooks.enter)
    model.register_forward_hook(hooks.exit, always_call=True)
    return model


def build(config: PolicyConfig, precision: str | None = None) -> nn.Module:
    """:func:`~grpo_proofs.runtime.policy.build_policy` in the master dtype of ``precision``, with bf16 autocast
    hooks when ``precision == "bf16"``."""
    p = resolve_precision(precision, config.device)
    model = build_policy(config, dtype=master_dtype(p))
    return autocast_forward(model) if p == "bf16" else model


def recorded_coordinates(n_params: int, seed: int = 0, limit: int | None = None) -> torch.Tensor | None:
    """``None`` (record every coordinate) when ``n_params <= limit`` (default :data:`MAX_RECORDED`), else
    ``limit`` distinct random indices in increasing order, drawn from ``seed``.

    >>> recorded_coordinates(10) is None
    True
    >>> idx = recorded_coordinates(10, limit=4)
    >>> len(idx), bool((idx[1:] > idx[:-1]).all())
    (4, True)
    """
    limit = MAX_RECORDED if limit is None else limit
    if n_params <= limit:
        return None
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n_params, generator=gen)[:limit].sort().values


def recorded_index(model, seed: int):
    """Coordinates recorded in parameter and gradient vectors (None: all; a subset on large models)."""
    idx = recorded_coordinates(count_parameters(model), seed)
    return None if idx is None else idx.to(next(model.parameters()).device)


def take_recorded(vec: torch.Tensor, idx) -> torch.Tensor:
    """``vec`` on the recorded coordinates ``idx`` (all of it when ``idx`` is None)."""
    return vec if idx is None else vec[idx]
