"""OpenRLHF argument lines, read by an argparse parser built from the release's own option table.

The parser of ``openrlhf.cli.train_ppo_ray`` is rebuilt from the table of the release (types,
nargs, choices, flags), so a line is refused exactly where OpenRLHF refuses it; an option the
release does not have is one line naming the closest one.

>>> parse_argument_line(["--actor.eps_clip", "0.1"], "0.11.2")
{'actor.eps_clip': 0.1}
"""

from __future__ import annotations

import argparse

from ..errors import InputError
from . import option_tables
from .releases import resolve

__all__ = ["parse_argument_line"]


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
