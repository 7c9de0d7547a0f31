"""The three findings of arXiv 2601.05002 measured on every registered method (book page ``derivations/findings.md``).

:mod:`.api` measures, on one group, what each finding depends on (Prop. 1's net coefficient on a shared
token, the gradient's response to a reward scale, the gradient past the trust-region bound), once from the
derived gradient and once from autograd of the hand-written reference losses; :mod:`.claims` compares the
two and registers the method x finding table.
"""
