"""Proposition 4: the value of the loss (book page ``derivations/loss_value.md``); :mod:`.claims` registers it."""

__all__: list[str] = []
