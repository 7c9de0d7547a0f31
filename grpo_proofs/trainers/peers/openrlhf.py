"""OpenRLHF 0.11.2 as an oracle: its own ``PolicyLoss``, ``aggregate_loss``, KL estimator, normalisers,
advantage estimators and option table.

Loaded by :mod:`.loading`: ``openrlhf/models/loss.py``, ``models/utils.py``, ``utils/loss_utils.py``
and ``trainer/ppo_utils/length_penalty.py`` with light parent packages (``openrlhf.models``'s
``__init__`` imports the actor model, hence peft and flash-attn) and a stand-in for deepspeed
(``models/utils.py`` imports it for ZeRO-3 leaf modules only). Two pieces are not importable as
modules and are compiled from the installed file by :func:`~.loading.release_function`:
``RemoteExperienceMaker.compute_advantages_and_returns`` (a method of a ray actor class, with
``get_cumulative_returns``) and the option table of ``cli/train_ppo_ray.py`` (built in its
``__main__`` block: :func:`parser` runs the statements that build it, up to ``parse_args``).

What the actor does around the loss is done here as ``trainer/ray/ppo_actor.py`` does it
(:data:`GLUE` lists the statements mirrored; :func:`glue_statements` checks they are still
there): the step's normalisers come from ``iter_grad_accum_global_norm``'s
``_optimizer_step_loss_norm`` over its gas = K micro-batches; each micro-batch's loss is
``actor_loss + kl_loss * kl_ctl`` (with ``algo.kl.use_loss`` and ``init_coef > 0``:
``compute_approx_kl`` aggregated by ``aggregate_loss`` with the step's normalisers); DeepSpeed
scales every micro-batch's backward by 1/gas. The action mask is an integer tensor, as OpenRLHF's
experiences hold it.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import itertools
import types

import numpy as np

from .loading import release_function, release_modules, release_source, require

__all__ = ["VERSION", "modules", "parser", "option_table", "loss_and_grad", "advantages", "GLUE", "glue_statements"]

VERSION = "0.11.2"

GLUE = {
    "trainer/ray/ppo_actor.py": (
        'token_level_loss=self.args.actor.loss_agg_mode == "token-mean"',
        "iter_grad_accum_global_norm(",
        "kl_estimator=self.args.algo.kl.estimator,",
        "unbiased_gradient=self.args.algo.kl.unbiased_gradient,",
        "kl_loss = aggregate_loss(kl, experience.action_mask, **loss_batch_info)",
        "loss = actor_loss + kl_loss * kl_ctl",
        "clip_eps_low=self.args.actor.eps_clip_low_high[0],",
        "if self.args.algo.kl.init_coef > 0:",
    ),
    "trainer/ppo_trainer.py": ("self.kl_ctl = FixedKLController(self.args.algo.kl.init_coef)",),
    "cli/train_ppo_ray.py": ("args.actor.eps_clip_low_high = (args.actor.eps_clip, args.actor.eps_clip)",),
}


def modules() -> dict:
    return release_modules(
        "openrlhf", VERSION,
        ["openrlhf.models.loss", "openrlhf.models.utils", "openrlhf.utils.loss_utils", "openrlhf.utils.config",
         "openrlhf.trainer.ppo_utils.length_penalty"],
        light=["openrlhf", "openrlhf.models", "openrlhf.utils", "openrlhf.trainer", "openrlhf.trainer.ppo_utils"],
        stand_ins=["deepspeed"])


def glue_statements() -> dict[str, list[str]]:
    missing = {}
    for rel, statements in GLUE.items():
        _, text = release_source("openrlhf", rel)
        flat = " ".join(text.split())
        gone = [s for s in statements if " ".join(s.split()) not in flat]
        if gone:
            missing[rel] = gone
    return missing


class _Refusal(Exception):
    pass


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message):
        raise _Refusal(message)


class _FixedClock(datetime.datetime):
    """``datetime`` for reading the table: the default wandb run name embeds ``now()``."""

    @classmethod
    def now(cls, tz=None):
        return cls(2000, 1, 1)


def parser(*, fixed_clock: bool = False) -> argparse.ArgumentParser:
    """The release's own argument parser of ``train_ppo_ray`` (errors raise instead of exiting)."""
    require("openrlhf", VERSION)
    path, text = release_source("openrlhf", "cli/train_ppo_ray.py")
    tree = ast.parse(text, filename=path)
    main = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    if len(main) != 1:
        raise RuntimeError(f"{path}: no single __main__ block")
    body = []
    for stmt in main[0].body:
        if "parse_args" in ast.unparse(stmt):
            break
        body.append(stmt)
    shim = types.SimpleNamespace(**{k: getattr(argparse, k) for k in dir(argparse) if not k.startswith("_")})
    shim.ArgumentParser = _RaisingParser
    scope = {"argparse": shim, "datetime": _FixedClock if fixed_clock else datetime.datetime, "os": __import__("os")}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), scope)  # the release's own statements
    return scope["parser"]


def parse(argv: list[str]):
    """``parser().parse_args(argv)`` then ``hierarchize``: the release's own reading of an argument line.

    Raises ValueError with argparse's message when the release refuses the line.
    """
    p = parser()
    try:
        ns = p.parse_args(argv)
    except _Refusal as exc:
        raise ValueError(str(exc)) from None
    return modules()["openrlhf.utils.config"].hierarchize(ns)


def option_table() -> dict[str, dict]:
    """option string -> {dest, default, nargs, type, choices, kind} of the release's parser."""
    out = {}
    for act in parser(fixed_clock=True)._actions:
        if not act.option_strings or act.dest == "help":
            continue
        kind = type(act).__name__
        default = act.default
        if isinstance(default, tuple):
            default = list(default)
        for opt in act.option_strings:
            out[opt] = {"dest": act.dest, "default": default, "nargs": act.nargs,
                        "type": getattr(act.type, "__name__", None), "choices": list(act.choices) if act.choices else None,
                        "kind": kind}
    return out


