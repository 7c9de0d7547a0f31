"""Related results as claims: Dr. GRPO's length and difficulty biases, the token-gradient cancellation
condition and its two fixes, and the bias of the group-relative baseline.

:mod:`.derive` derives them in SymPy, :mod:`.api` computes them in numbers, :mod:`.model` runs the fixes on a
real transformer, :mod:`.claims` compares and registers them (book page ``derivations/related.md``).
"""
