"""Reading a spec from where a user keeps it: a YAML, TOML or JSON file (a declarative spec, or a trainer's own
config file), or a Python file that builds a :class:`~grpo_proofs.variants.Variant` (``FILE:NAME``)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

from ..errors import InputError, kind_of
from ..variants import VARIANTS, Variant
from .spec import OPTIONAL, REQUIRED, TRAINER_KEYS, Spec, spec_from_mapping, trainer_spec

__all__ = ["load_spec"]


def _read(path: str) -> tuple[dict, str]:
    ext = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError(f"cannot read {path!r}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path!r} is not UTF-8 text") from None
    if ext in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text), "yaml"
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise InputError(f"{path!r} is not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    if ext == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            raise InputError("reading TOML needs Python >= 3.11 (tomllib); use a YAML spec") from None
        try:
            return tomllib.loads(text), "toml"
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{path!r} is not valid TOML: {e}") from None
    try:
        return json.loads(text), "json"
    except json.JSONDecodeError as e:
        raise InputError(f"{path!r} is not valid JSON: {e.msg} (line {e.lineno})") from None


def _native_trainer(d: dict, path: str) -> bool:
    """A TRL or verl config as the trainer reads it (rather than a declarative spec)."""
    from ..trainers.config_files import detect_mapping

    if set(d) & (set(REQUIRED) | set(OPTIONAL)) - {"beta"}:
        return False  # fields of a declarative spec
    try:
        detect_mapping(d, path)
    except InputError:
        return False
    return True


def _spec_file(path: str) -> Spec:
    if not os.path.isfile(path):
        raise InputError(f"spec file {path!r} does not exist")
    if os.path.splitext(path)[1].lower() not in (".yaml", ".yml", ".toml", ".json"):
        from ..trainers.config_files import read_file

        loaded = read_file(path)  # a verl or OpenRLHF command line
        return trainer_spec(loaded.trainer, loaded.config, "trainer", path)
    d, origin = _read(path)
    if d is None:
        raise InputError(f"{path!r} is empty; give the fields {', '.join(REQUIRED)} or a trainer config")
    if not isinstance(d, dict):
        raise InputError(f"{path!r} must hold a mapping of fields, got {kind_of(d)}")
    keys = set(d)
    if keys & set(TRAINER_KEYS):
        if len(keys) != 1:
            raise InputError(f"{path!r}: a trainer config has exactly one top-level key ({', '.join(TRAINER_KEYS)}); "
                             f"found {', '.join(sorted(map(str, keys)))}")
    if keys & set(TRAINER_KEYS) or (not keys & set(REQUIRED) and _native_trainer(d, path)):
        from ..trainers.config_files import from_mapping

        loaded = from_mapping(d, path, origin)
        return trainer_spec(loaded.trainer, loaded.config, "trainer", path)
    stem = os.path.splitext(os.path.basename(path))[0]
    return spec_from_mapping(d, name=stem, origin=origin, source=path)


def _python_spec(target: str) -> Spec:
    path, sep, attr = target.rpartition(":")
    if not sep or not path:
        raise InputError(f"give a Python variant as FILE.py:NAME, got {target!r}")
    if not attr.isidentifier():
        raise InputError(f"{attr!r} is not a Python name; give FILE.py:NAME")
    if not os.path.isfile(path):
        raise InputError(f"variant file {path!r} does not exist")
    mod_name = f"_grpo_proofs_user_{abs(hash(os.path.abspath(path)))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path!r} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)  # the user asked for this file to run
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    except (Exception, SystemExit) as e:
        raise InputError(f"{path} raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if not hasattr(module, attr):
        found = sorted(k for k, val in vars(module).items() if isinstance(val, Variant))
        raise InputError(f"{path} defines no {attr!r}" + (f"; Variants defined there: {', '.join(found)}" if found else ""))
    obj = getattr(module, attr)
    if not isinstance(obj, Variant):
        if not callable(obj) or isinstance(obj, type):
            raise InputError(f"{path}:{attr} must be a Variant or a zero-argument function returning one, "
                             f"got {kind_of(obj)}")
        try:
            obj = obj()
        except InputError as e:
            raise InputError(f"{path}:{attr}(): {e}") from None
        except Exception as e:
            raise InputError(f"{path}:{attr}() raised {type(e).__name__}: {e}") from None
        if not isinstance(obj, Variant):
            raise InputError(f"{path}:{attr}() returned {kind_of(obj)}, not a Variant")
    return Spec(obj, "pop", "python", f"{path}:{attr}")


def load_spec(spec: str | None = None, variant_file: str | None = None) -> Spec:
    """Resolve what the user named (positional SPEC or ``--variant-file FILE.py:NAME``) to a :class:`Spec`.

    >>> load_spec("grpo").variant.title
    'GRPO (DeepSeekMath / R1)'
    """
    if (spec is None) == (variant_file is None):
        raise InputError("name one variant: SPEC (a registry name or a .yaml/.toml/.json file) or --variant-file FILE.py:NAME")
    if variant_file is not None:
        return _python_spec(variant_file)
    if spec in VARIANTS:
        return Spec(VARIANTS[spec], "pop", "registry", spec)
    head = spec.rpartition(":")[0]
    if head.endswith(".py"):
        return _python_spec(spec)
    if spec.endswith(".py"):
        raise InputError(f"a Python variant needs the name of the Variant: {spec}:NAME")
    if os.path.splitext(spec)[1].lower() in (".yaml", ".yml", ".toml", ".json") or os.path.exists(spec):
        return _spec_file(spec)
    raise InputError(f"{spec!r} is neither a registry variant ({', '.join(VARIANTS)}) nor a spec file; "
                     "give a name, a .yaml/.toml/.json path or FILE.py:NAME")
