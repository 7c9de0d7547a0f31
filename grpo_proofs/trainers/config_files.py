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

import argparse
import json
import os
import re
import shlex

from ..errors import InputError
from . import option_tables
from .releases import RELEASES, VERSION_KEYS, resolve

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


def _scalar(text: str):
    """A command-line value read as YAML (numbers, true/false, null, [a, b]); 3e-4 is a number."""
    import yaml

    try:
        v = yaml.safe_load(text) if text != "" else None
    except yaml.YAMLError:
        return text
    return _numbers(v)


def _numbers(v):
    if isinstance(v, list):
        return [_numbers(x) for x in v]
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return v
        return f if v.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity") else v
    return v


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text.replace("\\\r\n", " ").replace("\\\n", " "), comments=True, posix=True)
    except ValueError as exc:
        raise InputError(f"cannot split the command line: {exc}") from None


# ----------------------------------------------------------------------------------------- verl
def _set(tree: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise InputError(f"override {dotted!r}: {p!r} already holds a value, not a section")
        node = nxt
    node[parts[-1]] = value


def parse_overrides(tokens: list[str], version: str | None = None) -> dict:
    """Hydra overrides (``a.b=v``, ``++a.b=v``; ``+a.b=v`` adds a key) -> a nested mapping; ``~key`` is refused.

    A key added with ``+`` keeps the ``+`` on its first part (the trainer module accepts it as an
    option the loss does not read); adding a key the release already has is refused, as Hydra does.
    """
    tree: dict = {}
    seen = set()
    for tok in tokens:
        if tok.startswith("~"):
            raise InputError(f"override {tok!r} deletes a key; give the values to use instead")
        if "=" not in tok:
            raise InputError(f"expected a Hydra override key=value, got {tok!r}")
        key, value = tok.split("=", 1)
        added = key.startswith("+") and not key.startswith("++")
        key = key.lstrip("+")
        if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key):
            raise InputError(f"{key!r} is not a dotted config key (override {tok!r})")
        if key in seen:
            raise InputError(f"override {key!r} is given twice")
        seen.add(key)
        if added:
            release = resolve("verl", version)
            if key in option_tables.defaults("verl", release.version):
                raise InputError(f"Could not append to config. An item is already at '{key}' ({release.title} has it; "
                                 f"override it with {key}=... instead of +{key}=...)")
            key = "+" + key
        _set(tree, key, _scalar(value))
    return tree


def _verl_tree(data: dict, version: str | None) -> dict:
    """Resolve ``${...}`` interpolations of a verl config against the release's defaults (omegaconf)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    def has_interp(x) -> bool:
        if isinstance(x, dict):
            return any(has_interp(v) for v in x.values())
        if isinstance(x, list):
            return any(has_interp(v) for v in x)
        return isinstance(x, str) and "${" in x

    if not has_interp(data):
        return data
    release = resolve("verl", version)
    base: dict = {}
    for key, value in option_tables.defaults("verl", release.version).items():
        _set(base, key, value)
    try:
        merged = OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(data))
        resolved = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as exc:
        raise InputError(f"cannot resolve an interpolation of the verl config: {str(exc).splitlines()[0]}") from None

    def keep(given, full):  # only the keys the user gave, with their resolved values
        if isinstance(given, dict):
            return {k: keep(v, full[k]) for k, v in given.items()}
        return full

    return keep(data, resolved)


def _verl_config(data: dict) -> dict:
    data = {k: v for k, v in data.items() if k not in ("defaults", "hydra", "_self_")}
    version = next((data.get(k) for k in VERSION_KEYS if k in data), None)
    return _verl_tree(data, None if version is None else str(version))


# ------------------------------------------------------------------------------------- OpenRLHF
class _Refused(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Refused(message)


_TYPES = {"int": int, "float": float, "str": str}


def _release_parser(version: str) -> tuple[argparse.ArgumentParser, dict]:
    options = option_tables.table("openrlhf", version)["options"]
    p = _Parser(prog="train_ppo_ray", add_help=False, argument_default=argparse.SUPPRESS)
    by_dest: dict[str, list[str]] = {}
    for opt, o in options.items():
        by_dest.setdefault(o["dest"], []).append(opt)
    for opt, o in options.items():
        kw = {"dest": o["dest"]}
        if o["kind"] == "_StoreTrueAction":
            kw["action"] = "store_true"
        elif o["kind"] == "_StoreFalseAction":
            kw["action"] = "store_false"
        else:
            if o["type"] is not None:
                kw["type"] = _TYPES.get(o["type"], str)
            if o["nargs"] is not None:
                kw["nargs"] = o["nargs"]
            if o["choices"] is not None:
                kw["choices"] = o["choices"]
        p.add_argument(opt, **kw)
    return p, by_dest


def parse_argument_line(tokens: list[str], version: str | None = None) -> dict:
    """OpenRLHF ``train_ppo_ray`` arguments -> {dest: value} of the options given (the release's option table)."""
    release = resolve("openrlhf", version)
    parser, _ = _release_parser(release.version)
    options = option_tables.table("openrlhf", release.version)["options"]
    for tok in tokens:
        if tok.startswith("--"):
            name = tok.split("=", 1)[0]
            if name not in options and not any(o.startswith(name) for o in options):
                near = option_tables.closest(name, options)
                raise InputError(f"{release.title} has no option {name}" + (f"; the closest is {near}" if near else ""))
    try:
        ns = parser.parse_args(tokens)
    except _Refused as exc:
        raise InputError(f"{release.title} refuses the argument line: {exc}") from None
    out = {}
    for dest, value in vars(ns).items():
        out[dest] = list(value) if isinstance(value, tuple) else value
    return out


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
