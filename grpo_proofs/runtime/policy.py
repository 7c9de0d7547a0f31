"""The real policy: a Hugging Face causal transformer with random weights (or a local checkpoint).

Every real-model confirmation of the project runs on a model built here: the prefix bias of
Proposition 1 (arXiv 2601.05002, Sec. 4, App. B.2), the AdamW reward-scale results (Props 2, 5, 6),
momentum overshoot (Props 3, 7), the trainer checks and the GPU training step. Nothing is downloaded:
models are built from a :class:`PolicyConfig` offline, and token ids are plain integers (no tokenizer).

Which architecture for which check
----------------------------------
* ``gpt2`` (presets :meth:`PolicyConfig.tiny`, :meth:`PolicyConfig.small`, float64, CPU): every check
  that must reach ``tolerances.MODEL_FLOAT64`` (1e-10) through the model: the Prop. 1 prefix-gradient
  identity, the AdamW reward-scale invariance (Props 2, 5, 6), the overshoot predictions (Props 3, 7)
  and the exact trainer-weight checks. GPT-2's LayerNorm, attention and MLP all run in the tensor's
  dtype, so a float64 model is float64 end to end: the prefix-gradient identity agrees to ~5e-16
  relative (``tests/test_policy.py`` asserts <= 1e-12).
* ``qwen2`` / ``llama`` (presets :meth:`PolicyConfig.qwen2_small`, :meth:`PolicyConfig.qwen2_0_5b`): the
  realistic shapes for the CUDA runs (the GPU training step, trainer checks at scale) in float32 or
  bf16, with tolerances measured there. In ``transformers`` their RMSNorm upcasts to float32 inside
  ``forward`` even in a float64 model, so float64 identities only hold to ~1e-7 relative (measured
  8e-8 on ``qwen2_small``). ``norm_in_dtype=True`` swaps every RMSNorm for :class:`DtypeRMSNorm`
  (same weights, runs in the tensor's dtype), which restores ~1e-15 (the rotary cos/sin tables stay
  float32-rounded constants: that changes the function, not the precision of its gradients).

Layout: this module builds the model; :mod:`grpo_proofs.runtime.sampling` (groups, forced prefixes),
:mod:`grpo_proofs.runtime.rewards` (reward rules), :mod:`grpo_proofs.runtime.logprobs` (per-token
log-probs) and :mod:`grpo_proofs.runtime.params` (flat parameter/gradient vectors) hold the rest, all
re-exported here.

EOS likelihood
--------------
A random-init LM puts ~1/V on EOS, so lengths would all hit the cap. ``eos_logit_bias = b`` gives the
output layer a bias vector that is b at EOS and 0 elsewhere (an ``nn.Linear`` with bias, sharing the
tied embedding weight): a trainable part of the model's weights, used by sampling and log-probs alike,
so sampled tokens follow exactly the distribution the log-probs score. ``save_pretrained`` keeps the
bias under ``lm_head.bias``; :func:`build_policy` of that folder restores it (a stock
``from_pretrained`` reports it as an unexpected key and drops it).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import torch
from torch import nn

from ..errors import InputError
from .logprobs import completion_logprobs, prefix_logprobs, token_logprobs
from .params import clone_model, copy_state, count_parameters, flat_grad, load_state, param_vector, set_param_vector
from .rewards import REWARD_RULES, answer_count_odd, last_token_even, score, short_is_correct
from .sampling import Group, sample_group

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # nothing is ever downloaded
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__all__ = [
    "PolicyConfig", "build_policy", "completion_logprobs", "token_logprobs", "prefix_logprobs",
    "flat_grad", "param_vector", "set_param_vector", "clone_model", "copy_state", "load_state",
    "count_parameters", "DtypeRMSNorm", "Group", "sample_group", "score", "REWARD_RULES",
    "last_token_even", "answer_count_odd", "short_is_correct",
]

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class PolicyConfig:
    """Shape, precision and seed of a random-init causal LM.

    ``kv_heads`` (grouped-query attention) and ``intermediate`` (MLP width) default to ``heads`` and
    4 * hidden. ``init_std`` is the HF ``initializer_range``. Dropout is always 0, so train mode
    (autograd) and eval mode compute the same function.

    >>> PolicyConfig.tiny().arch, PolicyConfig.qwen2_0_5b().hidden
    ('gpt2', 896)
    """

    arch: Literal["gpt2", "qwen2", "llama"] = "gpt2"
    vocab_size: int = 16
    hidden: int = 32
    layers: int = 2
    heads: int = 2
    kv_heads: int | None = None
    intermediate: int | None = None
    max_positions: int = 64
    seed: int = 0
    dtype: Literal["float64", "float32", "bfloat16"] = "float64"
    device: str = "cpu"
    eos_token_id: int = 0
    eos_logit_bias: float = 0.0
    init_std: float = 0.02
    tie_embeddings: bool = True
    norm_in_dtype: bool = False
    rope_theta: float = 10000.0

    def __post_init__(self):
        def bad(msg):
            raise InputError(f"PolicyConfig: {msg}")
        if self.arch not in ("gpt2", "qwen2", "llama"):
            bad(f"arch must be 'gpt2', 'qwen2' or 'llama', got {self.arch!r}")
        if self.dtype not in _DTYPES:
            bad(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            bad(f"device must be 'cpu' or 'cuda[:n]', got {self.device!r}")
        for name in ("vocab_size", "hidden", "layers", "heads", "max_positions"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(f"{name} must be a positive integer, got {v!r}")
        if self.hidden % self.heads:
            bad(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.kv_heads is not None and (self.kv_heads < 1 or self.heads % self.kv_heads):
            bad(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.arch == "gpt2" and self.kv_heads not in (None, self.heads):
            bad("gpt2 has no grouped-query attention; leave kv_heads unset")
        if self.arch == "gpt2" and self.norm_in_dtype:
            bad("norm_in_dtype applies to qwen2/llama (gpt2's LayerNorm already runs in the tensor dtype)")
        if not 0 <= self.eos_token_id < self.vocab_size:
            bad(f"eos_token_id must be in [0, {self.vocab_size}), got {self.eos_token_id}")
        if not (math.isfinite(self.eos_logit_bias) and math.isfinite(self.init_std) and self.init_std > 0):
            bad("eos_logit_bias must be finite and init_std finite and > 0")

    @classmethod
    def tiny(cls, **overrides) -> PolicyConfig:
        """CPU tests: GPT-2 blocks, 2 layers, hidden 32, vocab 16, float64; builds in milliseconds.

        init_std 0.1 makes next-token distributions context dependent (mean entropy ~2.5 nats of
        log 16 = 2.77); with eos_logit_bias 1, P(EOS) is ~0.12 per token (std ~0.07 across contexts).
        """
        return replace(cls(arch="gpt2", vocab_size=16, hidden=32, layers=2, heads=2, max_positions=64,
                           eos_logit_bias=1.0, init_std=0.1), **overrides)

    @classmethod
    def small(cls, **overrides) -> PolicyConfig:
        """CPU default of ``verify``: GPT-2 blocks, 4 layers, hidden 64, vocab 64, float64 (P(EOS) ~ 0.1)."""
        return replace(cls(arch="gpt2", vocab_size=64, hidden=64, layers=4, heads=4, max_positions=128,
                           eos_logit_bias=3.0, init_std=0.1), **overrides)

    @classmethod
    def qwen2_small(cls, **overrides) -> PolicyConfig:
        """Qwen2 blocks (GQA, RMSNorm, rotary, SwiGLU) at toy size: 2 layers, hidden 64, 4 heads, 2 KV heads."""
        return replace(cls(arch="qwen2", vocab_size=64, hidden=64, layers=2, heads=4, kv_heads=2,
                           intermediate=128, max_positions=128, eos_logit_bias=3.0, init_std=0.1), **overrides)

    @classmethod
    def qwen2_0_5b(cls, **overrides) -> PolicyConfig:
        """The Qwen2-0.5B shape (CUDA only): hidden 896, 24 layers, 14 heads, 2 KV heads, MLP 4864,
        vocab 151936, tied embeddings, rope theta 1e6, EOS 151643; ~494M parameters, float32.

        eos_logit_bias 9 gives P(EOS) ~ e^9/(e^9 + 151935 e^0.18) = 0.043 per token at random init
        (measured 0.043; 0.18 = logsumexp excess of the N(0, 0.6^2) random logits). Weights are
        drawn on CPU (measured ~17 s on a loaded 2-core CPU), then moved to the device.
        """
        return replace(cls(arch="qwen2", vocab_size=151936, hidden=896, layers=24, heads=14, kv_heads=2,
                           intermediate=4864, max_positions=32768, dtype="float32", device="cuda",
                           eos_token_id=151643, eos_logit_bias=9.0, rope_theta=1e6), **overrides)

    def hf_config(self):
        """The ``transformers`` config object this spec builds (dropout 0)."""
        from transformers import GPT2Config, LlamaConfig, Qwen2Config
        common = dict(vocab_size=self.vocab_size, eos_token_id=self.eos_token_id,
                      bos_token_id=self.eos_token_id, pad_token_id=self.eos_token_id,
                      initializer_range=self.init_std, tie_word_embeddings=self.tie_embeddings)
        if self.arch == "gpt2":
            return GPT2Config(n_embd=self.hidden, n_layer=self.layers, n_head=self.heads,
                              n_positions=self.max_positions, n_inner=self.intermediate,
                              resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)
        cls = Qwen2Config if self.arch == "qwen2" else LlamaConfig
        return cls(hidden_size=self.hidden, num_hidden_layers=self.layers, num_attention_heads=self.heads,
                   num_key_value_heads=self.kv_heads or self.heads,
                   intermediate_size=self.intermediate or 4 * self.hidden,
                   max_position_embeddings=self.max_positions, attention_dropout=0.0,
                   rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta}, **common)


class DtypeRMSNorm(nn.Module):
    """RMSNorm computed in the input's dtype: y = w * x / sqrt(mean(x^2) + eps) (no float32 upcast)."""

    def __init__(self, weight: nn.Parameter, eps: float):
        super().__init__()
        self.weight, self.variance_epsilon = weight, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


