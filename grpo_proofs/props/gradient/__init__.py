"""The per-token gradient of the unified surrogate (Eq. 13-15; book page ``derivations/gradient.md``).

:mod:`.derive` writes it branch by branch in SymPy, :mod:`.claims` registers its checks.
"""

__all__: list[str] = []
