"""Claim ``frontier-prefix-sign-weights``: Prop. 1 under the later weights, derived and on the real policy.

Two independent computations for STARE, WAPO, LUSPO (against GSPO) and SAPO (against the hard clip):

* the closed forms of :mod:`grpo_proofs.props.frontier.derive` against autograd of the hand-written reference
  losses (:func:`grpo_proofs.props.frontier.claims.prefix_closed_form`);
* the verdict card's real-model prefix confirmation (:func:`grpo_proofs.props.prefix.confirm.confirm_prefix`
  with the card of :func:`grpo_proofs.check.verdict.derive`, tiny float64 GPT-2), which must meet its own
  bound ``MODEL_FLOAT64``.

The claim lives with the check tool because it runs the verdict card; its page is the frontier page.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from ..checking import Context, Outcome, claim
from ..checking.confirmation import Options
from ..checking.tolerances import CLOSED_FORM, MODEL_FLOAT64
from ..props.frontier.claims import PAGE, SAPO_RATIO, prefix_closed_form
from ..props.prefix.confirm import confirm_prefix
from ..variants import get_variant
from .verdict import derive as card

__all__ = ["prefix_check", "MODEL_VARIANTS"]

#: the later formulations whose prefix confirmation runs on the real policy
MODEL_VARIANTS = ("stare", "wapo", "luspo", "sapo")


def prefix_check(ctx: Context, stated_stare_k: float = 0.1, model_confirm: bool = True) -> Outcome:
    """W on a whole-group shared token: derived (SymPy) against autograd of the reference losses, and the
    real-model prefix confirmation of the verdict card (tiny float64 GPT-2) for STARE, WAPO, LUSPO, SAPO."""
    errs, rows, facts = prefix_closed_form(stated_stare_k)
    model_err = 0.0
    if model_confirm:
        for name in MODEL_VARIANTS:
            v = get_variant(name)
            first = confirm_prefix(SimpleNamespace(variant=v), card(v), Options(quick=True, seed=ctx.seed))[0]
            model_err = max(model_err, first.error)
            rows.append({"variant": name, "real_model_error": first.error})
    # closed forms at CLOSED_FORM; the real-model part must meet its own MODEL_FLOAT64 bound
    err = max(errs) if facts and model_err <= MODEL_FLOAT64 else math.inf
    return Outcome(err, CLOSED_FORM,
                   f"W derived vs reference autograd on {len(errs)} cases (max {max(errs):.1e}); STARE and WAPO do "
                   f"not cancel with a uniform base weight, LUSPO cancels where GSPO does not, SAPO's gate leaves W != 0 "
                   f"at s = {SAPO_RATIO}; real-model prefix confirmation (tiny GPT-2, float64): max {model_err:.1e} "
                   f"(tolerance {MODEL_FLOAT64:.0e})",
                   data={"rows": rows, "compared": len(errs) + (len(MODEL_VARIANTS) if model_confirm else 0)})


# float64 by its statement, whatever --precision asks: runs once
@claim("frontier-prefix-sign-weights", title="Prop. 1 under the later weights", page=PAGE, kind="numeric",
       statement="On a token shared by the whole group at the first inner step, STARE's sign-dependent weights give "
                 "W = 2 k c S_P (k = 0.1, S_P the sum of the positive advantages) and WAPO's W = c S_P, nonzero although "
                 "the base weight c is uniform; LUSPO's weight is constant within the group, so W = 0 where GSPO's "
                 "1/|o_i| leaves W != 0; off s = 1 SAPO's gate slope s / cosh^2(tau (s - 1)/2) differs by the sign of "
                 "A_i, so W != 0 inside the range the hard clip leaves alone.")
def check_prefix(ctx: Context) -> Outcome:
    return prefix_check(ctx)
