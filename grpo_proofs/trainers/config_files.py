"""Trainer configs as users have them: TRL YAML/JSON, verl Hydra YAML or overrides, OpenRLHF argument lines.

:func:`read_file` reads a file and :func:`read_text` a command-line text, each into
``(trainer, config)`` with the config in the keys :mod:`grpo_proofs.trainers` reads (a
``version`` key, when the file gives one, is kept for the trainer module). Formats:

* the project's own: a YAML/TOML/JSON mapping whose one top-level key is ``trl``, ``verl`` or
  ``openrlhf`` (``version`` allowed inside);
* TRL: the YAML passed to ``trl grpo --config`` (GRPOConfig fields, the script's dataset and
  model fields, an ``env`` mapping), or the JSON of a run's training arguments
  (``GRPOConfig.to_json_string()``; the ``training_args.bin`` a run saves is a pickle and is not
  read: ``torch.load(path, weights_only=False).to_json_string()`` writes it as JSON);
* verl: a Hydra YAML (nested sections ``actor_rollout_ref``, ``algorithm``, ``data``, ...; a
  ``defaults`` list and a ``hydra`` section are skipped) or overrides as typed on the command line
  (``algorithm.adv_estimator=grpo actor_rollout_ref.actor.ppo_epochs=2``, ``+key=value`` too),
  alone or in a shell script after ``verl.trainer.main_ppo``. Interpolations (``${...}``) are
  resolved by omegaconf against the release's own defaults, as Hydra composes them;
* OpenRLHF: an argument line of ``openrlhf.cli.train_ppo_ray`` (``--actor.eps_clip 0.2
  --algo.advantage.estimator group_norm ...``), alone or in a shell script, read with shlex and
  parsed by an argparse parser built from the release's own option table (types, nargs,
  choices, flags): an option the release does not have is one line naming the closest one.

Only the options given count as given (a default is not a choice); keys the loss does not read
are accepted and listed once by the trainer module.
"""

from __future__ import annotations

import json
import os
import re
import shlex

from ..errors import InputError
from . import option_tables
from .argument_lines import parse_argument_line
from .hydra_overrides import parse_overrides, verl_config as _verl_config
from .releases import RELEASES, VERSION_KEYS

__all__ = ["read_file", "read_text", "parse_overrides", "parse_argument_line", "detect_mapping", "Loaded"]

TRAINERS = ("trl", "verl", "openrlhf")
_VERL_MAIN = re.compile(r"verl[./]trainer[./]main_ppo")
_OPENRLHF_MAIN = re.compile(r"openrlhf[./]cli[./]train_ppo_ray")


class Loaded(tuple):
    """(trainer, config, format) -- the format says what was read ("trl-yaml", "verl-overrides", ...)."""

    def __new__(cls, trainer: str, config: dict, fmt: str):
        return super().__new__(cls, (trainer, config, fmt))

    trainer = property(lambda self: self[0])
    config = property(lambda self: self[1])
    format = property(lambda self: self[2])


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text.replace("\\\r\n", " ").replace("\\\n", " "), comments=True, posix=True)
    except ValueError as exc:
        raise InputError(f"cannot split the command line: {exc}") from None


# ------------------------------------------------------------------------------------- OpenRLHF
def _command_tokens(tokens: list[str], main: re.Pattern) -> list[str]:
    for i, tok in enumerate(tokens):
        if main.search(tok):
            return tokens[i + 1:]
    return tokens


def _openrlhf_text(text: str, version=None) -> dict:
    tokens = _command_tokens(_tokens(text), _OPENRLHF_MAIN)
    first = next((i for i, t in enumerate(tokens) if t.startswith("--")), None)
    if first is None:
        raise InputError("no --option in the OpenRLHF argument line (e.g. --actor.eps_clip 0.2)")
    return parse_argument_line(tokens[first:], version)


def _verl_text(text: str) -> dict:
    tokens = _command_tokens(_tokens(text), _VERL_MAIN)
    overrides = [t for t in tokens if "=" in t and re.match(r"^\+{0,2}[A-Za-z_][\w.]*=", t)]
    if not overrides:
        raise InputError("no key=value override in the verl command line (e.g. algorithm.adv_estimator=grpo)")
    return _verl_config(parse_overrides(overrides))


