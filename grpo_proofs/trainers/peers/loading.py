"""Run a trainer release's own files without its package ``__init__``\\ s or its GPU-only dependencies.

verl 0.9.1 and OpenRLHF 0.11.2 install on a CPU machine only with ``pip install --no-deps``: their
full dependency sets (ray, deepspeed, vllm, flash-attn, tensordict) need CUDA. Their loss code
is plain PyTorch, but it sits in packages whose ``__init__`` files import those dependencies
(``verl/__init__.py`` imports ``verl.protocol``, hence ray and tensordict; ``openrlhf/models/__init__.py``
imports the actor model, hence peft and flash-attn). Two mechanisms load the release's own code
from its installed distribution anyway, and nothing is copied into this project:

* :func:`release_modules` imports named modules of the distribution with *light parent packages*:
  the packages on the way (``verl``, ``openrlhf.models``, ...) are created as empty package
  modules whose ``__path__`` is the installed directory, so only the named modules and what they
  import themselves run. Third-party modules that such a file imports at the top but that its
  loss functions never call (ray, tensordict, deepspeed, ...) are *stand-ins* while the files load:
  module objects whose every attribute is a class that raises when called or instantiated, so a
  loss function that did use one would fail loudly, never compute something else. A stand-in
  is used only for a module that is not installed, and is removed from ``sys.modules`` again
  once the release's modules are loaded.
* :func:`release_function` compiles one function (or method) of an installed file from the
  release's own source, in a namespace that binds its free names; used for code that is not
  importable as a module (OpenRLHF's option table lives in a ``__main__`` block; its advantage
  estimators are a method of a ray actor class). Tracebacks point at the installed file's lines.

Every loader checks that the installed distribution is the release asked for.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
import warnings
from typing import Iterable, Mapping

__all__ = ["release_root", "release_modules", "release_function", "release_source", "require", "PeerUnavailable"]


class PeerUnavailable(RuntimeError):
    """The release is not installed (or another version is)."""


def require(dist: str, version: str) -> None:
    """Raise :class:`PeerUnavailable` unless ``dist==version`` is installed."""
    try:
        have = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise PeerUnavailable(f"{dist} is not installed (the peers extra installs {dist}=={version})") from None
    if have != version:
        raise PeerUnavailable(f"{dist} {have} is installed; these checks need {dist}=={version}")


def release_root(dist: str, package: str | None = None) -> str:
    """The installed directory of ``package`` (default: the distribution's name) of ``dist``."""
    location = importlib.metadata.distribution(dist).locate_file("")
    root = os.path.join(str(location), package or dist)
    if not os.path.isdir(root):
        raise PeerUnavailable(f"{dist} has no package directory {root}")
    return root


def release_source(dist: str, relpath: str) -> tuple[str, str]:
    """(path, text) of a file of the installed distribution, ``relpath`` relative to its package."""
    path = os.path.join(release_root(dist), relpath)
    with open(path, encoding="utf-8") as fh:
        return path, fh.read()


class _Raising(type):
    """Classes standing in for a missing dependency's attributes: calling one raises."""

    def __call__(cls, *args, **kwargs):
        raise RuntimeError(f"{cls.__qualname__} is a stand-in for a dependency that is not installed; "
                           "the release code called it")

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Raising(f"{cls.__qualname__}.{name}", (), {})


class _StandIn(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Raising(f"{self.__name__}.{name}", (), {})


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


class _StandInFinder:
    """Finds stand-ins for the submodules of a stand-in package (``tensordict.tensorclass``, ...)."""

    def __init__(self, tops: set[str]):
        self.tops = tops

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in self.tops:
            return None
        return importlib.util.spec_from_loader(name, self, is_package=True)

    def create_module(self, spec):
        mod = _StandIn(spec.name)
        mod.__path__ = []
        return mod

    def exec_module(self, module):
        return None


@contextlib.contextmanager
def _stand_ins(names: Iterable[str]):
    tops = {n.split(".")[0] for n in names if not _installed(n)}
    finder = _StandInFinder(tops)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for sub in [k for k in sys.modules if k.split(".")[0] in tops]:
            if isinstance(sys.modules[sub], _StandIn):
                del sys.modules[sub]


_LOADED: dict[tuple, dict[str, types.ModuleType]] = {}


def release_modules(dist: str, version: str, modules: Iterable[str], *, light: Iterable[str],
                    stand_ins: Iterable[str] = ()) -> dict[str, types.ModuleType]:
    """Import ``modules`` of the installed ``dist==version`` with light parent packages ``light``.

    Args:
        dist: distribution name (``"verl"``); its top package has the same name.
        version: the release that must be installed.
        modules: dotted module names to import (``"verl.trainer.ppo.core_algos"``).
        light: packages created empty (their ``__init__`` is not run), with the installed directory as path.
        stand_ins: third-party modules replaced by raising stand-ins while loading, if not installed.

    Returns:
        ``{name: module}`` (cached: a second call returns the same modules).
    """
    modules, light, stand_ins = tuple(modules), tuple(light), tuple(stand_ins)
    key = (dist, version, modules, light, stand_ins)
    if key in _LOADED:
        return _LOADED[key]
    require(dist, version)
    root = release_root(dist)
    for name in light:
        if name in sys.modules and getattr(sys.modules[name], "__file__", None) is None:
            continue  # already a light package
        if name in sys.modules:
            raise PeerUnavailable(f"{name} is already imported as a full package; load it through release_modules only")
        pkg = types.ModuleType(name)
        parts = name.split(".")
        pkg.__path__ = [os.path.join(root, *parts[1:])]
        pkg.__package__ = name
        sys.modules[name] = pkg
        if len(parts) > 1:
            setattr(sys.modules[".".join(parts[:-1])], parts[-1], pkg)
    out = {}
    with _stand_ins(stand_ins), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # import-time notices of the release and its dependencies
        for name in modules:
            mod = importlib.import_module(name)
            if not os.path.abspath(mod.__file__).startswith(os.path.abspath(root)):
                raise PeerUnavailable(f"{name} was loaded from {mod.__file__}, not from the installed {dist}")
            out[name] = mod
    _LOADED[key] = out
    return out


def release_function(dist: str, version: str, relpath: str, qualname: str, namespace: Mapping) -> object:
    """Compile ``qualname`` (``"func"`` or ``"Class.method"``) of an installed file, in ``namespace``.

    The function is compiled from the release's own source with its original line numbers; its
    globals are a copy of ``namespace`` (the names its body uses). Decorators are kept.
    """
    require(dist, version)
    path, text = release_source(dist, relpath)
    tree = ast.parse(text, filename=path)
    node: ast.AST = tree
    for part in qualname.split("."):
        found = [n for n in getattr(node, "body", ()) if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part]
        if len(found) != 1:
            raise PeerUnavailable(f"{dist} {version}: {relpath} has no single {qualname!r} (at {part!r})")
        node = found[0]
    if not isinstance(node, ast.FunctionDef):
        raise PeerUnavailable(f"{dist} {version}: {qualname} in {relpath} is not a function")
    module = ast.Module(body=[node], type_ignores=[])
    scope = dict(namespace)
    exec(compile(module, path, "exec"), scope)  # the release's own function, compiled from its installed file
    return scope[node.name]
