import os
import time
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# One intra-op thread, here and in the processes the tests start (the book's page kernels, the
# command-line tests' subprocesses): the tests run small models, which one thread runs fastest
# (grpo_proofs.runtime.threads), and under pytest-xdist (`make test`) each worker has one core.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Property tests replay: the "ci" profile (the default) draws the same examples on every run and prints
# the @reproduce_failure blob of a failing one; HYPOTHESIS_PROFILE=dev draws fresh random examples.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _group_now(pgid: int) -> list[str]:
    """The processes of group ``pgid`` that have not ended (read from /proc; zombies count as ended)."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:                              # it ended while we looked
            continue
        state, _ppid, group = text.rpartition(")")[2].split()[:3]
        if int(group) == pgid and state != "Z":
            running.append(text)
    return running


def _running_in_group(pgid: int, grace: float = 10.0) -> list[str]:
    """The processes of group ``pgid`` still running ``grace`` seconds from now, or none as soon as none is.

    A process that has closed its files (so a reader of its pipes saw them end) can still be tearing down
    its memory, running, for a moment; one that is still there after ``grace`` seconds was left behind.
    """
    deadline = time.monotonic() + grace
    while (running := _group_now(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


@pytest.fixture
def running_in_group():
    """``running_in_group(pgid)``: the /proc stat lines of the processes of that group still running after a
    short grace (:func:`_running_in_group`); an empty list once every one has ended."""
    return _running_in_group