def loss_and_grad(args, *, logp, old_logp, advantages, mask, ref_logp=None, micro_batches=None) -> tuple[float, np.ndarray]:
    """OpenRLHF's actor loss of one optimizer step (gas = K micro-batches) and d/d logp.

    ``args`` is the hierarchized namespace of :func:`parse` (after the release's own
    ``eps_clip_low_high`` default); the KL coefficient is ``algo.kl.init_coef`` (FixedKLController).
    """
    import torch

    mods = modules()
    loss_mod, utils, lu = mods["openrlhf.models.loss"], mods["openrlhf.models.utils"], mods["openrlhf.utils.loss_utils"]
    lp = torch.tensor(np.asarray(logp, dtype=np.float64), requires_grad=True)
    old = torch.as_tensor(np.asarray(old_logp, dtype=np.float64))
    ref = None if ref_logp is None else torch.as_tensor(np.asarray(ref_logp, dtype=np.float64))
    m = torch.as_tensor(np.asarray(mask, dtype=np.int64))
    adv = torch.as_tensor(np.asarray(advantages, dtype=np.float64))
    B = lp.shape[0]
    rows_list = micro_batches or [list(range(B))]
    actor = args.actor
    actor_loss_fn = loss_mod.PolicyLoss(
        clip_eps_low=actor.eps_clip_low_high[0], clip_eps_high=actor.eps_clip_low_high[1], dual_clip=actor.dual_clip,
        token_level_loss=actor.loss_agg_mode == "token-mean", policy_loss_type=actor.policy_loss_type,
        is_correction_level=args.algo.advantage.is_correction_level,
        is_correction_mode=args.algo.advantage.is_correction_mode,
        is_correction_gating=args.algo.advantage.is_correction_gating,
        is_correction_threshold=args.algo.advantage.is_correction_threshold)
    gas = len(rows_list)
    masks = [m[torch.as_tensor(r)] for r in rows_list]
    info = lu._optimizer_step_loss_norm(masks, None, 1, gas)
    kl_ctl = args.algo.kl.init_coef
    total = torch.zeros((), dtype=torch.float64)
    for rows, action_mask in zip(rows_list, masks):
        rows = torch.as_tensor(rows)
        a = adv[rows].unsqueeze(-1) * action_mask if adv.ndim == 1 else adv[rows]
        action_log_probs = lp[rows]
        actor_loss, *_ = actor_loss_fn(action_log_probs, old[rows], a, action_mask=action_mask,
                                       rollout_log_probs=None, **info)
        if args.algo.kl.use_loss:
            if args.algo.kl.init_coef > 0:
                kl = utils.compute_approx_kl(action_log_probs, ref[rows], log_probs_old=old[rows],
                                             kl_estimator=args.algo.kl.estimator,
                                             unbiased_gradient=args.algo.kl.unbiased_gradient)
            else:
                kl = torch.zeros_like(action_log_probs)
            kl_loss = loss_mod.aggregate_loss(kl, action_mask, **info)
        else:
            kl_loss = 0
        loss = actor_loss + kl_loss * kl_ctl
        total = total + loss / gas  # DeepSpeed's backward scaling
    (grad,) = torch.autograd.grad(total, lp, allow_unused=True)
    grad = torch.zeros_like(lp) if grad is None else grad
    return float(total.detach()), grad.detach().numpy().copy()


def advantages(args, rewards, lengths) -> np.ndarray:
    """The release's ``compute_advantages_and_returns`` on one experience, read at each row's first token.

    Rows are in prompt order (blocks of ``rollout.n_samples_per_prompt``); the KL in the reward
    is zero (no reference model), as with ``init_coef = 0``.
    """
    import torch

    mods = modules()
    utils = mods["openrlhf.models.utils"]
    scope = {"torch": torch, "itertools": itertools, "apply_length_penalties":
             mods["openrlhf.trainer.ppo_utils.length_penalty"].apply_length_penalties,
             "compute_reward": utils.compute_reward, "masked_mean": utils.masked_mean,
             "logger": types.SimpleNamespace(warning=lambda *a, **k: None, info=lambda *a, **k: None),
             "List": list, "Tuple": tuple}
    compute = release_function("openrlhf", VERSION, "trainer/ppo_utils/experience_maker.py",
                               "RemoteExperienceMaker.compute_advantages_and_returns", scope)
    cumulative = release_function("openrlhf", VERSION, "trainer/ppo_utils/experience_maker.py",
                                  "RemoteExperienceMaker.get_cumulative_returns", scope)
    lengths = np.asarray(lengths, dtype=np.int64)
    B, T = len(lengths), max(int(lengths.max()), 1)
    mask = torch.as_tensor((np.arange(T)[None, :] < lengths[:, None]).astype(np.int64))
    exp = types.SimpleNamespace(rewards=torch.as_tensor(np.asarray(rewards, dtype=np.float64)), index=list(range(B)),
                                action_mask=mask, kl=torch.zeros((B, T), dtype=torch.float64), info={},
                                response_length=torch.as_tensor(lengths, dtype=torch.float64))
    this = types.SimpleNamespace(strategy=types.SimpleNamespace(args=args),
                                 advantage_estimator=args.algo.advantage.estimator,
                                 kl_ctl=types.SimpleNamespace(value=args.algo.kl.init_coef))
    this.get_cumulative_returns = lambda *a: cumulative(this, *a)
    (out,) = compute(this, [exp])
    return out.advantages.double().numpy()[:, 0]
