"""Page kernels forked from a process that has already imported what the pages import.

A page kernel started the usual way (``python -m ipykernel_launcher -f CONNECTION_FILE``) spends
seconds importing IPython, NumPy, SymPy, torch and transformers before it runs the page's first cell,
and every page pays that again. :class:`ForkProvisioner` is a jupyter-client kernel provisioner that
starts the same kernel, with the same arguments, environment and working folder, as a child of a
multiprocessing fork server that has imported the modules named in :func:`start` once. The fork
server never runs a torch operation, so no thread pool is forked.

What a forked kernel shares with one started the usual way, and what it does not:

* the arguments of the kernel command after ``-m ipykernel_launcher``, the environment, the working
  folder and ``sys.path`` (that of a fresh interpreter started with this environment) are the same;
* the kernel leads its own session and process group, as ``start_new_session`` gives the usual one,
  so interrupts and kills reach the kernel and whatever it started, and a Ctrl-C typed at the build
  reaches neither;
* it stops when the fork server does (its parent poller watches the fork server, which exits with the
  build), and runs the ``atexit`` functions of the page (temporary folders) when it shuts down;
* modules in the preload list were imported once, in the fork server, with the build's environment:
  a page that changes an environment variable such a module reads at import time sees no effect.

Only kernels whose command is this interpreter's ``-m ipykernel_launcher`` are forked; any other
kernel command is started by the usual local provisioner.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

#: the provisioner's name in jupyter-client's provisioner factory
NAME = "grpo-proofs-fork"
_LAUNCHER = ["-m", "ipykernel_launcher"]
_KERNEL = "page-kernel"  # the multiprocessing name of a forked kernel
_state: dict = {}


def start(preload: list[str]) -> None:
    """Start the fork server with ``preload`` imported (once per process; later calls do nothing)."""
    if _state:
        return
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    # sys.path of `python -m ipykernel_launcher` in this environment, before the launcher drops its first entry
    probe = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path))"],
                           capture_output=True, text=True, check=True)
    _state.update(context=ctx, path=json.loads(probe.stdout)[1:])
    from multiprocessing import forkserver

    forkserver.ensure_running()
    # the fork server skips a module it cannot import without a word: say so here, while it imports
    missing = [name for name in preload if not _importable(name)]
    if missing:
        raise ImportError(f"cannot preload {', '.join(missing)} for the page kernels: no such module here")


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def register() -> None:
    """Make :class:`ForkProvisioner` the default provisioner of every kernel this process starts."""
    from importlib.metadata import EntryPoint

    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    factory = KernelProvisionerFactory.instance()
    factory.provisioners[NAME] = EntryPoint(NAME, f"{__name__}:ForkProvisioner", KernelProvisionerFactory.GROUP_NAME)
    factory.default_provisioner_name = NAME


def stop() -> None:
    """Kill every kernel forked by this process that is still running, with whatever it started."""
    for child in multiprocessing.active_children():
        if child.name == _KERNEL:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except OSError:  # not yet the leader of its own group
                child.kill()
            child.join()


def _serve_kernel(argv: list[str], cwd: str, env: dict[str, str], path: list[str]) -> None:
    """The kernel process: what ``python -m ipykernel_launcher ARGV`` does, in a fork of the server."""
    os.setsid()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.path[:] = path
    sys.argv[:] = [sys.executable, *_LAUNCHER, *argv]
    from ipykernel import kernelapp

    try:
        # the parent poller watches the fork server, this process's parent
        kernelapp.launch_new_instance(argv=[*argv, f"--IPKernelApp.parent_handle={os.getppid()}"])
    finally:
        atexit._run_exitfuncs()  # a multiprocessing child leaves with os._exit, which skips them


class _Child:
    """The forked kernel behind the part of the :class:`subprocess.Popen` interface a provisioner uses."""

    stdin = stdout = stderr = None

    def __init__(self, process) -> None:
        self._process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self._process.join(timeout)
        return self._process.exitcode

    def send_signal(self, signum: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):
    """A local provisioner that forks ``ipykernel_launcher`` kernels from the fork server (see the module)."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        if not _state or len(cmd) < 3 or cmd[1:3] != _LAUNCHER \
                or os.path.realpath(cmd[0]) != os.path.realpath(sys.executable):
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        cwd = str(kwargs.get("cwd") or Path.cwd())
        process = _state["context"].Process(target=_serve_kernel, args=(cmd[3:], cwd, env, _state["path"]),
                                            name=_KERNEL)
        process.start()
        self.process = _Child(process)
        # the kernel leads its own process group once it has called setsid; until then a signal to
        # the group fails and LocalProvisioner falls back to signalling the process itself
        self.pid = self.pgid = process.pid
        self.cwd = cwd
        return self.connection_info
