"""Independent, hand-written reference losses: one flat file per method of Table 1 and per
registered formulation beyond it (``cfpo``, ``dppo_tv``, ``up``, ``topr``, ``luspo``, ``sapo``,
``vespo``, ``stare``, ``wapo``).

Each module ``grpo_proofs.reference.<name>`` holds one function with the same signature,

    loss(logp, old_logp, rewards, mask, *, sigma="pop", masks=None) -> torch.Tensor

that returns -J for one group of G completions, where J is the advantage part of the unified
surrogate (arXiv 2601.05002, Eq. 1) with beta = 0, written out by hand from Table 1 one math
step per line. Inputs are padded (G, T) tensors (``mask`` 1 on real tokens, 0 on padding;
padding values never reach the loss or its gradient) and (G,) rewards; ``sigma`` picks the
population ("pop") or sample ("sample") std, with no constant added; ``masks`` carries the
per-token / per-completion masks of the methods that have them (``M`` for grpo_v32 and cispo,
``lam`` and ``delta`` for gtpo, ``chi`` for stare), all ones when not given. DPPO's mask reads
``old_logp`` itself (p_old = exp(old_logp)), not only the log-ratio.

This package is the second path that the symbolic gradient is compared against, so it shares
nothing with the symbolic path but its inputs: it imports no SymPy and none of
``grpo_proofs.notation``, ``grpo_proofs.variants``, ``grpo_proofs.objective`` or
``grpo_proofs.gradient``; every constant (clip bounds, CPPO gamma, GPG alpha_hat and F_norm) is
written in the method's own file with a comment saying where it comes from. Files are meant to
be read side by side: ``diff grpo.py dapo.py`` shows only the weight and the clip bounds.

Tie convention: with a ratio exactly on a clip bound, autograd of these files gives the full
unclipped gradient alpha A s (torch.minimum splits the tie between s A and clip(s) A, and
torch.clamp passes its gradient at the bound), i.e. the clipped region of the derivation pages is
open. The derived gradient keeps SymPy's Heaviside(0) = 1/2 at each of its two Min/Max kinks and gives
1/2 + 1/4 = 3/4 of it there (:mod:`grpo_proofs.compile`, the one place the convention is stated), so
comparisons keep points off the bounds.

>>> import torch
>>> from grpo_proofs.reference import REFERENCE
>>> sorted(REFERENCE)[:10]
['cfpo', 'cispo', 'cppo', 'dapo', 'dppo_tv', 'dr_grpo', 'gcpo', 'gpg', 'grpo', 'grpo_v32']
>>> len(REFERENCE)
19
>>> mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)  # |o| = 1, 3
>>> logp = torch.zeros(2, 3, dtype=torch.float64)
>>> # DAPO at s = 1: -sum_i |o_i| A_i/(sigma sum_j |o_j|) = -(1/2 - 3/2)/(1/2 * 4)
>>> REFERENCE["dapo"](logp, logp, torch.tensor([1.0, 0.0]), mask).item()
0.5
"""

from __future__ import annotations

from typing import Callable

from . import (cfpo, cispo, cppo, dapo, dppo_tv, dr_grpo, gcpo, gpg, grpo, grpo_v32, gspo, gtpo, luspo, sapo, stare,
               topr, up, vespo, wapo)

__all__ = ["REFERENCE", "cispo", "cppo", "dapo", "dr_grpo", "gcpo", "gpg", "grpo", "grpo_v32", "gspo", "gtpo",
           "cfpo", "dppo_tv", "up", "topr", "luspo", "sapo", "vespo", "stare", "wapo"]

#: method name (the short names of Table 1's registry) -> its reference loss
REFERENCE: dict[str, Callable] = {
    "grpo": grpo.loss,
    "grpo_v32": grpo_v32.loss,
    "gspo": gspo.loss,
    "gtpo": gtpo.loss,
    "dapo": dapo.loss,
    "cppo": cppo.loss,
    "dr_grpo": dr_grpo.loss,
    "gpg": gpg.loss,
    "cispo": cispo.loss,
    "gcpo": gcpo.loss,
    # beyond Table 1
    "cfpo": cfpo.loss,
    "dppo_tv": dppo_tv.loss,
    "up": up.loss,
    "topr": topr.loss,
    "luspo": luspo.loss,
    "sapo": sapo.loss,
    "vespo": vespo.loss,
    "stare": stare.loss,
    "wapo": wapo.loss,
}
