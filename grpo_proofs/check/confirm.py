"""Numerical confirmation of a variant's verdicts on the real transformer policy.

Each function here recomputes one verdict of :mod:`grpo_proofs.check.verdict` by an independent path and
returns a :class:`Confirmation` (prediction, measurement, error, tolerance):

* :func:`~grpo_proofs.props.prefix.confirm.confirm_prefix` -- Prop. 1 and Prop. 4 on a sampled group with a
  forced shared prefix (tiny float64 GPT-2): the net coefficient W_t and the prefix's parameter
  gradient measured by autograd through the model, against the closed form, at s = 1 and after Adam
  steps; plus Prop. 1's own identity (:func:`grpo_proofs.props.prefix.model.confirm`) on every clip
  branch and for a subset S; the loss value at s = 1 (Prop. 4) against its closed form;
* :func:`~grpo_proofs.props.reward_scale.confirm.confirm_reward_scale` -- Props. 5, 6, 2: real ``torch.optim`` AdamW
  steps under r -> phi r against :func:`grpo_proofs.runtime.adam.adam_step_ratio` times the step of the
  run the derived factor k names, the predicted and measured step change per phi; and global
  gradient-norm clipping, whether it is active in each run and both runs' steps, predicted;
* :func:`~grpo_proofs.props.overshoot.confirm.confirm_overshoot` -- Props. 3, 7 within the config's mu
  inner steps: the zero-gradient premise and Adam's steps after it against C_(T,k), and the excursion
  past the clip bound predicted against measured (or, without a clipped region, a gradient that
  never vanishes; with mu = 1, a ratio that is exactly 1);
* :func:`~grpo_proofs.props.overshoot.confirm.confirm_adam_ratio` -- C_(T,k) against a real ``torch.optim.Adam``.

Every confirmation carries a finite error and a tolerance (``passed``); one that cannot be set up,
or crashes, has error inf and fails.
"""

from __future__ import annotations

import math
import time

from ..checking.confirmation import Confirmation, Options
from ..runtime.threads import one_thread

__all__ = ["run_all", "STAGES"]


def run_all(spec, verdicts, opts: Options, progress=None) -> list[Confirmation]:
    """Every confirmation for ``spec`` (a :class:`grpo_proofs.check.spec.Spec`); ``progress`` is a tqdm bar."""
    from ..props.overshoot.confirm import confirm_adam_ratio, confirm_overshoot
    from ..props.prefix.confirm import confirm_prefix
    from ..props.reward_scale.confirm import confirm_reward_scale

    out = []
    for fn in (confirm_prefix, confirm_reward_scale, confirm_overshoot, confirm_adam_ratio):
        if progress is not None:
            progress.set_description(fn.__name__.replace("confirm_", ""))
        start = time.perf_counter()
        try:
            with one_thread(opts.device):  # small models: one thread is faster (runtime.threads)
                res = fn(spec, verdicts, opts)
        except Exception as exc:  # a confirmation that crashes is a failed confirmation, never hidden
            text = str(exc).splitlines()[0] if str(exc) else ""
            res = Confirmation(fn.__name__.replace("confirm_", ""), "crashed", "", math.inf, 0.0,
                               f"{type(exc).__name__}: {text}")
        res = res if isinstance(res, list) else [res]
        for c in res:
            c.data["stage_seconds"] = round(time.perf_counter() - start, 3)
        out.extend(res)
        if progress is not None:
            progress.update(1)
    return out


STAGES = 4
