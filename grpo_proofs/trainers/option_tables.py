"""Every option each supported release accepts, so a user's whole config file can be read.

A run's config names far more than the loss: learning rates, paths, logging, parallelism. To
accept those keys (and list them as not seen by the loss) and to answer a misspelt key with the
closest valid one, the project needs each release's own option table. They are stored as data
in ``grpo_proofs/trainers/data/`` (names and defaults, read from the release; no code):

* ``trl-1.16.0.json``: the fields of ``trl.GRPOConfig`` (``transformers.TrainingArguments``
  included) and of the other dataclasses ``trl grpo --config`` reads (``GRPOScriptArguments``,
  ``ModelConfig``, ``DatasetMixtureConfig``). TRL 1.9.0's GRPOConfig has the same field names.
* ``verl-0.9.1.json``: every key of verl's composed PPO config
  (``verl/trainer/config/_generated_ppo_trainer.yaml``) with its default.
* ``openrlhf-0.11.2.json``: every option of ``openrlhf.cli.train_ppo_ray`` (dest, default, nargs,
  type, choices, action).

:mod:`grpo_proofs.trainers.peers.tables` regenerates them from the installed releases, and a
test marked ``peers`` checks that the stored tables equal what the releases declare.

>>> "loss_type" in keys("trl", "1.16.0") and "learning_rate" in keys("trl", "1.16.0")
True
>>> defaults("verl", "0.9.1")["actor_rollout_ref.actor.loss_agg_mode"]
'token-mean'
"""

from __future__ import annotations

import difflib
import json
import os
from functools import lru_cache

__all__ = ["table", "keys", "defaults", "closest", "DATA", "FILES"]

DATA = os.path.join(os.path.dirname(__file__), "data")
#: (trainer, version) -> the table file that describes it
FILES = {("trl", "1.16.0"): "trl-1.16.0.json", ("trl", "1.9.0"): "trl-1.16.0.json",
         ("verl", "0.9.1"): "verl-0.9.1.json", ("openrlhf", "0.11.2"): "openrlhf-0.11.2.json"}


@lru_cache(maxsize=None)
def table(trainer: str, version: str) -> dict:
    """The stored table of a release (see the module doc for its shape)."""
    with open(os.path.join(DATA, FILES[(trainer, version)]), encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=None)
def keys(trainer: str, version: str) -> frozenset[str]:
    """Every option name of the release (TRL field names, verl dotted keys, OpenRLHF dests)."""
    t = table(trainer, version)
    if trainer == "trl":
        return frozenset(t["fields"]) | frozenset(t["script_fields"])
    if trainer == "verl":
        return frozenset(t["defaults"])
    return frozenset(o["dest"] for o in t["options"].values())


def defaults(trainer: str, version: str) -> dict:
    """Key -> default, where the table records defaults (verl, OpenRLHF by dest)."""
    t = table(trainer, version)
    if trainer == "verl":
        return dict(t["defaults"])
    if trainer == "openrlhf":
        return {o["dest"]: o["default"] for o in t["options"].values()}
    return {}


def closest(name: str, candidates) -> str | None:
    """The candidate most like ``name`` (difflib), or None when nothing is close."""
    found = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return found[0] if found else None
