"""The book: claim labels are theorem labels, every page is in the toc, and the book builds.

A claim's label is the ``:label:`` of exactly one theorem-like box (``{prf:theorem}``,
``{prf:proposition}``, ...) on its page ``derivations/<claim.page>.md``, and every such label on
a page is a registered claim. The build test runs ``jupyter-book build`` exactly as ``make book``
does (every page executed, offline, warnings as errors) into a temporary folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from grpo_proofs.checking import all_claims
from grpo_proofs.checking.parallel import worker_count

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
DERIVATIONS = ROOT / "derivations"

#: directive kinds whose label is a claim label (statements, not definitions or remarks)
STATEMENTS = ("theorem", "proposition", "lemma", "corollary", "conjecture", "criterion", "property", "observation")

_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{prf:(?P<kind>[\w-]+)\}[^\n]*\n(?P<options>(?::[\w-]+:[^\n]*\n)*)", re.M)

CLAIMS = all_claims()


def pages() -> list[Path]:
    """The book's pages in derivations/ (files starting with _ are templates, never built)."""
    return sorted(p for p in DERIVATIONS.glob("*.md") if not p.name.startswith("_"))


def statement_labels(text: str) -> list[str]:
    """The :label: of every theorem-like {prf:...} directive of a MyST page."""
    labels = []
    for m in _OPEN.finditer(text):
        if m.group("kind") in STATEMENTS:
            found = re.search(r"^:label:\s*(\S+)\s*$", m.group("options"), re.M)
            labels.append(found.group(1) if found else "")
    return labels


def all_statement_labels() -> dict[str, list[str]]:
    """label -> the pages (stems) that carry it."""
    where: dict[str, list[str]] = {}
    for page in pages():
        for label in statement_labels(page.read_text(encoding="utf-8")):
            where.setdefault(label, []).append(page.stem)
    return where


def toc_files(node) -> list[str]:
    out = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(node["file"])
        if "root" in node:
            out.append(node["root"])
        for value in node.values():
            out += toc_files(value)
    elif isinstance(node, list):
        for item in node:
            out += toc_files(item)
    return out


def test_statement_label_parser():
    text = "# t\n\n```{prf:theorem} A title\n:label: eq15-gradient\n:nonumber:\n\nBody\n```\n\n" \
           ":::{prf:proposition}\n:class: x\n:label: prop1-a\n:::\n\n```{prf:definition} D\n:label: not-a-claim\n```\n"
    assert statement_labels(text) == ["eq15-gradient", "prop1-a"]


def test_every_page_label_is_a_registered_claim():
    where = all_statement_labels()
    assert "" not in where, f"a theorem box without :label: on page(s) {where.get('')}"
    unknown = {label: p for label, p in where.items() if label not in CLAIMS}
    assert not unknown, f"theorem labels that are no registered claim: {unknown}"
    repeated = {label: p for label, p in where.items() if len(p) > 1}
    assert not repeated, f"labels on more than one theorem box: {repeated}"


@pytest.mark.parametrize("label", list(CLAIMS))
def test_claim_has_its_page(label):
    c = CLAIMS[label]
    page = DERIVATIONS / f"{c.page}.md"
    assert page.is_file(), f"claim {label!r}: its page derivations/{c.page}.md does not exist"
    labels = statement_labels(page.read_text(encoding="utf-8"))
    assert labels.count(label) == 1, f"claim {label!r}: derivations/{c.page}.md must carry it as one theorem label"
    assert all_statement_labels()[label] == [c.page], f"claim {label!r} is labelled on another page too"


def test_pages_and_toc_agree():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
    listed = toc_files(toc)
    for entry in listed:
        assert (BOOK / f"{entry}.md").is_file(), f"_toc.yml lists {entry!r}, which does not exist"
    missing = [p.stem for p in pages() if f"derivations/{p.stem}" not in listed]
    assert not missing, f"pages not in book/_toc.yml: {missing}"
    assert (BOOK / "derivations").resolve() == DERIVATIONS.resolve(), "book/derivations must link to ../derivations"


class _CellOutputs(HTMLParser):
    """Collects the text of every cell output block (``<div class="output ...">``) of a built page."""

    def __init__(self):
        super().__init__()
        self.stack: list[str | None] = []      # one entry per open div: its output kind, or None
        self.found: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag != "div":
            return
        classes = (dict(attrs).get("class") or "").split()
        kind = None
        if classes[:1] == ["output"] and not any(k for k in self.stack):
            kind = "stderr" if "stderr" in classes else "output"
            self.found.append([kind, ""])
        self.stack.append(kind)

    def handle_endtag(self, tag):
        if tag == "div" and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if any(k for k in self.stack):
            self.found[-1][1] += data


