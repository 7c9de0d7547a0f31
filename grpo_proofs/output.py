"""Writing results: values made JSON-safe and output folders replaced whole.

>>> import numpy as np
>>> to_jsonable({"e": np.float64(1.5), "n": [np.int64(2), float("inf")], "ok": np.bool_(True)})
{'e': 1.5, 'n': [2, 'inf'], 'ok': True}
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from typing import Any

__all__ = ["to_jsonable", "replace_dir"]


def replace_dir(src: str, dest: str) -> None:
    """Put the folder ``src`` at ``dest``, replacing an existing ``dest`` whole (old files never mix in)."""
    dest = os.path.abspath(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    old = None
    if os.path.exists(dest):
        old = tempfile.mkdtemp(prefix=".grpo-proofs-old-", dir=os.path.dirname(dest))
        os.rmdir(old)
        os.rename(dest, old)
    try:
        shutil.move(src, dest)
    except OSError:
        if old is not None and not os.path.exists(dest):
            os.rename(old, dest)
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def to_jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars and arrays as Python values and non-finite floats as text."""
    import numpy as np  # deferred: the command line loads it only when a command writes results

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