# -------------------------------------------------------------------------------------- detect
def detect_mapping(data: dict, where: str) -> str:
    """Which trainer a native config mapping is for: verl sections, else TRL fields."""
    from .verl import SECTIONS

    keys = set(data) - {"env", "defaults", "hydra", *VERSION_KEYS}
    if keys & set(SECTIONS):
        return "verl"
    trl = option_tables.keys("trl", RELEASES["trl"][0].version)
    if keys and len(keys & trl) >= len(keys) / 2:
        return "trl"
    raise InputError(f"{where}: not a trainer config: expected TRL GRPOConfig fields, verl sections "
                     f"({', '.join(SECTIONS[:4])}, ...) or one top-level key trl, verl or openrlhf")


def from_mapping(data, where: str, fmt: str) -> Loaded:
    """A parsed YAML/JSON/TOML mapping -> (trainer, config, format)."""
    if not isinstance(data, dict):
        raise InputError(f"{where} must hold a mapping of config keys, got {type(data).__name__}")
    if len(data) == 1 and next(iter(data)) in TRAINERS:
        trainer, cfg = next(iter(data.items()))
        if cfg is not None and not isinstance(cfg, dict):
            raise InputError(f"{where}: the value of {trainer!r} must be a mapping of config keys")
        cfg = dict(cfg or {})
        if trainer == "verl":
            cfg = _verl_config(cfg)
        return Loaded(trainer, cfg, "grpo-proofs")
    trainer = detect_mapping(data, where)
    if trainer == "verl":
        return Loaded("verl", _verl_config(data), f"verl-{fmt}")
    env = data.get("env")
    if env is not None and not isinstance(env, dict):
        raise InputError(f"{where}: `env` field should be a dict (as `trl grpo --config` requires)")
    return Loaded("trl", {k: v for k, v in data.items() if k != "env"}, f"trl-{fmt}")


def read_text(trainer: str, text: str, version=None) -> Loaded:
    """A command-line text: verl overrides or an OpenRLHF argument line (or a script holding one)."""
    if trainer == "openrlhf":
        return Loaded("openrlhf", _openrlhf_text(text, version), "openrlhf-arguments")
    if trainer == "verl":
        return Loaded("verl", _verl_text(text), "verl-overrides")
    raise InputError("a TRL config is key=value pairs or a YAML/JSON file")


def read_file(path: str, trainer: str | None = None) -> Loaded:
    """Read a trainer config file in any of the formats of the module doc (``trainer`` forces one)."""
    import yaml

    if not os.path.isfile(path):
        raise InputError(f"cannot read {path}: no such file")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    ext = os.path.splitext(path)[1].lower()
    if ext in (".sh", ".bash", ".txt", ".args") or (ext not in (".yaml", ".yml", ".json", ".toml")
                                                      and text.lstrip().startswith(("#!", "python", "--"))):
        if trainer is None:
            trainer = "openrlhf" if _OPENRLHF_MAIN.search(text) or re.search(r"--(actor|algo|rollout)\.", text) else \
                "verl" if _VERL_MAIN.search(text) or re.search(r"\b(actor_rollout_ref|algorithm)\.\w+=", text) else None
        if trainer not in ("verl", "openrlhf"):
            raise InputError(f"{path}: no verl (verl.trainer.main_ppo ... key=value) or OpenRLHF "
                             "(openrlhf.cli.train_ppo_ray --option value) command line found")
        return read_text(trainer, text)
    if ext == ".json":
        try:
            data, fmt = json.loads(text), "json"
        except json.JSONDecodeError as e:
            raise InputError(f"{path} is not valid JSON: {e.msg} (line {e.lineno})") from None
    elif ext == ".toml":
        import tomllib

        try:
            data, fmt = tomllib.loads(text), "toml"
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{path} is not valid TOML: {e}") from None
    else:
        try:
            data, fmt = yaml.safe_load(text), "yaml"
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise InputError(f"{path} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        raise InputError(f"{path} is empty")
    loaded = from_mapping(data, path, fmt)
    if trainer is not None and loaded.trainer != trainer:
        raise InputError(f"{path} is a {loaded.trainer} config, not a {trainer} one")
    return loaded