def cell_outputs(page_html: str) -> list[tuple[str, str]]:
    """(kind, text) of each cell output block of a built page; kind is "stderr" or "output"."""
    parser = _CellOutputs()
    parser.feed(page_html)
    return [(k, t) for k, t in parser.found]


def test_cell_outputs_parser_sees_stderr_and_text():
    page = ('<div class="cell_output docutils container"><div class="output stderr highlight">'
            '<pre>FutureWarning: x</pre></div><div class="output stream"><pre>ok</pre></div></div>')
    assert cell_outputs(page) == [("stderr", "FutureWarning: x"), ("output", "ok")]


@pytest.mark.slow
def test_book_builds(tmp_path):
    """`jupyter-book build` with every page executed, -W -n --keep-going: no warning, no failed cell."""
    exe = Path(sys.executable).parent / "jupyter-book"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg",
               IPYTHONDIR=str(BOOK / "_ipython"))
    start = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "build", str(BOOK), "--path-output", str(tmp_path), "-W", "-n", "--keep-going"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    seconds = time.perf_counter() - start
    print(f"book build: {seconds:.0f} s (rc {proc.returncode})")
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"

    html = tmp_path / "_build" / "html"
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
    for entry in toc_files(toc):
        assert (html / f"{entry}.html").is_file(), f"no HTML for {entry}"
    # MathJax is bundled: pages load it from _static, never from a CDN
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    for page in html.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "cdn" not in text.lower(), f"{page.relative_to(html)} references a CDN"
    # library noise never reaches a reader: no cell wrote to stderr, no cell output names a warning
    for entry in toc_files(toc):
        outputs = cell_outputs((html / f"{entry}.html").read_text(encoding="utf-8"))
        assert not [o for o in outputs if o[0] == "stderr"], f"{entry}: a cell wrote to stderr"
        noisy = [o[1][:200] for o in outputs if "warning" in o[1].lower()]
        assert not noisy, f"{entry}: a cell output mentions a warning: {noisy}"
    assert "Kernel is running over TCP" not in proc.stderr + proc.stdout
    # each claim runs once per build: the pages record the outcomes of the claims they run, the claims
    # index (read last) reads those back and runs only the rest, so every claim is recorded exactly once
    outcomes = tmp_path / "_build" / "claim-outcomes"
    assert {p.stem for p in outcomes.glob("*.json")} == set(CLAIMS)
    index = (html / "derivations" / "claims.html").read_text(encoding="utf-8")
    by_pages, here = index.count("<p>its page</p>"), index.count("<p>this page</p>")
    assert by_pages > 0 and by_pages + here == len(CLAIMS), (by_pages, here, len(CLAIMS))


def _small_book(folder: Path, pages: dict[str, str], **config_values) -> Path:
    """A book in ``folder`` with the project's execution settings and extensions, the given pages
    (name -> code of its one cell) and Sphinx ``config_values``."""
    header = "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n" \
             "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
    folder.mkdir()
    config = yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))
    small = {"title": "small", "only_build_toc_files": True, "execute": config["execute"],
             "sphinx": {"local_extensions": dict.fromkeys(("claim_outcomes", "execute_pages"), str(BOOK / "_ext")),
                        "config": config_values}}
    (folder / "_config.yml").write_text(yaml.safe_dump(small), encoding="utf-8")
    toc = {"format": "jb-book", "root": "intro", "chapters": [{"file": name} for name in pages]}
    (folder / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")
    (folder / "intro.md").write_text("# Small\n", encoding="utf-8")
    for name, code in pages.items():
        cell = f"```{{code-cell}} ipython3\n{code}\n```\n"
        (folder / f"{name}.md").write_text(f"{header}# {name}\n\n{cell}", encoding="utf-8")
    return folder


def _build(book: Path, out: Path, **env) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "jupyter-book"
    return subprocess.run([str(exe), "build", str(book), "--path-output", str(out), "--all", "-W", "--keep-going"],
                          cwd=book, env=dict(os.environ, IPYTHONDIR=str(BOOK / "_ipython"), **env), capture_output=True,
                          text=True, timeout=600)


def test_pages_are_executed_by_the_pool_in_this_build(tmp_path):
    """The pages Sphinx reads were executed in this build, by the parallel pool: twice built, each build
    shows its own value of an environment variable the page prints."""
    book = _small_book(tmp_path / "book", {"one": "import os\nprint('value', os.environ['SMALL_BOOK_VALUE'])",
                                           "two": "print('two ran')"})
    for value in ("first-build", "second-build"):
        proc = _build(book, tmp_path / "out", SMALL_BOOK_VALUE=value)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-4000:]
        assert "executing 2 pages on" in log and log.count("Using cached notebook") == 2, log[-4000:]
        assert f"value {value}" in (tmp_path / "out" / "_build" / "html" / "one.html").read_text(encoding="utf-8")