def _swap_norms(model: nn.Module) -> None:
    for name, mod in list(model.named_modules()):
        if type(mod).__name__.endswith("RMSNorm") and not isinstance(mod, DtypeRMSNorm):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], DtypeRMSNorm(mod.weight, mod.variance_epsilon))


def _add_head_bias(model: nn.Module, bias: torch.Tensor) -> None:
    old = model.get_output_embeddings()
    head = nn.Linear(old.in_features, old.out_features, bias=True, dtype=old.weight.dtype)
    head.weight = old.weight                                    # keeps the embedding tie
    with torch.no_grad():
        head.bias.copy_(bias)
    model.set_output_embeddings(head)


def _saved_head_bias(path: str) -> torch.Tensor | None:
    """``lm_head.bias`` from a folder written by ``save_pretrained`` of a model with an EOS bias."""
    from safetensors import safe_open
    for name in sorted(os.listdir(path)):
        if name.endswith(".safetensors"):
            with safe_open(os.path.join(path, name), framework="pt") as f:
                if "lm_head.bias" in f.keys():
                    return f.get_tensor("lm_head.bias")
    return None


def _check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked but CUDA is not available; use device='cpu'")


def _finish(model: nn.Module, dtype: str, device: str) -> nn.Module:
    for mod in model.modules():                                 # dropout 0: train == eval
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
        if isinstance(getattr(mod, "attention_dropout", None), float):
            mod.attention_dropout = 0.0
    return model.to(device=device, dtype=_DTYPES[dtype]).train()


