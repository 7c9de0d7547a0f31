"""The one exception type for bad input.

Every public function and CLI command raises :class:`InputError` for input a user can fix
(G < 2, NaN rewards, an unknown variant, ...). The CLI turns it into one line on stderr and
exit code 2; nothing else is printed and nothing is written.
"""

from __future__ import annotations

__all__ = ["InputError", "shown", "kind_of"]


class InputError(ValueError):
    """Input the caller can fix; the message says what is wrong and what to do."""


def shown(value) -> str:
    """A value as an error line shows it, in the words of a YAML/CLI user (no Python names).

    >>> shown(None), shown(True), shown("abc"), shown([1, None]), shown(0.5)
    ('nothing (an empty value)', 'true', "'abc'", '[1, null]', '0.5')
    """
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join("null" if x is None else shown(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {'null' if x is None else shown(x)}" for k, x in value.items()) + "}"
    return str(value)


def kind_of(value) -> str:
    """What kind of value a user gave, in plain words.

    >>> kind_of(None), kind_of({}), kind_of([1]), kind_of("x"), kind_of(3)
    ('nothing', 'a mapping', 'a list', 'text', 'a number')
    """
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float)):
        return "a number"
    return "a " + type(value).__name__
