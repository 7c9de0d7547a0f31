"""Read each installed release's own option table (what :mod:`grpo_proofs.trainers.option_tables` stores).

``python -m grpo_proofs.trainers.peers.tables`` rewrites the stored tables from the installed
releases (trl 1.16.0, verl 0.9.1, openrlhf 0.11.2); the ``peers`` tests compare the stored tables
with :func:`generate` so a stale table fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import yaml

from . import openrlhf as _openrlhf
from . import verl as _verl
from .loading import release_source, require

__all__ = ["generate", "write", "RELEASES"]

#: trainer -> the version whose table is generated from the installed release
RELEASES = {"trl": "1.16.0", "verl": _verl.VERSION, "openrlhf": _openrlhf.VERSION}


def _plain(v):
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else repr(v)
    return repr(v)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = _plain(v)
    return out


def generate(trainer: str) -> dict:
    """The option table of the installed release of ``trainer`` (see option_tables for the shapes)."""
    version = RELEASES[trainer]
    require(trainer, version)
    if trainer == "trl":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from trl import DatasetMixtureConfig, GRPOConfig, ModelConfig
            from trl.scripts.grpo import GRPOScriptArguments
        fields = sorted(f.name for f in dataclasses.fields(GRPOConfig) if f.init)
        script = sorted({f.name for cls in (GRPOScriptArguments, ModelConfig, DatasetMixtureConfig)
                         for f in dataclasses.fields(cls) if f.init} - set(fields))
        return {"release": f"trl {version}", "fields": fields, "script_fields": script}
    if trainer == "verl":
        _, text = release_source("verl", "trainer/config/_generated_ppo_trainer.yaml")
        return {"release": f"verl {version}", "defaults": _flatten(yaml.safe_load(text))}
    table = _openrlhf.option_table()
    return {"release": f"openrlhf {version}", "options": {k: _plain(v) for k, v in sorted(table.items())}}


def write(directory: str | None = None) -> list[str]:
    """Regenerate the stored tables; returns the files written."""
    from ..option_tables import DATA

    directory = directory or DATA
    os.makedirs(directory, exist_ok=True)
    written = []
    for trainer, version in RELEASES.items():
        path = os.path.join(directory, f"{trainer}-{version}.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(generate(trainer), fh, indent=1, sort_keys=True)
            fh.write("\n")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - maintenance
    for path in write(sys.argv[1] if len(sys.argv) > 1 else None):
        print(path)
