"""One optimizer step of a live ``GRPOTrainer``, measured: the batches it built, its own loss, Adam's state.

:class:`StepAudit` keeps what the trainer computed for each micro-batch of the step (the slice of
the buffered generation batch, the per-token log-probs of its own forward, the loss it returned)
and, once the optimizer has stepped, computes the ``proofs/`` metrics of :mod:`.measures`:

* the trainer's side, from ``GRPOTrainer._compute_loss`` itself (:mod:`.trainer_loss`): the gradient
  at the step's log-probs, its KL part (advantages set to 0), and the per-token weight (the gradient
  at r = 1 with advantages set to 1 and the reference log-probs at the policy's);
* the project's side, :func:`grpo_proofs.trainers.mapped_gradient` of the config the trainer runs
  (the mapped Table 1 formula), at the same two points.

Everything is read from detached float64 copies; see :mod:`.trainer_loss` for why the trainer's
training is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..trainers import mapped_gradient
from .measures import (PPO_LOSSES, OvershootTracker, clip_masks, clip_metrics, loss_metrics, prefix_metrics,
                       scale_metrics, weight_metrics)
from .trainer_loss import trainer_loss_and_grad

__all__ = ["GenerationBatch", "StepAudit", "as_numpy"]


def as_numpy(t) -> np.ndarray:
    """A detached float64 numpy copy of a tensor."""
    import torch

    return t.detach().to("cpu", torch.float64).numpy().copy()


@dataclass
class GenerationBatch:
    """The trainer's buffered generation batch (its ``steps_per_generation`` slices), as float64 arrays."""

    slices: list
    rows: int            # rows per slice
    mask: np.ndarray     # (B, T) completion mask (times the tool mask)
    ids: np.ndarray      # (B, T) completion token ids
    A: np.ndarray        # (B,) advantages
    old: np.ndarray | None
    keys: list           # per row: the prompt's tokens (rows with the same key answer the same prompt)

    @classmethod
    def of(cls, slices: list) -> "GenerationBatch":
        import torch

        def cat(key):
            return torch.cat([s[key] for s in slices]) if key in slices[0] else None

        mask = cat("completion_mask")
        if "tool_mask" in slices[0]:
            mask = mask * cat("tool_mask")
        pids, pmask = cat("prompt_ids").cpu().numpy(), cat("prompt_mask").cpu().numpy()
        old = cat("old_per_token_logps")
        return cls(slices, int(slices[0]["completion_ids"].shape[0]), as_numpy(mask),
                   cat("completion_ids").cpu().numpy(), as_numpy(cat("advantages")).reshape(-1),
                   None if old is None else as_numpy(old),
                   [tuple(p[m > 0].tolist()) for p, m in zip(pids, pmask)])


