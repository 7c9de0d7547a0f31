"""Proposition 4: the surrogate's value at the first step is a weighting statistic, not performance.

Expected values are typed here from the derivation pages with Table 1's weights written in this file; the
measured values come from the hand-written reference losses and the compiled surrogate.
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_proofs.checking import Context, all_claims, run_claim
from grpo_proofs.props.gradient.api import padded
from grpo_proofs.props.loss_value.derive import regime
from grpo_proofs.evaluate import torch_surrogate
from grpo_proofs.reference import REFERENCE
from grpo_proofs.variants import REGISTRY

# per-completion summed weight Omega_i = sum_t alpha_{i,t} (Table 1, masks 1), typed here
OMEGA = {
    "grpo": lambda G, L, Ls, sd, A: 1 / (G * sd),
    "grpo_v32": lambda G, L, Ls, sd, A: 1 / G,
    "gspo": lambda G, L, Ls, sd, A: 1 / (G * sd),
    "gtpo": lambda G, L, Ls, sd, A: 1 / G,
    "dapo": lambda G, L, Ls, sd, A: L / (sd * Ls),
    "cppo": lambda G, L, Ls, sd, A: (abs(A) > 0) / (G * sd),
    "dr_grpo": lambda G, L, Ls, sd, A: L / G,
    "gcpo": lambda G, L, Ls, sd, A: L / (sd * G),
}
EXPECTED_REGIMES = {
    "length-normalised": {"grpo", "grpo_v32", "gspo", "gtpo"},
    "constant": {"dr_grpo", "dapo", "gcpo"},
    "general": {"cppo"},
    "log-prob": {"gpg", "cispo"},
}


def test_regimes_follow_table_1():
    got = {k: {n for n, v in REGISTRY.items() if regime(v) == k} for k in EXPECTED_REGIMES}
    assert got == EXPECTED_REGIMES


@pytest.mark.parametrize("name", list(OMEGA))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reference_loss_value_at_s1_is_the_covariance(name, data):
    G = data.draw(st.integers(2, 12))
    rewards = np.array(data.draw(st.lists(st.integers(-3, 3), min_size=G, max_size=G).filter(lambda r: max(r) > min(r))), float)
    lengths = np.array(data.draw(st.lists(st.integers(1, 40), min_size=G, max_size=G)))
    sigma = data.draw(st.sampled_from(["pop", "sample"]))
    lp = [np.random.default_rng(G).normal(-2, 0.5, size=L) for L in lengths]
    logp, mask = padded(lengths, lp, junk=3.0)
    J = -float(REFERENCE[name](logp, logp.clone(), torch.as_tensor(rewards), mask, sigma=sigma))
    A = rewards - rewards.mean()
    sd = rewards.std(ddof=0 if sigma == "pop" else 1)
    Om = np.array([OMEGA[name](G, L, lengths.sum(), sd, a) for L, a in zip(lengths, A)])
    cov = G * (np.mean(A * Om) - np.mean(A) * np.mean(Om))       # G Cov_pop(A, Omega)
    scale = np.abs(A * Om).sum()
    assert abs(J - cov) <= 1e-12 * scale
    if name in EXPECTED_REGIMES["length-normalised"]:
        assert abs(J) <= 1e-12 * scale                             # identically zero
    if name == "dr_grpo":
        assert abs(J - np.dot(A, lengths) / G) <= 1e-12 * scale     # C sum_i A_i |o_i|, C = 1/G


def test_value_does_not_track_reward():
    """Two groups with the same rewards but lengths swapped between right and wrong answers: Dr. GRPO's
    value flips sign, GRPO's stays 0; off-policy (s != 1) the value moves with the ratios alone."""
    r = np.array([1.0, 0.0, 1.0, 0.0])
    short_right, long_right = np.array([2, 8, 2, 8]), np.array([8, 2, 8, 2])
    vals = {}
    for L in (short_right, long_right):
        logp, mask = padded(L, [np.full(x, -1.0) for x in L])
        vals[tuple(L)] = [float(torch_surrogate(v, logp, logp, r, mask)) for v in ("dr_grpo", "grpo")]
    assert vals[(2, 8, 2, 8)][0] < 0 < vals[(8, 2, 8, 2)][0]
    assert vals[(2, 8, 2, 8)][1] == 0.0 == vals[(8, 2, 8, 2)][1]
    logp, mask = padded(short_right, [np.full(x, -1.0) for x in short_right])
    old = logp - 0.1 * torch.as_tensor(np.sign(np.arange(8) - 3.5))[None, :]
    assert abs(float(torch_surrogate("grpo", logp, old, r, mask))) > 1e-3


def test_claim_registered_and_passes_quick():
    claims = all_claims()
    assert claims["prop4-loss-value"].page == "loss_value"
    out = run_claim("prop4-loss-value", Context(quick=True))
    assert out.passed, out.detail


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_term_at_one_is_the_written_out_term_at_zero_log_ratios(name):
    """The loss value at s = 1 puts x = 0 into each completion's template before writing it out token by
    token; it equals the written-out term with every log-ratio set to 0 afterwards."""
    import sympy as sp

    from grpo_proofs.objective import surrogate

    g = surrogate(name, [2, 1, 3])
    zero = {x: 0 for xi in g.x for x in xi}
    for i in range(3):
        assert sp.simplify((g.term(i).xreplace(zero) - g.term_at_one(i)).doit()) == 0
