"""Flat views of a model's parameters and gradients, and state copies (for optimizer experiments).

All functions walk ``model.parameters()``, in which tied weights (embedding = output layer) appear
once, so ``flat_grad(model)`` and ``param_vector(model)`` are aligned vectors of length
``count_parameters(model)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import InputError

__all__ = ["flat_grad", "param_vector", "set_param_vector", "count_parameters", "clone_model",
           "copy_state", "load_state"]


def _params(model: nn.Module) -> list[nn.Parameter]:
    return list(model.parameters())                  # tied parameters appear once


def flat_grad(model: nn.Module) -> torch.Tensor:
    """All parameters' ``.grad`` concatenated in ``model.parameters()`` order (zeros where None)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in _params(model)])


def param_vector(model: nn.Module) -> torch.Tensor:
    """All parameters concatenated (a detached copy), same order as :func:`flat_grad`."""
    return torch.cat([p.detach().reshape(-1) for p in _params(model)]).clone()


def set_param_vector(model: nn.Module, vec: torch.Tensor) -> None:
    """Write a vector from :func:`param_vector` back into the parameters (in place)."""
    n = count_parameters(model)
    if vec.numel() != n:
        raise InputError(f"vector has {vec.numel()} entries, the model has {n} parameters")
    with torch.no_grad():
        i = 0
        for p in _params(model):
            p.copy_(vec[i:i + p.numel()].view_as(p))
            i += p.numel()


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (tied weights counted once).

    GPT-2 ``tiny`` (V=16, d=32, 2 layers, 64 positions, MLP 4d, EOS bias): embeddings V*d + 64*d,
    per layer 2*2d (norms) + d*3d+3d (qkv) + d*d+d (proj) + d*4d+4d + 4d*d+d (MLP), final norm 2d,
    output bias V.

    >>> from grpo_proofs.runtime.policy import PolicyConfig, build_policy
    >>> d, V = 32, 16
    >>> layer = 4*d + (3*d*d + 3*d) + (d*d + d) + (4*d*d + 4*d) + (4*d*d + d)
    >>> count_parameters(build_policy(PolicyConfig.tiny())) == V*d + 64*d + 2*layer + 2*d + V
    True
    """
    return sum(p.numel() for p in _params(model))


def clone_model(model: nn.Module) -> nn.Module:
    """An independent deep copy (weights, ties, dtype, device, mode)."""
    return copy.deepcopy(model)


def copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the state dict (restore with :func:`load_state`)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def load_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Restore a state from :func:`copy_state` in place."""
    model.load_state_dict(state)
