"""The one tolerance table of the project.

Every check compares two independent computations and passes when the measured error is at
most the tolerance named here. Symbolic identities are exact (a zero difference after
simplification); float64 closed forms against autograd must agree to ``CLOSED_FORM``;
identities that run through a whole transformer in float64 to ``MODEL_FLOAT64``.
The float32/bf16 bounds apply only to CUDA runs and are documented with their measurement.
"""

from __future__ import annotations

__all__ = ["EXACT", "CLOSED_FORM", "MODEL_FLOAT64", "OPTIMIZER_FLOAT64", "PADDED_FORWARD", "ONE_STEP", "MPMATH_50", "TABLE"]

#: symbolic identity: the difference simplifies to exactly zero
EXACT = 0.0
#: float64 closed form against autograd / a reference computation (relative)
CLOSED_FORM = 1e-12
#: float64 identity through a whole causal transformer (relative)
MODEL_FLOAT64 = 1e-10
#: float64 predicted against measured optimizer steps (relative)
OPTIMIZER_FLOAT64 = 1e-10
#: float64 log-probs of a right-padded batched forward against one unpadded forward per sequence
#: (absolute, nats). Both run the same float64 ops in a different batch/summation order; measured
#: <= 1.8e-15 on the tiny/small GPT-2 and Qwen2 presets (CPU), so 1e-12 leaves ~500x headroom.
PADDED_FORWARD = 1e-12
#: Prop. 3, "SGD stops at the bound to within one step": a token's further drift past its clip bound
#: after it entered the forbidden side, in units of its entry step (a definition, not a rounding bound;
#: measured 0.01..0.32 with plain SGD on the tiny GPT-2, 0.7..3 with Adam or heavy-ball SGD)
ONE_STEP = 1.0
#: Props 6 and 2 at 50 significant digits (mpmath, ``workdps(50)``): relative error of a 50-digit
#: Adam recurrence against the closed-form factor; measured <= 7e-51 over 8 steps, so 1e-45 leaves
#: 1e4 headroom while still proving agreement far beyond float64
MPMATH_50 = 1e-45

TABLE: dict[str, float] = {
    "exact": EXACT,
    "closed_form": CLOSED_FORM,
    "model_float64": MODEL_FLOAT64,
    "optimizer_float64": OPTIMIZER_FLOAT64,
    "padded_forward": PADDED_FORWARD,
    "one_step": ONE_STEP,
    "mpmath_50": MPMATH_50,
}
