"""The one tolerance table of the project.

Every check compares two independent computations and passes when the measured error is at
most the tolerance named here. Symbolic identities are exact (a zero difference after
simplification); float64 closed forms against autograd must agree to ``CLOSED_FORM``;
identities that run through a whole transformer in float64 to ``MODEL_FLOAT64``.
The float32/bf16 bounds apply to real-model checks run in those precisions (the CUDA defaults; also
selectable on the CPU) and are documented with their measurement; :func:`for_precision` picks them.
"""

from __future__ import annotations

__all__ = ["EXACT", "CLOSED_FORM", "MODEL_FLOAT64", "OPTIMIZER_FLOAT64", "PADDED_FORWARD", "ONE_STEP", "MPMATH_50",
           "PREFIX_FLOAT32", "MODEL_FLOAT32", "MODEL_BF16", "OPTIMIZER_FLOAT32", "OPTIMIZER_BF16",
           "TRAJECTORY_FLOAT32", "TRAJECTORY_BF16", "PREFIX_BF16", "BY_PRECISION",
           "RELEASE_FLOAT32", "for_precision", "TABLE"]

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

#: Prop. 1 shared-prefix gradient identity through a float32 transformer: |g - g_pred|_inf over the
#: gradient the prefix would get without cancellation, |g_U|_inf (G copies of the prefix in a padded batch
#: against one copy). Measured <= 1.2e-6 (about 10 float32 ulps) over 540 checks on CPU float32 (tiny and
#: small GPT-2, qwen2_small; 6 seeds x 3 cases x 10 methods); 2e-5 leaves ~17x for other reduction orders
#: (CUDA). Relative to g_pred itself the error reached 1.8e-4 where W nearly cancels (|g_pred| ~ 6e-4 |g_U|).
PREFIX_FLOAT32 = 2e-5

#: a trainer release's own code where it computes in float32, against the project's float64 model of it
#: (the peers tests; relative to the largest entry). The float32 places: verl ``grpo_vectorized``
#: (group_mean_std casts to float32), verl ``reinforce_plus_plus_baseline`` (masked_var's Bessel
#: factor count/(count - 1) divides integer tensors: float32), verl ``gpg`` (alpha = B/#{R != 0}, the
#: same), verl ``grpo`` with a one-completion group (std = torch.tensor(1.0) + 1e-6 in float32),
#: OpenRLHF's step normalisers (float32 token and sample counts divided by gas), its KL estimator
#: (``log_probs.float()``) and its reward whitening (``.float()``). Each is a few float32 roundings
#: (unit roundoff 6e-8) of quantities of order 1. Measured over random cases (log-ratios up to 3,
#: reference log-ratios up to 4, rewards up to 30, 1-4 micro-batches; CPU, torch 2.13.0+cpu,
#: 2026-12-07): OpenRLHF loss with KL max 2.8e-7 (median 3.2e-8, 204 cases), without KL and 2-4
#: micro-batches max 3.7e-8, with one micro-batch and no KL exactly 0 (checked at CLOSED_FORM);
#: OpenRLHF reinforce_baseline max 1.8e-7; verl grpo_vectorized max 3.6e-7, reinforce_plus_plus_baseline
#: max 2.9e-8, gpg max 8.0e-8, grpo (singletons) max 4.6e-8 (300 cases each). 1e-5 leaves ~30x headroom
#: over the largest; every comparison that involves none of these places stays at CLOSED_FORM.
RELEASE_FLOAT32 = 1e-5

# ---------------------------------------------------------------- float32 and bf16 (real-model checks)
# Chosen by ``benchmarks/tolerance.py`` (grpo_proofs.props.tolerance): the same confirmations in
# float64 and in lower precision on one device, qwen2_small preset, seeds 0..4; bound = 10x the max
# observed error over the kind's confirmations, rounded up to a power of ten. Measured on CPU
# (x86_64, 2 cores, torch 2.13.0+cpu), 2026-11-23; bf16 = CPU bf16 autocast with float32 master weights.
# CUDA runs use these CPU-measured bounds until ``python benchmarks/tolerance.py --device cuda`` has
# been run on a GPU and its recommendations entered here (GPU reduction orders and bf16 kernels differ
# from the CPU's; not measured yet: no GPU was available).

