"""Claims run side by side in worker processes (``grpo-proofs verify --jobs N``).

Each worker is a fresh interpreter (the ``spawn`` start method: nothing of the parent's state, no
forked thread pools) that imports the package once and then runs one claim at a time on one thread
(:func:`~grpo_proofs.checking.run_claim`). Claims share nothing but their inputs, so the outcomes are
those of a sequential run; only the order in which they finish differs. Every worker pays the imports
(torch, transformers, SymPy: several seconds), so two workers pay off on a two-core machine only for
runs longer than that.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Iterator, Sequence

__all__ = ["worker_count", "run_claims"]


def worker_count(jobs: int) -> int:
    """``jobs`` workers, or one per CPU core this process may use when ``jobs`` is 0.

    >>> worker_count(3), worker_count(0) >= 1
    (3, True)
    """
    if jobs < 0:
        from ..errors import InputError

        raise InputError(f"--jobs must be 0 (one per core) or a positive number, got {jobs}")
    if jobs:
        return jobs
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(os.cpu_count() or 1, 1)


def _run(label: str, ctx):
    from . import run_claim

    start = time.perf_counter()
    out = run_claim(label, ctx)
    return out, time.perf_counter() - start


def run_claims(jobs: Sequence[tuple[str, object]], workers: int) -> Iterator[tuple[int, object, float]]:
    """Run ``jobs`` = [(label, context), ...] on ``workers`` processes; yield (index into ``jobs``,
    outcome, seconds) as each finishes. Closing the generator (or an interrupt) cancels what has not
    started and stops the workers."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    pending: dict[Future, int] = {}
    try:
        pending = {pool.submit(_run, label, ctx): k for k, (label, ctx) in enumerate(jobs)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                k = pending.pop(fut)
                out, seconds = fut.result()
                yield k, out, seconds
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=not pending, cancel_futures=True)