class StepAudit:
    """The measurements of each optimizer step (see the module doc).

    Args:
        trainer: the ``trl.GRPOTrainer``.
        config: the config the trainer runs, in :mod:`grpo_proofs.trainers` keys (``version`` included).
        optimizer: the torch Adam/AdamW the trainer steps.
        phi: the reward (gradient) scale of the ``scale_*`` metrics.
    """

    def __init__(self, trainer, config: dict, optimizer, phi: float):
        self.trainer, self.config, self.optimizer, self.phi = trainer, config, optimizer, phi
        self.micro: list = []
        self.batch: GenerationBatch | None = None
        self.tracker = OvershootTracker()
        self.ppo = config["loss_type"] in PPO_LOSSES
        self.eps = (float(config["epsilon"]),
                    float(config["epsilon"] if config["epsilon_high"] is None else config["epsilon_high"]))

    def record(self, slice_index: int, logps, loss) -> None:
        """One micro-batch the trainer just computed: its slice, per-token log-probs (a copy), its loss."""
        self.micro.append((slice_index, as_numpy(logps), float(loss.detach().to("cpu").double())))

    def _batch(self) -> GenerationBatch:
        slices = self.trainer._buffered_inputs
        if self.batch is None or self.batch.slices is not slices:
            self.batch = GenerationBatch.of(slices)
        return self.batch

    def _adam(self) -> tuple[int, float, tuple[float, float]]:
        """(step counter, learning rate of the step just taken, betas) of the optimizer."""
        group = self.optimizer.param_groups[0]
        betas, lr = tuple(float(b) for b in group["betas"]), float(group["lr"])
        for p in group["params"]:
            st = self.optimizer.state.get(p)
            if st and "step" in st:
                return int(float(st["step"])), lr, betas
        return 0, lr, betas

    def measure(self) -> dict:
        """The ``proofs/`` metrics of the step just taken (call after ``optimizer.step()``)."""
        micro, self.micro = self.micro, []
        if not micro:
            return {}
        gb, tr, c = self._batch(), self.trainer, self.config
        b = gb.rows
        idx = [s for s, _, _ in micro]
        row_sets = [np.arange(s * b, (s + 1) * b) for s in idx]
        rows = np.concatenate(row_sets)
        LP = np.zeros_like(gb.mask) if gb.old is None else gb.old.copy()
        for r, (_, lp, _) in zip(row_sets, micro):
            LP[r] = lp
        OLD = LP if gb.old is None else gb.old
        active = np.zeros(gb.mask.shape, dtype=bool)
        active[rows] = gb.mask[rows] > 0
        slices = [gb.slices[s] for s in idx]
        parts = [LP[r] for r in row_sets]

        def full(grads):
            out = np.zeros_like(LP)
            for r, g in zip(row_sets, grads):
                out[r] = g
            return out

        _, g_act = trainer_loss_and_grad(tr, slices, parts)
        kl = c["beta"] != 0
        loss_kl, g_kl = 0.0, [np.zeros_like(p) for p in parts]
        if kl:
            loss_kl, g_kl = trainer_loss_and_grad(tr, slices, parts, replace=_advantages_zero)
        _, g_one = trainer_loss_and_grad(tr, slices, parts, replace=_at_one)
        g_policy = full(a - k for a, k in zip(g_act, g_kl))
        w_trainer = -full(g_one)

        common = dict(mask=gb.mask, micro_batches=[r.tolist() for r in row_sets], ref_logp=LP if kl else None)
        w_mapped = -mapped_gradient("trl", c, logp=LP, old_logp=LP, advantages=np.ones_like(gb.A), **common)
        a_omega = -mapped_gradient("trl", c, logp=LP, old_logp=OLD, advantages=gb.A, **common)

        out = weight_metrics(w_trainer, w_mapped, active)
        out.update(prefix_metrics(gb.keys, rows, gb.ids, gb.mask, gb.A, g_policy, a_omega, w_mapped))
        t, lr, betas = self._adam()
        if gb.old is not None and self.ppo:
            S = int(tr.args.steps_per_generation)
            first = int(tr._step) - len(micro)
            out["clip_inner_step"] = (first % (S * int(tr.num_iterations))) // len(micro)
            seq = c["importance_sampling_level"] == "sequence"
            masks, visits = [], []
            for s, r in zip(idx, row_sets):
                x, region, beyond, exc = clip_masks(LP[r], OLD[r], gb.mask[r], gb.A[r], *self.eps, seq)
                masks.append((region, beyond, exc, gb.mask[r] > 0))
                visits.append(self.tracker.visit(gb.slices, s, x, region, gb.A[r], gb.mask[r] > 0, t, lr, betas))
            out.update(clip_metrics(*(np.concatenate(z) for z in zip(*masks))))
            out.update(OvershootTracker.combine(visits))
        out.update(scale_metrics(self.optimizer, self.phi))
        out.update(loss_metrics(sum(x for _, _, x in micro), gb.A, w_mapped, rows, active, loss_kl, self.ppo))
        out["adam_step"] = t
        return {f"proofs/{k}": v for k, v in out.items() if v is not None}


def _advantages_zero(inputs, leaf):
    import torch

    return {"advantages": torch.zeros_like(inputs["advantages"])}


def _at_one(inputs, leaf):
    """r = 1 (behaviour log-probs = the policy's), advantages 1, reference = policy: the gradient is -w."""
    import torch

    same = leaf.detach().clone()
    out = {"advantages": torch.ones_like(inputs["advantages"]), "old_per_token_logps": same}
    for key in ("ref_per_token_logps", "sampling_per_token_logps"):
        if key in inputs:
            out[key] = same
    return out
