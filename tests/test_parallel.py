"""A Ctrl-C never leaves a lock of an executor's futures taken (grpo_proofs.checking.parallel.wait_for).

``concurrent.futures.wait`` takes each future's lock to add its waiter. A SIGINT whose handler raises
while it holds them leaves them taken, and the executor's thread that next sets or cancels that
future waits forever (``grpo-proofs verify`` then never returned from its Ctrl-C). The tests make the
interrupt come at that moment every time: one future's lock raises SIGINT as it is taken.
"""

import signal
import threading
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, wait

import pytest

from grpo_proofs.checking.parallel import wait_for


class _TrippingLock:
    """An RLock that raises SIGINT in this process the first time it is taken."""

    def __init__(self):
        self._lock, self.tripped = threading.RLock(), False

    def acquire(self, *args, **kwargs):
        got = self._lock.acquire(*args, **kwargs)
        if not self.tripped:
            self.tripped = True
            signal.raise_signal(signal.SIGINT)
        return got

    def release(self):
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()

    def __getattr__(self, name):            # _is_owned, _release_save, _acquire_restore (Condition.wait)
        return getattr(self._lock, name)


def _free_elsewhere(lock) -> bool:
    """Whether another thread can take ``lock`` now (its owner would get it back even if it were held)."""
    got = []

    def probe():
        got.append(lock.acquire(blocking=False))
        if got[0]:
            lock.release()

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return got[0]


@pytest.fixture
def tripping_future():
    """A pending future whose lock raises SIGINT when ``wait`` first takes it, with Python's own SIGINT
    handler installed (as in a terminal's ``grpo-proofs verify``) for the test."""
    assert threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    fut, lock = Future(), _TrippingLock()
    fut._condition = threading.Condition(lock)
    try:
        yield fut, lock
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("return_when", [FIRST_COMPLETED, ALL_COMPLETED])
def test_a_ctrl_c_while_waiting_is_raised_after_the_locks_are_released(tripping_future, return_when):
    fut, lock = tripping_future
    other = Future()
    with pytest.raises(KeyboardInterrupt):
        wait_for([other, fut], return_when)
    assert lock.tripped and _free_elsewhere(lock) and _free_elsewhere(other._condition)
    fut.set_result(1)                                # what the executor's thread does next: it does not block
    assert fut.result(timeout=0) == 1


def test_negative_control_plain_wait_leaves_the_lock_taken(tripping_future):
    """The same interrupt raised inside ``concurrent.futures.wait`` leaves the lock held by this thread."""
    fut, lock = tripping_future
    with pytest.raises(KeyboardInterrupt):
        wait([Future(), fut], timeout=1, return_when=FIRST_COMPLETED)
    assert lock.tripped and not _free_elsewhere(lock)
    while lock._is_owned():                          # give it back, so the test leaves nothing held
        lock.release()


def test_wait_for_returns_what_wait_returns():
    done_one, pending_one = Future(), Future()
    done_one.set_result("a")
    assert wait_for([done_one, pending_one]) == ({done_one}, {pending_one})
    pending_one.set_result("b")
    assert wait_for([done_one, pending_one], ALL_COMPLETED) == ({done_one, pending_one}, set())
    assert wait_for([]) == (set(), set())
    with pytest.raises(ValueError, match="FIRST_COMPLETED or ALL_COMPLETED"):
        wait_for([done_one], "FIRST_EXCEPTION")
