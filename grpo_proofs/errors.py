"""The one exception type for bad input.

Every public function and CLI command raises :class:`InputError` for input a user can fix
(G < 2, NaN rewards, an unknown variant, ...). The CLI turns it into one line on stderr and
exit code 2; nothing else is printed and nothing is written.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Input the caller can fix; the message says what is wrong and what to do."""
