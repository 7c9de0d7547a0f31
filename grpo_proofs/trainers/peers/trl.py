"""TRL 1.16.0 as an oracle: a real ``GRPOTrainer``, its own batches, its own ``_compute_loss``.

:class:`TRLRun` builds what a user builds, offline and on the CPU: a tiny randomly initialised
Qwen2 causal LM (saved to a temporary folder, so TRL can load the reference model from it the
way it does for a hub checkpoint), a word-level tokenizer built in code, an in-memory dataset of
prompts, deterministic reward functions of the completion tokens, and a real ``GRPOConfig``
holding the config under test. Then:

* :meth:`TRLRun.generate` runs ``GRPOTrainer._prepare_inputs`` once: the trainer samples its
  generation batch, scores it, computes its advantages, old and reference log-probs and
  ``num_items_in_batch``, shuffles it and splits it into ``steps_per_generation`` slices, as in
  training. The rewards each reward function returned and the advantages TRL computed are kept.
* :meth:`TRLRun.loss_and_grad` evaluates ``GRPOTrainer._compute_loss`` on the K slices of one
  optimizer step, in train mode with ``current_gradient_accumulation_steps = K``, and sums them
  (Trainer back-propagates each micro-batch's loss as it is: GRPOTrainer disables its scaling).
  The per-token log-probs are the one input replaced: ``_get_per_token_logps_and_entropies``
  returns rows of a float64 leaf tensor holding the log-probs the trainer's own model computes,
  moved by a given offset (an optimizer step would move them; the offset puts ratios on every
  clip branch) and with arbitrary values in the padding. The gradient is autograd's, w.r.t. it.

The trainer runs with torch's default dtype set to float64 (the model, the log-probs and every
tensor TRL creates without an explicit dtype); TRL casts rewards and reward weights to float32
itself, so the reward functions return float32-representable values (multiples of 1/4).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from ...runtime.trl_offline import build_trainer, reward_count, reward_length
from ...runtime.trl_offline import float64 as _float64
from ...runtime.trl_offline import quiet as _quiet
from .loading import require

__all__ = ["VERSION", "TRLRun", "Generation", "HARNESS_KEYS", "reward_count", "reward_length"]

VERSION = "1.16.0"
#: GRPOConfig keys the harness sets itself (everything else comes from the config under test)
HARNESS_KEYS = ("output_dir", "use_cpu", "report_to", "save_strategy", "disable_tqdm", "seed", "logging_steps",
                "dataloader_num_workers", "data_seed")


@dataclass
class Generation:
    """One generation batch as the trainer trains on it (shuffled, split into slices)."""

    slices: list[dict]
    #: (B_gen, T) float64: the model's own per-token log-probs of the shuffled batch
    model_logp: np.ndarray
    mask: np.ndarray
    advantages: np.ndarray
    old_logp: np.ndarray | None
    ref_logp: np.ndarray | None
    num_items_in_batch: int
    #: before the shuffle: the rewards returned (B_gen, F), the group of each row, TRL's advantages
    rewards: np.ndarray = field(repr=False, default=None)
    group_ids: np.ndarray = field(repr=False, default=None)
    trl_advantages: np.ndarray = field(repr=False, default=None)

    @property
    def rows_per_slice(self) -> int:
        return self.slices[0]["completion_ids"].shape[0]


class TRLRun:
    """A real ``trl.GRPOTrainer`` on a tiny offline model, for one config (see the module doc).

    Args:
        config: GRPOConfig fields under test (loss_type, beta, steps_per_generation, ...); every
            key is passed to ``trl.GRPOConfig`` as is.
        reward_funcs: one or more of :func:`reward_count`, :func:`reward_length`.
        prompts: how many distinct prompts the dataset holds.
        seed: the trainer's seed (sampling, shuffling).
    """

    def __init__(self, config: dict, *, reward_funcs=(reward_count,), prompts: int = 8, seed: int = 0):
        require("trl", VERSION)
        bad = sorted(set(config) & set(HARNESS_KEYS))
        if bad:
            raise ValueError(f"the harness sets {bad} itself")
        self.out = tempfile.mkdtemp(prefix="grpo-proofs-trl-run-")
        atexit.register(shutil.rmtree, self.out, True)
        with _quiet(), _float64():
            self.trainer = build_trainer(config, output_dir=self.out, reward_funcs=reward_funcs, prompts=prompts, seed=seed)
        self.args = self.trainer.args
        self.reward_funcs = tuple(reward_funcs)

    def generate(self) -> Generation:
        """Sample and score one generation batch through ``_prepare_inputs`` (see the module doc)."""
        import torch

        tr = self.trainer
        seen: dict = {}
        recorded: list[list[float]] = []
        original = tr._generate_and_score_completions
        funcs = tr.reward_funcs

        def recording(func):
            def wrapped(*args, **kwargs):
                out = func(*args, **kwargs)
                recorded.append(list(out))
                return out
            wrapped.__name__ = func.__name__
            return wrapped

        def capture(batch):
            out = original(batch)
            seen["out"] = out
            return out

        with _quiet(), _float64():
            tr.model.train()
            tr.reward_funcs = [recording(f) for f in funcs]
            tr._generate_and_score_completions = capture
            try:
                tr._step = 0
                tr._buffered_inputs = None
                torch.manual_seed(int(self.args.seed))
                batch = next(iter(tr.get_train_dataloader()))
                tr._prepare_inputs(batch)
            finally:
                tr.reward_funcs = funcs
                del tr._generate_and_score_completions
            slices = list(tr._buffered_inputs)
            whole = {k: torch.cat([s[k] for s in slices]) for k in slices[0]
                     if torch.is_tensor(slices[0][k]) and slices[0][k].ndim > 0}
            ids = torch.cat([whole["prompt_ids"], whole["completion_ids"]], dim=1)
            att = torch.cat([whole["prompt_mask"], whole["completion_mask"]], dim=1)
            with torch.no_grad():
                logp, _, _ = tr._get_per_token_logps_and_entropies(tr.model, ids, att, whole["completion_ids"].size(1))
        out = seen["out"]
        G = int(self.args.num_generations)
        rewards = np.asarray(recorded, dtype=np.float64).T  # (B_gen, F), unshuffled
        mask = whole["completion_mask"].double().numpy()
        if "tool_mask" in whole:
            mask = mask * whole["tool_mask"].double().numpy()
        return Generation(
            slices=slices, model_logp=logp.double().numpy(), mask=mask,
            advantages=whole["advantages"].double().numpy(),
            old_logp=whole["old_per_token_logps"].double().numpy() if "old_per_token_logps" in whole else None,
            ref_logp=whole["ref_per_token_logps"].double().numpy() if "ref_per_token_logps" in whole else None,
            num_items_in_batch=int(slices[0]["num_items_in_batch"]),
            rewards=rewards, group_ids=np.arange(rewards.shape[0]) // G,
            trl_advantages=out["advantages"].double().numpy())

    def step_rows(self, gen: Generation, step: int, micro_batches: int | None = None) -> list[list[int]]:
        """Rows of the generation batch in each micro-batch of optimizer step ``step``."""
        K = micro_batches or int(self.args.gradient_accumulation_steps)
        b = gen.rows_per_slice
        first = step * K
        if first + K > len(gen.slices):
            raise ValueError(f"step {step} with K = {K} needs slices up to {first + K}, the batch has {len(gen.slices)}")
        return [list(range((first + k) * b, (first + k + 1) * b)) for k in range(K)]

    def loss_and_grad(self, gen: Generation, logp: np.ndarray, step: int = 0,
                      micro_batches: int | None = None) -> tuple[float, np.ndarray]:
        """TRL's loss of optimizer step ``step`` (sum over its K micro-batches) and its gradient w.r.t. ``logp``."""
        import torch

        tr = self.trainer
        K = micro_batches or int(self.args.gradient_accumulation_steps)
        rows = self.step_rows(gen, step, K)
        with _quiet(), _float64():
            leaf = torch.tensor(np.asarray(logp, dtype=np.float64), requires_grad=True)
            original = tr._get_per_token_logps_and_entropies
            tr.model.train()
            tr.current_gradient_accumulation_steps = K
            total = torch.zeros((), dtype=torch.float64)
            try:
                for k, r in enumerate(rows):
                    part = leaf[r[0]: r[-1] + 1]

                    def replaced(*args, _part=part, **kwargs):
                        return _part, torch.zeros_like(_part.detach()), None

                    tr._get_per_token_logps_and_entropies = replaced
                    total = total + tr._compute_loss(tr.model, gen.slices[step * K + k])
            finally:
                tr._get_per_token_logps_and_entropies = original
                if "_get_per_token_logps_and_entropies" in vars(tr):
                    del tr._get_per_token_logps_and_entropies
            (grad,) = torch.autograd.grad(total, leaf)
        return float(total.detach()), grad.numpy().copy()

    @staticmethod
    def available() -> bool:
        try:
            require("trl", VERSION)
        except Exception:
            return False
        return True
