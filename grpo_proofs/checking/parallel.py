"""Claims run side by side in worker processes (``grpo-proofs verify --jobs N``).

Workers come from a fork server (the ``forkserver`` start method): a fresh interpreter, started once
per process, that imports every claim module, torch, SymPy and transformers' GPT-2 model
(:data:`PRELOAD`) and runs nothing else. Each worker is a fork of it, so it starts with those imports
done (3-8 s on a two-core machine, paid once instead of once per worker) and with none of the
parent's state: the server never ran a torch operation, so no thread pool or CUDA context is forked.
A worker runs one claim at a time on one thread (:func:`~grpo_proofs.checking.run_claim`). Claims
share nothing but their inputs, so the outcomes are those of a sequential run; only the order in
which they finish differs.

The server starts with Ctrl-C (SIGINT) ignored, and so does every worker forked from it: a Ctrl-C
typed in a terminal reaches the whole process group, and the parent alone answers it
(:func:`run_claims`), so no worker prints a traceback, whatever it was doing when the interrupt came.
The parent raises it only where no lock of the pool is held (:func:`wait_for`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Iterable, Iterator, Sequence

from . import _MODULES

__all__ = ["worker_count", "run_claims", "start_server", "wait_for", "interrupts_deferred", "PRELOAD"]


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


#: what the fork server imports before it forks the first worker: the claim modules (torch and SymPy
#: with them) and the model module the real-model claims build their policy from
PRELOAD = [*_MODULES, "transformers.models.auto.modeling_auto", "transformers.models.gpt2.modeling_gpt2"]


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


_server_started = False


def start_server() -> None:
    """Start the fork server, with Ctrl-C ignored, unless this process started it already. Called
    early, its imports run while this process prepares the run (the caller's own import of the
    registry, for one); :func:`run_claims` calls it too and then forks its workers from it."""
    global _server_started
    if _server_started:
        return                          # (a Ctrl-C must not fall into the window below twice)
    from multiprocessing import forkserver

    _context()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None   # the server inherits it
    try:
        forkserver.ensure_running()
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    _server_started = True


def _run(k: int, job: tuple[str, object]) -> tuple[int, object, float]:
    from . import run_claim

    label, ctx = job
    start = time.perf_counter()
    out = run_claim(label, ctx)
    return k, out, time.perf_counter() - start


def run_claims(jobs: Sequence[tuple[str, object]], workers: int) -> Iterator[tuple[int, object, float]]:
    """Run ``jobs`` = [(label, context), ...] on ``workers`` processes; yield (index into ``jobs``,
    outcome, seconds) as each finishes, one claim per worker at a time.

    Closing the generator, or a Ctrl-C that reaches this process, cancels every claim that has not
    started and waits for the running ones to finish. The workers themselves ignore Ctrl-C
    (:func:`start_server`), so an interrupt sent to the whole process group is answered by this
    process alone, and no worker prints a traceback. A worker that dies (killed,
    out of memory) stops the run with :class:`concurrent.futures.process.BrokenProcessPool`.
    """
    start_server()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context())
    try:
        with interrupts_deferred():     # the first submits fork the workers
            pending = {pool.submit(_run, k, job) for k, job in enumerate(jobs)}
        while pending:
            done, pending = wait_for(pending)
            for fut in done:
                yield fut.result()
    finally:
        with interrupts_deferred():     # the pool's own locks change hands while it shuts down
            pool.shutdown(wait=True, cancel_futures=True)


#: seconds between two looks at the interrupt flag while :func:`wait_for` waits
POLL = 0.2


def wait_for(futures: Iterable[Future], return_when: str = FIRST_COMPLETED) -> tuple[set[Future], set[Future]]:
    """:func:`concurrent.futures.wait` (``FIRST_COMPLETED`` or ``ALL_COMPLETED``), with a Ctrl-C that comes
    while it waits raised as :class:`KeyboardInterrupt` once ``wait`` has returned, within :data:`POLL` s.

    ``wait`` takes every future's lock to add its waiter and takes them again to remove it. Raised
    in between, the interrupt would leave a lock taken: the executor's thread that next sets or cancels
    that future would wait for it forever, and so would the shutdown that waits for that thread.
    """
    if return_when not in (FIRST_COMPLETED, ALL_COMPLETED):
        raise ValueError(f"return_when must be FIRST_COMPLETED or ALL_COMPLETED, got {return_when!r}")
    pending = set(futures)
    done: set[Future] = set()
    while pending:
        with interrupts_deferred():
            finished, pending = wait(pending, timeout=POLL, return_when=return_when)
        done |= finished
        if done and return_when == FIRST_COMPLETED:
            break
    return done, pending


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A Ctrl-C inside the block is raised as :class:`KeyboardInterrupt` when the block ends (in the main
    thread, where Python's own handler answers SIGINT; elsewhere the block runs as it is).

    For code that must not stop halfway: starting a worker waits for the fork server's imports, and a
    worker whose parent stopped while it was being forked would fail with a traceback; submitting to
    an executor, waiting on its futures (:func:`wait_for`) and shutting it down take its locks."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield                           # SIGINT is ignored or handled elsewhere: nothing to defer
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
