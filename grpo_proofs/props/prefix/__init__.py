"""Proposition 1: the net coefficient on a shared prefix (book page ``derivations/prefix.md``).

:mod:`.derive` derives it in SymPy, :mod:`.api` computes it in numbers, :mod:`.model` and :mod:`.drift` run
it on a real transformer, :mod:`.confirm` confirms a user's variant, the ``claims*`` modules register it.
"""

__all__: list[str] = []
