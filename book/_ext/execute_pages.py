"""Sphinx glue that executes the book's pages in parallel, one kernel per page, before Sphinx reads them.

MyST-NB executes a page when Sphinx reads it, one page after another. With ``execute_notebooks: cache``
it instead takes a page's outputs from a jupyter-cache whenever the cache holds that page's code. At
the start of every build this extension empties that cache, then executes every page about to be read
with jupyter-cache's ``local-parallel`` executor (a process pool, one worker per core; ``temp-parallel``
with ``run_in_temp``), so that Sphinx reads pages executed in this same build. Nothing is reused from
an earlier build.

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
import os
import shutil
from pathlib import Path

from sphinx.util import logging as sphinx_logging

from claim_outcomes import INDEX

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


def _execute(app, env, docnames: list[str]) -> None:
    if app.config.nb_execution_mode != "cache":
        return
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

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
    quiet = logging.getLogger("jupyter_cache.book")  # the pool's own messages: warnings and errors only
    quiet.setLevel(logging.WARNING)
    LOGGER.info(f"executing {len(paths)} pages on {os.cpu_count()} processes")
    executor = "temp-parallel" if app.config.nb_execution_in_temp else "local-parallel"  # as MyST-NB would run them
    result = load_executor(executor, cache, logger=quiet).run_and_cache(
        filter_uris=paths, timeout=app.config.nb_execution_timeout, allow_errors=app.config.nb_execution_allow_errors)
    failed = result.excepted + result.errored
    if failed:
        LOGGER.info(f"{len(failed)} page(s) failed in the pool and run again when read: {', '.join(failed)}")


def setup(app):
    # after claim_outcomes (priority 500) has pointed the pages at this build's outcome folder
    app.connect("env-before-read-docs", _execute, priority=600)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
