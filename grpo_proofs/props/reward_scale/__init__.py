"""Propositions 5, 6 and 2: reward scaling through the advantage and Adam (book page ``derivations/reward_scale.md``).

:mod:`.model` and :mod:`.experiments` run the paired optimizers on a real transformer, :mod:`.mp` in
arbitrary precision, :mod:`.verdict` and :mod:`.confirm` serve ``check``, the ``claims*`` modules register them.
"""

__all__: list[str] = []
