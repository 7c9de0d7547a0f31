"""Argument parsing and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["floats", "ints", "float_lists", "emit_json", "add_json_flag", "add_device_flag", "to_jsonable"]


def floats(text: str, what: str = "value") -> list[float]:
    """'1,0,0.5' -> [1.0, 0.0, 0.5]; a clear error for anything else."""
    try:
        out = [float(p) for p in text.split(",") if p.strip() != ""]
    except ValueError:
        raise InputError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not out:
        raise InputError(f"{what} is empty; give comma-separated numbers like 1,0,0,1")
    return out


def ints(text: str, what: str = "value") -> list[int]:
    vals = floats(text, what)
    if any(v != int(v) for v in vals):
        raise InputError(f"{what} must be whole numbers, got {text!r}")
    return [int(v) for v in vals]


def float_lists(text: str, what: str = "value") -> list[list[float]]:
    """'0.1,0.2;0,0.3' -> [[0.1, 0.2], [0.0, 0.3]] (one list per completion, ';'-separated)."""
    return [floats(part, what) for part in text.split(";")]


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else str(v)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def emit_json(payload: Any) -> None:
    json.dump(to_jsonable(payload), sys.stdout, indent=2)
    sys.stdout.write("\n")


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")


def add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where real-model checks run (default cpu)")
