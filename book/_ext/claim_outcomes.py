"""Sphinx glue so that each claim runs once per build.

The pages run the claims they state; the claims index lists every claim. At the start of a build
this extension points ``GRPO_PROOFS_RECORD`` (read by ``grpo_proofs.checking.run_claim``) at an
empty folder beside the output, which the page kernels inherit, and it reads the claims index
after every other page, so the index finds the outcomes the pages recorded in this same build and
runs only the claims no page ran. The page kernels also inherit ``OMP_NUM_THREADS=1`` (unless it is
set already): the pages run small models, which one thread runs fastest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: the page that reads the recorded outcomes (read last)
INDEX = "derivations/claims"
#: same name as grpo_proofs.checking.record.ENV (the book's extensions do not import the package)
ENV = "GRPO_PROOFS_RECORD"


def _fresh_folder(app) -> None:
    folder = Path(app.outdir).parent / "claim-outcomes"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[ENV] = str(folder)
    # the pages run small models: one intra-op thread each (see grpo_proofs.runtime.threads)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _index_last(app, env, docnames: list[str]) -> None:
    if INDEX in docnames:
        docnames.remove(INDEX)
        docnames.append(INDEX)


def setup(app):
    app.connect("builder-inited", _fresh_folder)
    app.connect("env-before-read-docs", _index_last)
    # the index must be read after the pages: reading in parallel would break that order
    return {"parallel_read_safe": False, "parallel_write_safe": True}