def test_a_page_that_fails_in_the_pool_fails_the_build(tmp_path):
    """A cell that raises, and a kernel that exits in the middle of a cell: each page fails in the pool,
    again when read, and the build fails."""
    book = _small_book(tmp_path / "book", {"good": "print('fine')", "bad": "raise ValueError('planted failure')",
                                           "dies": "import os\nos._exit(3)"})
    proc = _build(book, tmp_path / "out")
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-4000:]
    assert "planted failure" in log and "2 page(s) failed in the pool" in log, log[-4000:]
    assert "dies.md" in log.split("failed in the pool")[1].splitlines()[0] and "Kernel died" in log, log[-4000:]


def _sleeper(pids: Path, seconds: int) -> str:
    """The code of a page that appends its kernel's pid to ``pids`` and then sleeps."""
    return f"import os, time\nopen({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\ntime.sleep({seconds})"


#: a page that says whether a module was imported before its first cell, and where its kernel runs
_WHERE = "import os, sys\nprint('preloaded', 'colorsys' in sys.modules, 'cwd', os.getcwd(),\n" \
         "      'group', os.getpgid(0) == os.getpid())"


@pytest.mark.parametrize("preload", [["ipykernel.kernelapp", "colorsys"], ["ipykernel.kernelapp"]])
def test_page_kernels_start_with_the_preloaded_modules(tmp_path, preload):
    """A kernel is forked from the fork server: a module named in execute_pages_preload is already
    imported when the first cell runs; the control, without it, has not imported it. Either way the
    kernel runs in the page's folder and leads its own process group, as a kernel started by Popen."""
    book = _small_book(tmp_path / "book", {"one": _WHERE, "two": "print('two ran')"}, execute_pages_preload=preload)
    proc = _build(book, tmp_path / "out")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    html = (tmp_path / "out" / "_build" / "html" / "one.html").read_text(encoding="utf-8")
    assert f"preloaded {'colorsys' in preload} cwd {book} group True" in html, html[-3000:]


@pytest.mark.parametrize("preload", [["nosuch_module_for_the_test"], ["grpo_proofs.checking.parallel:NOSUCH"]])
def test_a_preload_that_cannot_be_imported_stops_the_build(tmp_path, preload):
    """The fork server would skip it without a word; the build stops with an error naming it instead."""
    book = _small_book(tmp_path / "book", {"one": "print(1)"}, execute_pages_preload=preload)
    proc = _build(book, tmp_path / "out")
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-4000:]
    line = next((l for l in log.splitlines() if "ExtensionError: execute_pages_preload: " in l), "")
    assert preload[0].split(":")[-1] in line, log[-4000:]


def test_a_cell_past_the_timeout_fails_the_build_and_leaves_no_kernel(tmp_path, running_in_group):
    """A cell that runs past execute.timeout fails the page, and its forked kernel is shut down: the
    build ends before the cell could have (a kernel left running would hold the build until it ends),
    and no kernel process is left."""
    pids = tmp_path / "pids"
    book = _small_book(tmp_path / "book", {"slow": _sleeper(pids, 120)})
    config = yaml.safe_load((book / "_config.yml").read_text(encoding="utf-8"))
    config["execute"]["timeout"] = 3
    (book / "_config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    start = time.perf_counter()
    proc = _build(book, tmp_path / "out")
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "timed out" in log.lower(), log[-4000:]
    assert time.perf_counter() - start < 120, "the build waited for the cell"
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2, started  # in the pool, then again when MyST-NB reads the failed page
    assert not [pid for pid in started if running_in_group(pid)]  # each kernel leads its own group


def test_ctrl_c_stops_the_build_and_its_kernels(tmp_path, running_in_group):
    """Ctrl-C while pages run: the build stops at once (no waiting page starts, the running kernels are
    killed), with no traceback and no kernel left. The pages would otherwise sleep five minutes."""
    pids = tmp_path / "pids"
    book = _small_book(tmp_path / "book", {name: _sleeper(pids, 300) for name in "abc"})
    exe = Path(sys.executable).parent / "jupyter-book"
    # as from a terminal: Ctrl-C (SIGINT) not ignored, whatever this process inherited
    start = f"import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv({str(exe)!r}, " \
            f"[{str(exe)!r}, 'build', {str(book)!r}, '--all', '--path-output', {str(tmp_path / 'out')!r}])"
    proc = subprocess.Popen([sys.executable, "-c", start], cwd=book,
                            env=dict(os.environ, IPYTHONDIR=str(BOOK / "_ipython")), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (pids.exists() and len(pids.read_text().split()) == min(worker_count(0), 3)):  # pages at a time
            assert proc.poll() is None and time.monotonic() < deadline, "the pages did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        log, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and "Interrupted" in log and "Traceback" not in log, log[-4000:]
    assert not [pid for pid in map(int, pids.read_text().split()) if running_in_group(pid)]