#: gradient identity through the transformer (autograd of J, batched, vs derived w . grad log pi,
#: unpadded), float32: observed max 4.7e-7 (median 2.7e-7, 50 samples; float64: 7.9e-16)
MODEL_FLOAT32 = 1e-5
#: the same in bf16 autocast: observed max 6.6e-3 (median 4.4e-3, 50 samples)
MODEL_BF16 = 1e-1
#: Prop. 2 steps at phi r vs R x steps at r, per coordinate (steps read from the optimizer), float32:
#: observed max 7.8e-5 (median 1.5e-5, 80 samples; float64: 6.8e-13); compared coordinates: gradient
#: premise g_phi = phi g within 1e-4 (reward_scale_checks.PREMISE_BY)
OPTIMIZER_FLOAT32 = 1e-3
#: the same in bf16 autocast: observed max 9.9e-3 (median 4.5e-3, 80 samples), premise within 1e-2
OPTIMIZER_BF16 = 1e-1
#: steps read as parameter differences (Props 3/7 premise step, Prop. 2 trajectory limit), float32:
#: observed max 8.5e-4 (premise step; parameter rounding ~1e-7 of |theta| ~ 1 over steps ~5e-4 lr)
TRAJECTORY_FLOAT32 = 1e-2
#: the same in bf16 autocast: observed max 4.9e-3 (trajectory limit; premise step 5.9e-4)
TRAJECTORY_BF16 = 1e-1

#: Prop. 1 prefix identity in bf16 autocast, measured as PREFIX_FLOAT32 (|g - g_pred|_inf / |g_U|_inf) by
#: ``benchmarks/tolerance.py`` (same CPU run as above, qwen2_small, G = 8, 10 methods x 3 cases x 5 seeds):
#: observed max 8.6e-3 (median 3.6e-3, 150 samples; float32 in the same run: max 9.4e-7, within
#: PREFIX_FLOAT32; float64: 1.5e-14)
PREFIX_BF16 = 1e-1

#: (kind, precision) -> tolerance. Kinds: "model" = a gradient identity through the transformer's
#: forward and backward; "optimizer" = predicted against measured optimizer steps read from the
#: optimizer; "trajectory" = the same with steps read as parameter differences theta_t - theta_{t-1}
#: (limited by the rounding of the parameters themselves); "prefix" = Prop. 1's shared-prefix identity,
#: measured against the uncancelled gradient in low precision (see PREFIX_FLOAT32).
BY_PRECISION: dict[tuple[str, str], float] = {
    ("model", "float64"): MODEL_FLOAT64, ("model", "float32"): MODEL_FLOAT32, ("model", "bf16"): MODEL_BF16,
    ("optimizer", "float64"): OPTIMIZER_FLOAT64, ("optimizer", "float32"): OPTIMIZER_FLOAT32,
    ("optimizer", "bf16"): OPTIMIZER_BF16,
    ("trajectory", "float64"): OPTIMIZER_FLOAT64, ("trajectory", "float32"): TRAJECTORY_FLOAT32,
    ("trajectory", "bf16"): TRAJECTORY_BF16,
    ("prefix", "float64"): MODEL_FLOAT64, ("prefix", "float32"): PREFIX_FLOAT32, ("prefix", "bf16"): PREFIX_BF16,
}


def for_precision(kind: str, precision: str) -> float:
    """The tolerance of a ``kind`` ("model", "optimizer", "trajectory", "prefix") check run in ``precision``.

    >>> for_precision("model", "float64") == MODEL_FLOAT64
    True
    """
    try:
        return BY_PRECISION[(kind, precision)]
    except KeyError:
        from ..errors import InputError
        raise InputError(f"no tolerance for a {kind!r} check in {precision!r}; kinds: model, optimizer, "
                         f"trajectory, prefix; precisions: float64, float32, bf16") from None


TABLE: dict[str, float] = {
    "exact": EXACT,
    "closed_form": CLOSED_FORM,
    "model_float64": MODEL_FLOAT64,
    "optimizer_float64": OPTIMIZER_FLOAT64,
    "padded_forward": PADDED_FORWARD,
    "one_step": ONE_STEP,
    "mpmath_50": MPMATH_50,
    "prefix_float32": PREFIX_FLOAT32,
    "model_float32": MODEL_FLOAT32,
    "model_bf16": MODEL_BF16,
    "optimizer_float32": OPTIMIZER_FLOAT32,
    "optimizer_bf16": OPTIMIZER_BF16,
    "trajectory_float32": TRAJECTORY_FLOAT32,
    "trajectory_bf16": TRAJECTORY_BF16,
    "prefix_bf16": PREFIX_BF16,
    "release_float32": RELEASE_FLOAT32,
}
