"""verl configs as Hydra composes them: command-line overrides and ``${...}`` interpolations.

:func:`parse_overrides` turns overrides as typed after ``verl.trainer.main_ppo`` into a nested
mapping, each value read as YAML (numbers, true/false, null, lists); :func:`verl_config` drops
Hydra's own sections and resolves interpolations with omegaconf against the release's defaults.

>>> parse_overrides(["algorithm.adv_estimator=grpo", "actor_rollout_ref.actor.clip_ratio_low=3e-4"])
{'algorithm': {'adv_estimator': 'grpo'}, 'actor_rollout_ref': {'actor': {'clip_ratio_low': 0.0003}}}
"""

from __future__ import annotations

import re

from ..errors import InputError
from . import option_tables
from .releases import VERSION_KEYS, resolve

__all__ = ["parse_overrides", "verl_config", "yaml_numbers"]


def _scalar(text: str):
    """A command-line value read as YAML (numbers, true/false, null, [a, b]); 3e-4 is a number."""
    import yaml

    try:
        v = yaml.safe_load(text) if text != "" else None
    except yaml.YAMLError:
        return text
    return yaml_numbers(v)


def yaml_numbers(v):
    """YAML 1.1 reads 3e-4 as a string; read such strings (in lists too) as the numbers they are.

    >>> yaml_numbers(["3e-4", "nan", "dapo"])
    [0.0003, 'nan', 'dapo']
    """
    if isinstance(v, list):
        return [yaml_numbers(x) for x in v]
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return v
        return f if v.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity") else v
    return v


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


def verl_config(data: dict) -> dict:
    """A verl config mapping without Hydra's ``defaults``/``hydra`` sections, interpolations resolved."""
    data = {k: v for k, v in data.items() if k not in ("defaults", "hydra", "_self_")}
    version = next((data.get(k) for k in VERSION_KEYS if k in data), None)
    return _verl_tree(data, None if version is None else str(version))
