"""Argument parsing and output helpers shared by the subcommands.

Output folders (``--plot DIR``, ``--report DIR``) are checked before any work starts
(:func:`check_out_dir`): a folder that cannot be created or written is refused in one line, and
a ``--report`` folder that already holds files is refused unless ``--force`` is given
(:func:`check_report_dir`). A write that still fails after the results were computed is reported
by :func:`write_failed` after the results are printed, so nothing computed is lost.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from typing import Any

from ..errors import InputError
from ..output import to_jsonable
from ..runtime.choices import require_cuda

__all__ = ["floats", "ints", "float_lists", "emit_json", "add_json_flag", "add_device_flag", "check_out_dir",
           "check_report_dir", "write_failed", "whole", "number", "cuda_or_fail"]


def cuda_or_fail(device: str) -> None:
    """Refuse ``--device cuda`` on a machine without CUDA, in one line."""
    require_cuda(device, flag=True)


def floats(text: str, what: str = "value") -> list[float]:
    """'1,0,0.5' -> [1.0, 0.0, 0.5]; a clear error for anything else (an empty field included).

    >>> floats("1, 0,0.5")
    [1.0, 0.0, 0.5]
    """
    parts = text.split(",")
    if not text.strip():
        raise InputError(f"{what} is empty; give comma-separated numbers like 1,0,0,1")
    blank = [i + 1 for i, p in enumerate(parts) if not p.strip()]
    if blank:
        raise InputError(f"{what}: field {blank[0]} of {text!r} is empty; give one number between every pair of commas")
    try:
        return [float(p) for p in parts]
    except ValueError:
        bad = next(p.strip() for p in parts if not _is_float(p))
        raise InputError(f"{what} must be comma-separated numbers; {bad!r} in {text!r} is not a number") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def number(text, what: str, *, kind=float, lo=None, hi=None, open_lo=False, open_hi=False):
    """One finite number from a flag's text, in [lo, hi] (or open at either end); one line otherwise.

    >>> number("1e-8", "--eps", lo=0, open_lo=True)
    1e-08
    """
    try:
        val = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(val):
        raise InputError(f"{what} must be a finite number, got {text!r}")
    if kind is int:
        if not val.is_integer():
            raise InputError(f"{what} must be a whole number, got {text!r}")
        val = int(val)
    below = lo is not None and (val <= lo if open_lo else val < lo)
    above = hi is not None and (val >= hi if open_hi else val > hi)
    if below or above:
        if hi is None:
            rng = f"{'>' if open_lo else '>='} {lo}"
        elif lo is None:
            rng = f"{'<' if open_hi else '<='} {hi}"
        else:
            rng = f"in {'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}"
        raise InputError(f"{what} must be {rng}, got {text!r}")
    return val


def whole(lo: int, hi: int | None = None):
    """An argparse ``type`` for a whole number in [lo, hi] (a refused value is one line)."""

    def parse(text: str) -> int:
        try:
            return number(text, "the value", kind=int, lo=lo, hi=hi)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace("the value ", "", 1)) from None

    parse.__name__ = "whole number"
    return parse


def _nearest_existing(path: str) -> str:
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return probe


def check_out_dir(path: str, flag: str) -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created or written.

    The test is real: a temporary folder is created (and removed) in the nearest existing folder
    on the way to ``path``, or in ``path`` itself when it exists.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{flag} {path!r} exists and is not a folder; give a folder")
    base = _nearest_existing(path)
    if not os.path.isdir(base):
        raise InputError(f"{flag} {path!r}: {base!r} is not a folder, so the folder cannot be created there")
    try:
        probe = tempfile.mkdtemp(prefix=".grpo-proofs-probe-", dir=base)
    except OSError as exc:
        raise InputError(f"{flag} {path!r}: cannot create or write a folder there ({exc.strerror or exc})") from None
    os.rmdir(probe)


def check_report_dir(path: str, force: bool, flag: str = "--report") -> None:
    """:func:`check_out_dir`, and refuse a folder that already holds files unless ``force``.

    With ``force`` the folder will be replaced whole (:func:`replace_dir`); only a folder of plain
    files is replaced, never one holding subfolders.
    """
    check_out_dir(path, flag)
    if not os.path.isdir(path):
        return
    names = sorted(os.listdir(path))
    if not names:
        return
    if not force:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise InputError(f"{flag} {path!r} already holds files ({shown}); choose an empty or new folder, or add "
                         "--force to replace its contents with this report")
    subdirs = [nm for nm in names if os.path.isdir(os.path.join(path, nm)) and not os.path.islink(os.path.join(path, nm))]
    if subdirs:
        raise InputError(f"{flag} {path!r} holds subfolders ({', '.join(subdirs[:3])}); --force replaces a folder of "
                         "report files only: give an empty or new folder")


def write_failed(command: str, what: str, exc: OSError) -> int:
    """One line on stderr for a write that failed after the results were printed; exit code 2."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    print(f"grpo-proofs {command}: error: could not write {what}: {reason}{where}; the results above were "
          "computed but not saved", file=sys.stderr)
    return 2


def ints(text: str, what: str = "value") -> list[int]:
    vals = floats(text, what)
    if any(v != int(v) for v in vals):
        raise InputError(f"{what} must be whole numbers, got {text!r}")
    return [int(v) for v in vals]


def float_lists(text: str, what: str = "value") -> list[list[float]]:
    """'0.1,0.2;0,0.3' -> [[0.1, 0.2], [0.0, 0.3]] (one list per completion, ';'-separated)."""
    return [floats(part, f"{what} (completion {i + 1})") for i, part in enumerate(text.split(";"))]


def emit_json(payload: Any) -> None:
    json.dump(to_jsonable(payload), sys.stdout, indent=2)
    sys.stdout.write("\n")


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")


def add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where real-model checks run (default cpu)")
