"""One CPU thread for the project's own runs of small models.

The real-model checks run small float64 transformers (hidden 32 to 64, a handful of tokens per
completion) and one-logit toys: each matrix product takes microseconds, less than handing part of it
to another thread costs, and on a busy machine the threads wait for one another. Measured on a
2-core machine under load (other jobs running), one intra-op thread against torch's default of two:
one trial of the overshoot premise's learning-rate search 0.09 s against 2.7 s; ``grpo-proofs check
grpo --quick`` 25-29 s against 87 s (12 against 42 CPU seconds); the full ``eq15-gradient`` claim
(G up to 64, float64) 11.8 s against 19.5 s. Float64 results agree to rounding.

:func:`one_thread` sets one thread for the duration of a block and restores the caller's setting
after it, so a program that calls the library keeps its own thread count.

>>> import torch
>>> before = torch.get_num_threads()
>>> with one_thread("cpu"):
...     torch.get_num_threads()
1
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["one_thread"]


@contextlib.contextmanager
def one_thread(device: str = "cpu") -> Iterator[None]:
    """One intra-op CPU thread inside the block when ``device`` is the CPU (nothing changes on CUDA)."""
    if not str(device).startswith("cpu"):
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)
