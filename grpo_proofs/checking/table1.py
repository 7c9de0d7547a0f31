"""Table 1 of arXiv 2601.05002, typed by hand: the stated side of the Prop. 1 and Prop. 4 checks.

Each method's weight alpha_{i,t}, kind of ratio s_{i,t} and clip bounds, written as plain numbers and
functions of plain arithmetic, independently of ``grpo_proofs.variants.REGISTRY`` (so a wrong
weight or bound in the registry cannot be read back into the side that should catch it).

Shorthand: alpha^S_i = 1/(G len(o_i) sigma(r)). The weight functions take keyword numbers (Python or
numpy numbers, numpy arrays, or SymPy expressions: only ``+``, ``*``, ``/`` and one comparison are used):

    G        group size                     L_i     len(o_i), the completion's length
    L_sum    sum_j len(o_j)                 sigma   std of the group's rewards (+ any constant)
    A_i      centered advantage r_i - mean r
    M, lam, delta   masks (1 unless given)

==========  =========================================  ===================  ================
method      alpha_{i,t}                                s_{i,t}              clip (low, up)
==========  =========================================  ===================  ================
grpo        1/(G L_i sigma)                            token                0.2, 0.2
grpo_v32    M/(G L_i)                                  token                0.2, 0.2
gspo        1/(G L_i sigma)                            sequence-geomean     3e-4, 4e-4
gtpo        delta lam/(G L_i)                          token                0.2, 0.2
dapo        1/(sigma L_sum)                            token                0.2, 0.28
cppo        1[abs(A_i) > gamma sigma]/(G L_i sigma)    token (gamma = 0)    0.2, 0.2
dr_grpo     1/G                                        token                0.2, 0.2
gpg         alpha_hat/(F_norm L_sum), both 1           logprob              none
cispo       M/(sigma L_sum)                            sg-weight            none, 4.0
gcpo        1/(sigma G)                                sequence-product     0.2, 0.2
==========  =========================================  ===================  ================

>>> TABLE1["grpo"].alpha(G=4, L_i=2, L_sum=9, sigma=0.5, A_i=1.0)
0.25
>>> TABLE1["dapo"].eps_low, TABLE1["dapo"].eps_up
(0.2, 0.28)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Row", "TABLE1", "alpha", "indicator"]


def indicator(condition) -> object:
    """1 where ``condition`` holds, else 0: a bool for numbers, an array for numpy, a Piecewise for SymPy.

    >>> indicator(3 > 2), indicator(1 > 2)
    (1, 0)
    """
    try:
        return 1 if bool(condition) else 0
    except TypeError:                                # an undecided SymPy relation
        import sympy as sp
        return sp.Piecewise((1, condition), (0, True))
    except ValueError:                               # a numpy array of truth values
        import numpy as np
        return np.asarray(condition, float)


def _S(G, L_i, sigma):
    return 1 / (G * L_i * sigma)


@dataclass(frozen=True)
class Row:
    """One row of Table 1: the weight, the ratio kind, the clip bounds (None: no bound on that side)."""

    name: str
    alpha: Callable[..., object]
    ratio: str
    eps_low: float | None
    eps_up: float | None
    #: whether alpha divides by sigma (a std-normalised advantage)
    std: bool


def _row(name, fn, ratio, low, up, std):
    return name, Row(name, fn, ratio, low, up, std)


TABLE1: dict[str, Row] = dict([
    _row("grpo", lambda G, L_i, sigma, **_: _S(G, L_i, sigma), "token", 0.2, 0.2, True),
    _row("grpo_v32", lambda G, L_i, M=1, **_: M / (G * L_i), "token", 0.2, 0.2, False),
    _row("gspo", lambda G, L_i, sigma, **_: _S(G, L_i, sigma), "sequence-geomean", 3e-4, 4e-4, True),
    _row("gtpo", lambda G, L_i, lam=1, delta=1, **_: delta * lam / (G * L_i), "token", 0.2, 0.2, False),
    _row("dapo", lambda L_sum, sigma, **_: 1 / (sigma * L_sum), "token", 0.2, 0.28, True),
    _row("cppo", lambda G, L_i, sigma, A_i, gamma=0, **_: _S(G, L_i, sigma) * indicator(abs(A_i) > gamma * sigma),
         "token", 0.2, 0.2, True),
    _row("dr_grpo", lambda G, **_: 1 / G, "token", 0.2, 0.2, False),
    _row("gpg", lambda L_sum, alpha_hat=1, F_norm=1, **_: alpha_hat / (F_norm * L_sum), "logprob", None, None, False),
    _row("cispo", lambda L_sum, sigma, M=1, **_: M / (sigma * L_sum), "sg-weight", None, 4.0, True),
    _row("gcpo", lambda G, sigma, **_: 1 / (sigma * G), "sequence-product", 0.2, 0.2, True),
])


def alpha(name: str, **numbers):
    """alpha_{i,t} of Table 1 for method ``name`` (keywords as in the module docstring; extra ones ignored).

    >>> alpha("dr_grpo", G=8, L_i=3, L_sum=20, sigma=1.0, A_i=0.5)
    0.125
    """
    return TABLE1[name].alpha(**numbers)
