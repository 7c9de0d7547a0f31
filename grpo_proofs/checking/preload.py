"""What every worker of ``grpo-proofs verify --jobs N`` needs, imported once by the fork server.

:mod:`~grpo_proofs.checking.parallel` names this module as the fork server's only preload: importing
it imports every claim module (torch and SymPy with them) and transformers' GPT-2 model, which the
real-model claims build their policy from. Each worker is a fork of that server and starts with all
of it loaded.

Importing this module also sets Ctrl-C (SIGINT) to be ignored, in the server and so in every worker
forked from it: a Ctrl-C typed in a terminal reaches the whole process group, and the parent alone
answers it (:func:`~grpo_proofs.checking.parallel.run_claims`). No worker prints a traceback,
whatever it was doing when the interrupt came.

The server ends, once the run's process has exited, without tearing down its interpreter: it has
nothing to flush, and unloading torch takes seconds, during which it would still hold the run's
standard output open (a pipe reading ``grpo-proofs verify --jobs 2`` would wait for it). Workers end
as forked processes always do, without running exit handlers. Only the fork server imports this
module.
"""

from __future__ import annotations

import atexit
import importlib
import os
import signal

from . import _MODULES

#: imported here, in this order
MODULES = [*_MODULES, "transformers.models.auto.modeling_auto", "transformers.models.gpt2.modeling_gpt2"]

signal.signal(signal.SIGINT, signal.SIG_IGN)
for _name in MODULES:
    try:
        importlib.import_module(_name)
    except Exception:  # the worker imports it again and reports the error with its claim
        pass

atexit.register(os._exit, 0)
