"""The formulations published after arXiv 2601.05002, against its findings.

:mod:`.derive` derives in SymPy (CFPO's restoring gradient, the post-boundary Adam dynamics),
:mod:`.api` computes in numbers (the exact Adam recurrence on the derived gradient, the excursion),
:mod:`.model` runs real ``torch.optim.Adam`` on hand-written losses, :mod:`.claims` compares and
registers them (book page ``derivations/frontier.md``).
"""
