"""verl 0.9.1's actor loss: ``agg_loss``, ``kl_penalty`` and the registered policy losses.

The model of ``verl/trainer/ppo/core_algos.py`` as ``verl/workers/utils/losses.py::ppo_loss``
calls it from the engine workers; :mod:`grpo_proofs.trainers.verl` documents the normalisers
(B rows and N active tokens of the mini-batch, C of seq-mean-token-sum-norm) and the config.

>>> import torch
>>> m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
>>> float(agg_loss(torch.ones(2, 3, dtype=torch.float64), m, "seq-mean-token-sum", B=2.0, N=3.0, C=3))
1.5
"""

from __future__ import annotations

import numpy as np

from ._common import Batch, accumulate

__all__ = ["agg_loss", "kl_penalty", "loss_and_grad"]


def agg_loss(loss_mat, m, mode, *, B, N, C):
    """verl ``agg_loss`` with the global batch info of the mini-batch (dp_size = 1)."""
    if mode == "token-mean":
        return (loss_mat * m).sum() / N
    if mode == "token-sum":
        return (loss_mat * m).sum()
    if mode in ("seq-mean-token-sum", "seq-mean-token-sum-norm"):
        seq = (loss_mat * m).sum(-1)
        out = (seq * (m.sum(-1) > 0).to(seq.dtype)).sum() / B
        return out / C if mode == "seq-mean-token-sum-norm" else out
    cnt = m.sum(-1)  # seq-mean-token-mean: count + 1e-8 rounds to the count in float32 (module doc)
    seq = (loss_mat * m).sum(-1) / cnt.clamp(min=1.0)
    return (seq * (cnt > 0).to(seq.dtype)).sum() / B


def kl_penalty(logp, ref, kind):
    """verl ``kl_penalty``: base estimator value; with '+' its value and the k2 gradient."""
    import torch
    base = kind[:-1] if kind.endswith("+") else kind
    if base in ("kl", "k1"):
        fwd = logp - ref
    elif base == "abs":
        fwd = (logp - ref).abs()
    elif base in ("mse", "k2"):
        fwd = 0.5 * (logp - ref).square()
    else:  # low_var_kl / k3
        x = torch.clamp(ref - logp, min=-20, max=20)
        fwd = torch.clamp(torch.exp(x) - x - 1, min=-10, max=10)
    if not kind.endswith("+") or base in ("mse", "k2"):
        return fwd
    back = 0.5 * (logp - ref).square()
    return back - back.detach() + fwd.detach()


def _policy(c, mode, logp, old, A, m, agg):
    import torch
    lo, hi = c["_eps_low"], c["_eps_high"]
    if mode in ("vanilla", "cispo", "sapo"):
        ratio = torch.exp(torch.clamp(logp - old, min=-20.0, max=20.0))
    if mode == "vanilla":
        l1, l2 = -A * ratio, -A * torch.clamp(ratio, 1 - lo, 1 + hi)
        c1 = torch.maximum(l1, l2)
        c2 = torch.min(-A * c["clip_ratio_c"], c1)
        return agg(torch.where(A < 0, c2, c1), c["loss_agg_mode"])
    if mode == "gspo":
        nak = logp - old
        seq = (nak * m).sum(-1) / m.sum(-1).clamp(min=1)
        s = torch.exp(torch.clamp(logp - logp.detach() + seq.detach().unsqueeze(-1), max=10.0))
        pg = torch.maximum(-A * s, -A * torch.clamp(s, 1 - lo, 1 + hi))
        return agg(pg, c["loss_agg_mode"])
    if mode == "sapo":
        tau = torch.where(A > 0, torch.tensor(c["tau_pos"], dtype=A.dtype), torch.tensor(c["tau_neg"], dtype=A.dtype))
        return agg(-torch.sigmoid(tau * (ratio - 1.0)) * (4.0 / tau) * A, "seq-mean-token-mean")
    if mode == "gpg":
        return agg(-logp * A, c["loss_agg_mode"])
    if mode == "cispo":
        w = torch.clamp(ratio, 1 - lo, 1 + hi).detach()
        return agg(-w * A * logp, c["loss_agg_mode"])
    # geo_mean (GMPO): sign-aware clip in log space, geometric mean per sequence, torch.mean over rows
    nak = logp - old
    sgn = torch.sign(A)
    nak_min = sgn * torch.min(sgn * nak, sgn * torch.clamp(nak, -lo, hi))
    msum = m.sum(-1).clamp(min=1.0)  # count + 1e-8 in float32 (module doc)
    ratio = torch.exp((nak_min * m).sum(-1) / msum)
    adv = (A * m).sum(-1) / msum
    return torch.mean(-adv * ratio)


def loss_and_grad(c: dict, bt: Batch) -> tuple[float, np.ndarray]:
    """verl's actor loss for one mini-batch (sum of its micro-batch losses) and d loss / d logp."""
    import torch
    B = float(bt.mask.shape[0])  # global_batch_size = ppo_mini_batch_size * rollout.n: every row
    N = bt.mask.sum()  # batch_num_tokens of the mini-batch
    mode = c["policy_loss.loss_mode"]

    def micro(rows, k):
        logp, old, m = bt.logp[rows], bt.old[rows], bt.mask[rows]
        A = bt.adv[rows] if bt.adv.ndim == 2 else bt.adv[rows].unsqueeze(1) * m  # verl's (b, T) A_i m_{i,t}
        C = c["loss_scale_factor"]
        if C is None:  # padded width of this micro-batch's response tensor
            C = bt.max_completion_length or max(int(torch.nonzero(m.sum(0)).max()) + 1 if m.sum() > 0 else 1, 1)

        def agg(mat, how):
            return agg_loss(mat, m, how, B=B, N=N, C=C)

        out = _policy(c, mode, logp, old, A, m, agg)
        if c["use_kl_loss"]:
            out = out + agg(kl_penalty(logp, bt.ref[rows], c["kl_loss_type"]), c["loss_agg_mode"]) * c["kl_loss_coef"]
        return out

    return accumulate(bt, micro)
