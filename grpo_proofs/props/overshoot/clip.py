"""Where a real run stands against the clip: the ratio the clip acts on, the tokens on the clipped branch and
how far past the bound they are, and the loss -J the runs minimise."""

from __future__ import annotations

import torch

from ...errors import InputError
from ...terms import past_clip
from ...variants import Ratio, Surrogate, Variant

__all__ = ["negated_surrogate", "clip_ratio", "forbidden"]


def negated_surrogate(v: Variant):
    """-J of a group: the project's surrogate (:func:`grpo_proofs.evaluate.torch_surrogate`, SymPy
    compiled to Torch)."""
    from ...evaluate import torch_surrogate

    return lambda lp, old, r, mask: -torch_surrogate(v, lp, old, r, mask)


def clip_ratio(v: Variant, logp: torch.Tensor, old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The ratio the clip acts on, per token (G, T): token ratio, or the sequence ratio broadcast."""
    x = (logp - old) * mask
    if v.ratio == Ratio.SEQ_GEOMEAN:
        x = (x.sum(1, keepdim=True) / mask.sum(1, keepdim=True)).expand_as(x)
    elif v.ratio == Ratio.SEQ_PRODUCT:
        x = x.sum(1, keepdim=True).expand_as(x)
    return torch.exp(x)


def forbidden(v: Variant, s: torch.Tensor, A: torch.Tensor, mask: torch.Tensor,
              old: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(bool (G, T): token on the side clipping should forbid, excursion past that bound (>= 0)).

    Later terms: CFPO's bound is its restoring point (the same 1 +- eps); UP bounds the negative side
    only; DPPO's is p - p_old beyond +-delta_tv (needs ``old``, log pi_old; the excursion is then in
    probability units); TOPR and VESPO have no bound (nothing is forbidden).

    >>> from grpo_proofs.variants import get_variant
    >>> v = get_variant("grpo")                      # clip 0.2 on both sides
    >>> s = torch.tensor([[1.5, 1.0], [0.5, 1.5]]); A = torch.tensor([1.0, -1.0]); mask = torch.ones(2, 2)
    >>> bad, exc = forbidden(v, s, A, mask)
    >>> bad.tolist(), [round(x, 6) for x in exc.flatten().tolist()]
    ([[True, False], [True, False]], [0.3, 0.0, 0.3, 0.0])
    """
    A = A[:, None].expand_as(s)
    on = mask > 0
    if v.needs_old_logp:  # DPPO: p - p_old = p_old (s - 1) against +-delta_tv
        if old is None:
            raise InputError(f"variant {v.name!r}: the forbidden side needs log pi_old")
        dp = torch.exp(old) * (s - 1)
        up, low = dp - v.phi_params["delta_tv"], -v.phi_params["delta_tv"] - dp
        bad = (((A > 0) & (up > 0)) | ((A < 0) & (low > 0))) & on
    else:
        bad = past_clip(v, s, A) & on
        if v.surrogate is Surrogate.UP:  # A > 0 is REINFORCE there: no upper bound
            bad = bad & (A < 0)
        up = s - (1 + v.eps_up) if v.eps_up is not None else torch.zeros_like(s)
        low = (1 - v.eps_low) - s if v.eps_low is not None else torch.zeros_like(s)
    return bad, torch.where(bad, torch.where(A > 0, up, low), torch.zeros_like(s))
