"""Every SymPy symbol of the project, declared once with its assumptions.

The names are the ones a user writes in a formula string (``alpha: "1/(G*L_i*sigma)"``):

=============  =====================================================================
symbol         meaning (arXiv 2601.05002 notation)
=============  =====================================================================
``G``          group size (completions per prompt)
``L_i``        length |o_i| of completion i (tokens)
``L_sum``      sum_j |o_j|, tokens in the whole group
``L_max``      maximum completion length (the Dr. GRPO constant)
``sigma``      std of the group's rewards (population or sample, plus a constant)
``A_i``        centered advantage r_i - mean_j r_j
``M``          per-token mask M_{i,t} (off-policy sequence mask, CISPO mask); 1 by default
``lam``        GTPO per-token conflict weight lambda_{i,t}; 1 by default
``delta``      GTPO per-completion entropy filter delta_i; 1 by default
``chi``        STARE per-token selection chi_{i,t} (1 on a selected top-surprisal token); 1 by default
``gamma``      CPPO pruning threshold on |A_i| / sigma
``F_norm``     GPG normaliser F_norm
``alpha_hat``  GPG batch correction alpha-hat
=============  =====================================================================

Symbols of the surrogate itself: ``s`` (importance ratio), ``x`` (log-ratio
log pi_theta - log pi_old of one token), ``u`` (mean log-ratio of a sequence),
``eps_low``/``eps_up`` (clip bounds), ``beta`` (regulariser coefficient).
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "G", "L_i", "L_sum", "L_max", "sigma", "A_i", "M", "lam", "delta", "chi", "gamma", "F_norm",
    "alpha_hat", "s", "x", "u", "eps_low", "eps_up", "beta", "a", "Omega",
    "DEFAULT_MASKS", "WEIGHT_SYMBOLS", "PARAMETER_SYMBOLS", "PER_TOKEN_SYMBOLS", "PER_COMPLETION_SYMBOLS",
    # Adam and the momentum overshoot (Props 3, 7)
    "beta1", "beta2", "eps_adam", "T_clip", "k_after", "m_prev", "v_prev", "rho", "momentum",
]

G = sp.Symbol("G", integer=True, positive=True)
L_i = sp.Symbol("L_i", integer=True, positive=True)
L_sum = sp.Symbol("L_sum", integer=True, positive=True)
L_max = sp.Symbol("L_max", integer=True, positive=True)
sigma = sp.Symbol("sigma", positive=True)
A_i = sp.Symbol("A_i", real=True)
M = sp.Symbol("M", nonnegative=True)
lam = sp.Symbol("lambda", nonnegative=True)
delta = sp.Symbol("delta", nonnegative=True)
#: STARE's selection of top-surprisal tokens (arXiv 2606.19236): 1 on a selected token, 0 elsewhere
chi = sp.Symbol("chi", nonnegative=True)
#: every mask at its default 1 (no token dropped, no completion pruned, every token selected): the values
#: ``group_numbers`` uses
DEFAULT_MASKS = {M: 1, lam: 1, delta: 1, chi: 1}
gamma = sp.Symbol("gamma", nonnegative=True)
F_norm = sp.Symbol("F_norm", positive=True)
alpha_hat = sp.Symbol("alphahat", positive=True)

# the surrogate's own variables
s = sp.Symbol("s", positive=True)
x = sp.Symbol("x", real=True)
u = sp.Symbol("u", real=True)
eps_low = sp.Symbol("epsilon_low", positive=True)
eps_up = sp.Symbol("epsilon_up", positive=True)
beta = sp.Symbol("beta", nonnegative=True)
#: a per-token weight value alpha_{i,t} (used by the batched gradient)
a = sp.Symbol("alpha", real=True)
#: the summed weight Omega_i = sum_t alpha_{i,t} of one completion
Omega = sp.Symbol("Omega", real=True)

# Adam (canonical torch.optim.Adam semantics) and the momentum overshoot (Props 3, 7)
#: Adam's decay rates; 0 < beta < 1 is not expressible as an assumption and is stated where used
beta1 = sp.Symbol("beta_1", positive=True)
beta2 = sp.Symbol("beta_2", positive=True)
#: Adam's epsilon, added to sqrt(v_hat) in the denominator
eps_adam = sp.Symbol("epsilon_Adam", positive=True)
#: first inner step whose advantage gradient is zero (T >= 2), and steps counted after it
T_clip = sp.Symbol("T", integer=True, positive=True)
k_after = sp.Symbol("k", integer=True, nonnegative=True)
#: Adam's moments after the last pre-clip step T - 1 (one coordinate)
m_prev = sp.Symbol("m_{T-1}", real=True)
v_prev = sp.Symbol("v_{T-1}", positive=True)
#: rho = beta_1 / sqrt(beta_2), the per-step decay of the preconditioned step for large T
rho = sp.Symbol("rho", positive=True)
#: heavy-ball momentum coefficient of SGD
momentum = sp.Symbol("mu_m", positive=True)

#: symbols a weight formula may use, by the name a user writes
WEIGHT_SYMBOLS: dict[str, sp.Symbol] = {
    "G": G, "L_i": L_i, "L_sum": L_sum, "L_max": L_max, "sigma": sigma, "A_i": A_i,
    "M": M, "lam": lam, "delta": delta, "chi": chi, "gamma": gamma, "F_norm": F_norm, "alpha_hat": alpha_hat,
}
#: method parameters: constants whose value a Variant fixes
PARAMETER_SYMBOLS = {gamma, F_norm, alpha_hat}
#: data-dependent masks, 1 unless given per token / per completion
PER_TOKEN_SYMBOLS = {M, lam, chi}
PER_COMPLETION_SYMBOLS = {delta}

# --- reward scaling and Adam invariance (Props 5, 6, 2) -----------------------
#: the reward scale r -> phi r (nonzero; the sign is handled where it matters: Abs(phi) appears)
phi = sp.Symbol("phi", real=True, nonzero=True)
#: a constant shift r -> r + b of every reward
shift = sp.Symbol("b", real=True)
#: Adam's step counter t >= 1 (symbolic in the induction)
t_step = sp.Symbol("t", integer=True, positive=True)
#: one coordinate's gradient g_t and Adam's moments before it (m_{t-1}, v_{t-1})
g_t = sp.Symbol("g_t", real=True)
m_before = sp.Symbol("m_{t-1}", real=True)
v_before = sp.Symbol("v_{t-1}", nonnegative=True)
#: bias-corrected moments of one coordinate (v_hat > 0 wherever a step ratio is defined)
m_hat = sp.Symbol("mhat", real=True)
v_hat = sp.Symbol("vhat", positive=True)
#: learning rate and decoupled weight decay of AdamW, and the parameter before the step
lr = sp.Symbol("eta", positive=True)
weight_decay = sp.Symbol("lambda_wd", nonnegative=True)
theta = sp.Symbol("theta", real=True)
#: raw std of a group's rewards (before the constant) and the constant added to it
sigma_r = sp.Symbol("sigma_r", positive=True)
c_sigma = sp.Symbol("c_sigma", nonnegative=True)
#: gradient-norm clipping: max norm and the (unclipped) global gradient norm
max_norm = sp.Symbol("c_clip", positive=True)
grad_norm = sp.Symbol("N_g", positive=True)
#: the constant torch.nn.utils.clip_grad_norm_ adds to the norm: clip coefficient min(1, c/(N + delta))
clip_delta = sp.Symbol("delta_clip", nonnegative=True)
#: rewards r_j of a group of symbolic size G, summed over the index j
r_idx = sp.IndexedBase("r", real=True)
j_idx = sp.Symbol("j", integer=True, positive=True)
__all__ += ["phi", "shift", "t_step", "g_t", "m_before", "v_before", "m_hat", "v_hat", "lr", "weight_decay",
            "theta", "sigma_r", "c_sigma", "max_norm", "grad_norm", "clip_delta", "r_idx", "j_idx"]

# --- trainer batch bookkeeping (grpo_proofs.trainers) --------------------------------------------
# The per-token weight of a real trainer depends on how the optimizer step is split into
# micro-batches, not only on the group. These symbols are not in WEIGHT_SYMBOLS: a Variant's
# alpha describes one group; the trainer weights that use them live in TrainerMapping.weight.
#: rows (completions) in the optimizer step (TRL: the generation batch; verl: the PPO mini-batch)
B_step = sp.Symbol("B", integer=True, positive=True)
#: active tokens that normalise the step (TRL: num_items_in_batch of the generation batch)
N_step = sp.Symbol("N", integer=True, positive=True)
#: micro-batches accumulated into one optimizer step (TRL current_gradient_accumulation_steps)
K_acc = sp.Symbol("K", integer=True, positive=True)
#: rows, active tokens and padded width of micro-batch k
b_k = sp.Symbol("b_k", integer=True, positive=True)
N_k = sp.Symbol("N_k", integer=True, positive=True)
T_k = sp.Symbol("T_k", integer=True, positive=True)
#: padded width of the whole (generation) batch tensor (TRL luspo averages over it)
T_pad = sp.Symbol("T_pad", integer=True, positive=True)
#: verl loss_scale_factor of seq-mean-token-sum-norm
C_scale = sp.Symbol("C", positive=True)
#: non-empty sequences of the step (OpenRLHF sample-level aggregation)
S_seq = sp.Symbol("S", integer=True, positive=True)
#: optimizer-step slices of one generation batch (TRL steps_per_generation)
S_gen = sp.Symbol("S_g", integer=True, positive=True)
#: the trainer symbols by name
TRAINER_SYMBOLS: dict[str, sp.Symbol] = {
    "B": B_step, "N": N_step, "K": K_acc, "b_k": b_k, "N_k": N_k, "T_k": T_k, "T_pad": T_pad,
    "C": C_scale, "S": S_seq, "S_g": S_gen,
}
__all__ += ["B_step", "N_step", "K_acc", "b_k", "N_k", "T_k", "T_pad", "C_scale", "S_seq", "S_gen", "TRAINER_SYMBOLS"]

# --- shared-prefix bias and the loss value (Props 1, 4) --------------------
#: a second summation index (sums over the group nested inside sums over j)
i_idx = sp.Symbol("i", integer=True, positive=True)
#: per-completion effective coefficient omega_j, summed weight Omega_j, sequence ratio s_j
omega_idx = sp.IndexedBase("omega", real=True)
Omega_idx = sp.IndexedBase("Omega", real=True)
s_idx = sp.IndexedBase("s", positive=True)
#: binary rewards: k_c correct and m_w wrong completions (G = k_c + m_w), their lengths
n_correct = sp.Symbol("k_c", integer=True, positive=True)
n_wrong = sp.Symbol("m_w", integer=True, positive=True)
L_correct = sp.IndexedBase("L^c", positive=True)
L_wrong = sp.IndexedBase("L^w", positive=True)
#: a group-constant (uniform) weight
c_uniform = sp.Symbol("c", positive=True)
#: a positive distance past a clip bound
d_past = sp.Symbol("d", positive=True)
__all__ += ["i_idx", "omega_idx", "Omega_idx", "s_idx", "n_correct", "n_wrong", "L_correct", "L_wrong",
            "c_uniform", "d_past"]

# --- checking a user's variant (grpo_proofs.check.verdict) ------------------------
#: advantage and length of completion i of a group of symbolic size G, summed over i_idx
A_idx = sp.IndexedBase("A", real=True)
L_idx = sp.IndexedBase("L", positive=True)
#: a nonzero advantage (a completion with A_i = 0 contributes A_i omega_i = 0 whatever omega_i is)
A_nonzero = sp.Symbol("A_i", real=True, nonzero=True)
#: a positive reward scale r -> phi r (Prop. 5; phi < 0 flips the objective and is treated apart)
phi_pos = sp.Symbol("phi", positive=True)
__all__ += ["A_idx", "L_idx", "A_nonzero", "phi_pos"]
