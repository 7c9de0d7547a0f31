"""A length-aware GRPO variant, defined in Python: alpha_(i,t) = 1/(G sqrt(|o_i|) sigma).

Between GRPO (1/|o_i|: every completion gets the same total weight) and Dr. GRPO (a constant:
long completions get proportionally more), the square root is a common compromise. Check it with

    grpo-proofs check --variant-file examples/length_aware.py:LENGTH_AWARE

The file is executed by that command (it is Python): define a ``Variant`` (or a zero-argument
function returning one) from the documented symbols of ``grpo_proofs.notation``.
"""

import sympy as sp

from grpo_proofs import notation as n
from grpo_proofs.variants import Ratio, Regularizer, Variant

LENGTH_AWARE = Variant(
    name="length_aware",
    alpha=1 / (n.G * sp.sqrt(n.L_i) * n.sigma),   # the weight alpha_(i,t); any 1/std lives here
    ratio=Ratio.TOKEN,                            # s_(i,t) = pi_theta / pi_old per token
    eps_low=0.2,
    eps_up=0.28,                                  # clip-higher, as in DAPO
    advantage="std",                              # A_i / sigma (sigma is in alpha)
    regularizer=Regularizer.NONE,
    title="Length-aware GRPO (1/sqrt(|o_i|))",
    source="examples/length_aware.py",
)


def make_variant() -> Variant:
    """The same variant from a function (``--variant-file examples/length_aware.py:make_variant``)."""
    return LENGTH_AWARE
