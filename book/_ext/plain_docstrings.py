"""Sphinx glue for the project's docstrings, which are written to read well in a terminal.

The docstrings carry plain-text math (``|o_i|``, ``pi_theta``) and Google-style ``Args:`` sections.
Two adjustments let autodoc render them without changing them:

* ``|`` outside inline literals and doctest lines is escaped: reStructuredText would read
  ``|o_i|`` as a substitution reference. So is every ``*`` that is not part of ``*emphasis*`` or
  ``**strong**`` (``loss(x, *, sigma)``, ``G*L_i*sigma``, ``x ** 2``).
* napoleon parses Google sections of functions, classes and modules, but not the one-line
  ``#:`` comments of module constants: napoleon would read ``"symbolic identity: the
  difference..."`` as a type annotation ``symbolic identity``.
"""

from __future__ import annotations

import re

from sphinx.ext.napoleon import _process_docstring

_LITERAL = re.compile(r"(``.+?``)")
_PLAIN_WHAT = {"attribute", "data", "property"}


def _escape_bars(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith((">>>", "...", "|", "+-", "+=")):  # doctests and grid tables stay as they are
        return line
    indent = line[: len(line) - len(stripped)]
    bullet = "* " if stripped.startswith("* ") else ""  # a list item keeps its bullet
    parts = _LITERAL.split(stripped[len(bullet):])
    return indent + bullet + "".join(p if i % 2 else _escape_text(p) for i, p in enumerate(parts))


#: *emphasis* or **strong** as reStructuredText reads it; every other * is a literal star
_EMPHASIS = re.compile(r"(?<![\w*\\])(\*{1,2})(?=[^\s*,)\]])(.+?)(?<=[^\s*\\])\1(?![\w*])")


def _escape_text(text: str) -> str:
    text = re.sub(r"(?<!\\)\|", r"\\|", text)
    out, last = [], 0
    for m in _EMPHASIS.finditer(text):
        out += [text[last:m.start()].replace("*", "\\*"), m.group()]
        last = m.end()
    out.append(text[last:].replace("*", "\\*"))
    return "".join(out)


def _escape(app, what, name, obj, options, lines) -> None:
    in_literal_block = False
    for k, line in enumerate(lines):
        if line.rstrip().endswith("::"):
            in_literal_block = True
            continue
        if in_literal_block and line.strip() and not line.startswith((" ", "\t")):
            in_literal_block = False
        if not in_literal_block:
            lines[k] = _escape_bars(line)


def _napoleon_except_constants(app, what, name, obj, options, lines) -> None:
    if what not in _PLAIN_WHAT:
        _process_docstring(app, what, name, obj, options, lines)


def setup(app):
    app.setup_extension("sphinx.ext.napoleon")
    listeners = app.events.listeners.get("autodoc-process-docstring", [])
    for listener in list(listeners):
        if listener.handler is _process_docstring:
            app.disconnect(listener.id)
    app.connect("autodoc-process-docstring", _escape, priority=400)
    app.connect("autodoc-process-docstring", _napoleon_except_constants)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
