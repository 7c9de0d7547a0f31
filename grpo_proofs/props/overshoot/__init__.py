"""Propositions 3 and 7: momentum carries Adam past the clip (book page ``derivations/overshoot.md``).

:mod:`.api` computes the overshoot ratios and the clipped toy, :mod:`.model` and :mod:`.premise` run a real
transformer, :mod:`.verdict` and :mod:`.confirm` serve ``check``, :mod:`.claims` registers them.
"""

__all__: list[str] = []