@lru_cache(maxsize=2)
def _initial_model(cfg: PolicyConfig) -> nn.Module:
    """The random-init float32 CPU model of ``cfg``, built once (every build of a config copies it)."""
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = AutoModelForCausalLM.from_config(cfg.hf_config(), dtype=torch.float32)
    if cfg.norm_in_dtype:
        _swap_norms(model)
    if cfg.eos_logit_bias:
        bias = torch.zeros(cfg.vocab_size)
        bias[cfg.eos_token_id] = cfg.eos_logit_bias
        _add_head_bias(model, bias)
    return model


def build_policy(config_or_path: PolicyConfig | str | os.PathLike, *, dtype: str | None = None,
                 device: str | None = None) -> nn.Module:
    """Build a causal LM in train mode (dropout 0) with the requested dtype and device.

    Args:
        config_or_path: a :class:`PolicyConfig` (random init: weights drawn in float32 on CPU from
            ``seed``, so every dtype/device gets the same weights up to rounding), or a local
            checkpoint folder (``from_pretrained(path, local_files_only=True)``).
        dtype, device: override the config's (for a path: default ``"float64"`` and ``"cpu"``).

    >>> m = build_policy(PolicyConfig.tiny())
    >>> m.lm_head.bias[0].item(), next(m.parameters()).dtype, m.training
    (1.0, torch.float64, True)
    """
    from transformers import AutoModelForCausalLM
    if isinstance(config_or_path, PolicyConfig):
        cfg = replace(config_or_path, **{k: v for k, v in (("dtype", dtype), ("device", device)) if v})
        _check_device(cfg.device)
        return _finish(copy.deepcopy(_initial_model(replace(cfg, dtype="float32", device="cpu"))), cfg.dtype, cfg.device)
    if not isinstance(config_or_path, (str, os.PathLike)):
        raise InputError(f"build_policy needs a PolicyConfig or a checkpoint path, got {type(config_or_path).__name__}")
    path, dtype, device = os.fspath(config_or_path), dtype or "float64", device or "cpu"
    if dtype not in _DTYPES:
        raise InputError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if not os.path.isdir(path):
        raise InputError(f"checkpoint folder {path!r} does not exist; give a local folder with config.json")
    _check_device(device)
    from transformers.utils import logging as hf_logging
    bias = _saved_head_bias(path)
    level = hf_logging.get_verbosity()
    if bias is not None:                   # the stock loader would report lm_head.bias as unexpected
        hf_logging.set_verbosity_error()
    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=_DTYPES[dtype])
    except (OSError, ValueError) as e:
        raise InputError(f"cannot load a causal LM from {path!r}: {str(e).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(level)
    if bias is not None and getattr(model.get_output_embeddings(), "bias", None) is None:
        _add_head_bias(model, bias)
    return _finish(model, dtype, device)
