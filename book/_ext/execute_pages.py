"""Sphinx glue that executes the book's pages in parallel, one kernel per page, before Sphinx reads them.

MyST-NB executes a page when Sphinx reads it, one page after another. With ``execute_notebooks: cache``
it instead takes a page's outputs from a jupyter-cache whenever the cache holds that page's code. At
the start of every build this extension empties that cache, then executes every page about to be read
with jupyter-cache's own execution workers (``ExecutionWorkerLocalSerial``; ``ExecutionWorkerTempSerial``
with ``run_in_temp``), one page per thread and as many threads as cores, so that Sphinx reads pages
executed in this same build. Nothing is reused from an earlier build.

* Every kernel of the build, these and those MyST-NB starts itself, is forked from a fork server that
  has imported the modules of ``execute_pages_preload`` once (``fork_kernels``), instead of importing
  them again in each kernel.
* The claims index (``claim_outcomes.INDEX``) is left out: MyST-NB executes it when Sphinx reads it, the
  last page read, after every other page has recorded its claims' outcomes.
* Pages start longest first, so that the longest page does not start last: by the seconds each took in
  the previous build (from the cache about to be emptied), or, when a page has no such record (a first
  build, a new page), by the size of the page files.
* A page that fails here is not cached; MyST-NB then executes it again when Sphinx reads it, and its
  error fails the build with the traceback, exactly as without this extension.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging as sphinx_logging

import fork_kernels
from claim_outcomes import INDEX
from grpo_proofs.checking.parallel import interrupts_deferred, wait_for, worker_count

LOGGER = sphinx_logging.getLogger(__name__)
#: jupyter-cache's reader of MyST-Markdown pages (the one MyST-NB itself registers)
READ_DATA = {"name": "myst_nb_md", "type": "plugin"}


def _is_notebook(path: Path) -> bool:
    from myst_nb.core.read import is_myst_markdown_notebook

    return path.suffix == ".md" and is_myst_markdown_notebook(path.read_text(encoding="utf-8"))


def _last_seconds(cache) -> dict[str, float]:
    """Page path -> execution seconds, from the cache of the previous build."""
    out = {}
    for record in cache.list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        if seconds is not None:
            out[record.uri] = float(seconds)
    return out


def _modules(names: list[str]) -> list[str]:
    """Module names, where an entry ``module:ATTRIBUTE`` stands for the list of names ``module.ATTRIBUTE``.

    >>> _modules(["colorsys", "grpo_proofs.checking.parallel:PRELOAD"])[:2]
    ['colorsys', 'grpo_proofs.props.gradient.claims']
    """
    import importlib

    out = []
    for name in names:
        module, _, attribute = name.partition(":")
        listed = getattr(importlib.import_module(module), attribute, None) if attribute else [name]
        if not isinstance(listed, (list, tuple)):
            raise ImportError(f"{module} has no list {attribute}")
        out += listed
    return out


def _execute(app, env, docnames: list[str]) -> None:
    if app.config.nb_execution_mode != "cache":
        return
    from jupyter_cache import get_cache

    folder = Path(app.config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
    seconds = _last_seconds(get_cache(folder)) if folder.exists() else {}
    shutil.rmtree(folder, ignore_errors=True)
    cache = get_cache(folder)
    paths = [str(Path(env.doc2path(d)).resolve()) for d in docnames if d != INDEX]
    paths = [p for p in paths if _is_notebook(Path(p))]
    known = all(p in seconds for p in paths)
    paths.sort(key=lambda p: -(seconds[p] if known else Path(p).stat().st_size))
    if not paths:
        return
    for path in paths:
        cache.add_nb_to_project(path, read_data=READ_DATA)
    from jupyter_cache.executors.basic import (ExecutionWorkerLocalSerial, ExecutionWorkerTempSerial,
                                               JupyterExecutorLocalSerial, ProcessData)

    try:
        fork_kernels.start(_modules(app.config.execute_pages_preload))
    except ImportError as exc:
        raise ExtensionError(f"execute_pages_preload: {exc}") from None
    fork_kernels.register()
    quiet = logging.getLogger("jupyter_cache.book")  # the workers' own messages: warnings and errors only
    quiet.setLevel(logging.WARNING)
    records = JupyterExecutorLocalSerial(cache, logger=quiet).get_records(filter_uris=paths, clear_tracebacks=True)
    records.sort(key=lambda r: paths.index(r.uri))
    worker = (ExecutionWorkerTempSerial if app.config.nb_execution_in_temp else ExecutionWorkerLocalSerial)(quiet)
    threads = min(worker_count(0), len(records))  # one per core this process may use
    LOGGER.info(f"executing {len(records)} pages on {threads} kernels at a time")
    timeout, allow = app.config.nb_execution_timeout, app.config.nb_execution_allow_errors
    pool = ThreadPoolExecutor(threads, thread_name_prefix="page")
    try:
        with interrupts_deferred():  # submitting takes the pool's lock
            pages = [pool.submit(worker, ProcessData(r.pk, r.uri, cache, timeout, allow)) for r in records]
        wait_for(pages, ALL_COMPLETED)  # a Ctrl-C is raised here, never while a page's lock is held
        results = [page.result() for page in pages]
    except BaseException:  # Ctrl-C: no page starts, the running ones are killed, the build stops now
        pool.shutdown(wait=False, cancel_futures=True)
        quiet.setLevel(logging.CRITICAL)  # the killed pages' errors say nothing new
        fork_kernels.stop()
        raise
    pool.shutdown()
    failed = [uri for code, uri in results if code != 0]
    if failed:
        LOGGER.info(f"{len(failed)} page(s) failed in the pool and run again when read: {', '.join(failed)}")


def setup(app):
    # modules every page kernel starts with (fork_kernels; module:ATTRIBUTE names a list of them);
    # the book's _config.yml names the book's own
    app.add_config_value("execute_pages_preload", ["ipykernel.kernelapp"], "env")
    # after claim_outcomes (priority 500) has pointed the pages at this build's outcome folder
    app.connect("env-before-read-docs", _execute, priority=600)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
