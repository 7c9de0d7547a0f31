"""The registered formulations beyond Table 1: registry marks, closed forms, limits, inputs, bad input.

The derived gradient (SymPy, compiled) is compared here with per-token closed forms written again
in plain numpy from each paper's term (a third path, beside the reference losses of
``grpo_proofs.reference`` that ``tests/test_gradient.py`` compares it with):

* CFPO:     alpha s (A - |A| (s - 1)/eps)
* DPPO-TV:  alpha A s (1 - M),  M = [A > 0, p - p_old > delta] or [A < 0, p - p_old < -delta]
* UP:       alpha A for A > 0;  alpha A s [s > 1 - eps] for A < 0
* TOPR:     alpha A tau_i,  tau_i = 1 (A >= 0) or min(s_i, 1) (A < 0), s_i the full sequence ratio
* LUSPO:    (sum_t alpha) A s_i / |o_i| on GSPO's unclipped branch, 0 on its clipped one
* SAPO:     alpha A 4 s sig(z) (1 - sig(z)),  z = tau (s - 1)
* VESPO:    alpha A Phi_i,  Phi_i = exp(lam + k log w - lam w)
* STARE:    alpha (1 +- 0.1 chi) A s on the unclipped branch
* WAPO:     alpha A s [A > 0] on the unclipped branch
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_proofs import token_gradient
from grpo_proofs.props.gradient.api import random_group, random_old
from grpo_proofs.errors import InputError
from grpo_proofs.evaluate import DEFAULT_OLD_PROB
from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.objective import surprisal_selection
from grpo_proofs.variants import BEYOND_TABLE1, REGISTRY, VARIANTS, Variant, get_variant
from grpo_proofs.check.verdict import derive

CONTRACT = ["cfpo", "dppo_tv", "up", "topr", "luspo", "sapo", "vespo", "stare", "wapo"]
TABLE1 = ["grpo", "grpo_v32", "gspo", "gtpo", "dapo", "cppo", "dr_grpo", "gpg", "cispo", "gcpo"]


def test_registry_marks():
    assert list(REGISTRY) == TABLE1  # the ten Table 1 keys stay as they are
    assert list(BEYOND_TABLE1) == CONTRACT
    assert list(VARIANTS) == TABLE1 + CONTRACT
    assert all(v.table1 and v.family == "table1" for v in REGISTRY.values())
    assert all(not v.table1 and v.family == "2026" for v in BEYOND_TABLE1.values())
    assert get_variant("cfpo") is BEYOND_TABLE1["cfpo"]


def _closed_form(v: Variant, rewards, lengths, lr, sigma="pop", old=None, chi=None) -> list[np.ndarray]:
    r = np.asarray(rewards, dtype=float)
    A = r - r.mean()
    sd = float(np.std(r, ddof=0 if sigma == "pop" else 1))
    G, Ls = len(r), int(np.sum(lengths))
    out = []
    for i, (L, x) in enumerate(zip(lengths, lr)):
        s = np.exp(x)
        a = A[i]
        if v.name in ("cfpo", "dppo_tv", "up", "sapo"):
            alpha = 1 / (G * L * sd)
        elif v.name == "topr":
            alpha = 1 / (G * L)
        elif v.name == "luspo":
            alpha = 1 / (G * sd)
        else:  # vespo, stare, wapo: token-level mean
            alpha = 1 / (sd * Ls)
        if v.name == "cfpo":
            g = alpha * s * (a - abs(a) * (s - 1) / 0.2)
        elif v.name == "dppo_tv":
            p_old = np.exp(old[i]) if old is not None else np.full(L, DEFAULT_OLD_PROB)
            p = p_old * s
            M = ((a > 0) & (p - p_old > 0.2)) | ((a < 0) & (p - p_old < -0.2))
            g = alpha * a * s * (1 - M)
        elif v.name == "up":
            g = np.full(L, alpha * a) if a > 0 else alpha * a * s * (s > 0.8)
        elif v.name == "topr":
            si = math.exp(float(np.sum(x)))
            g = np.full(L, alpha * a * (1.0 if a >= 0 else min(si, 1.0)))
        elif v.name == "luspo":
            si = math.exp(float(np.mean(x)))
            clipped = (a > 0 and si > 1 + 4e-4) or (a < 0 and si < 1 - 3e-4)
            g = np.full(L, 0.0 if clipped else L * alpha * a * si / L)
        elif v.name == "sapo":
            tau = 1.0 if a > 0 else 1.05
            sig = 1 / (1 + np.exp(-tau * (s - 1)))
            g = alpha * a * 4 * s * sig * (1 - sig)
        elif v.name == "vespo":
            lw = min(max(float(np.sum(x)), math.log(1e-8)), 20.0)
            k, lam = (2.0, 3.0) if a >= 0 else (3.0, 2.0)
            g = np.full(L, alpha * a * math.exp(lam + k * lw - lam * math.exp(lw)))
        else:  # stare, wapo: DAPO's clip 0.2/0.28
            live = ~(((a > 0) & (s > 1.28)) | ((a < 0) & (s < 0.8)))
            c = np.ones(L) if chi is None else np.asarray(chi[i], dtype=float)
            w = (1 + 0.1 * c if a > 0 else 1 - 0.1 * c if a < 0 else np.ones(L)) if v.name == "stare" else float(a > 0)
            g = alpha * w * a * s * live
        out.append(np.asarray(g, dtype=float))
    return out


@pytest.mark.parametrize("name", CONTRACT)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), sigma=st.sampled_from(["pop", "sample"]))
def test_derived_gradient_equals_numpy_closed_form(name, seed, sigma):
    v = VARIANTS[name]
    rng = np.random.default_rng(seed)
    rewards, lengths, lr = random_group(rng, v)
    old, lr = random_old(rng, v, lr)
    kw = {"old_logp": old} if v.needs_old_logp else {}
    got = token_gradient(v, rewards, lengths, lr, sigma=sigma, **kw)
    want = _closed_form(v, rewards, lengths, lr, sigma, old=old if v.needs_old_logp else None)
    assert rel_err(got, want) <= 1e-12


def test_every_branch_is_reached():
    """Coverage of the random groups: each side of each kink is drawn (the comparisons are not vacuous)."""
    rng = np.random.default_rng(0)
    hits = {"cfpo_past": 0, "cfpo_inside": 0, "dppo_masked": 0, "dppo_kept": 0, "up_clipped": 0, "topr_tapered": 0}
    for _ in range(20):
        for name in ("cfpo", "dppo_tv", "up", "topr"):
            v = VARIANTS[name]
            rewards, lengths, lr = random_group(rng, v)
            old, lr = random_old(rng, v, lr)
            A = np.asarray(rewards) - np.mean(rewards)
            for a, x, o in zip(A, lr, old):
                s = np.exp(x)
                if name == "cfpo":
                    hits["cfpo_past"] += int(np.sum((a > 0) & (s > 1.2)))
                    hits["cfpo_inside"] += int(np.sum((a != 0) & (np.abs(s - 1) < 0.2)))
                elif name == "dppo_tv":
                    dp = np.exp(o) * (s - 1)
                    masked = ((a > 0) & (dp > 0.2)) | ((a < 0) & (dp < -0.2))
                    hits["dppo_masked"] += int(np.sum(masked))
                    hits["dppo_kept"] += int(np.sum(~masked & (a != 0)))
                elif name == "up":
                    hits["up_clipped"] += int(np.sum((a < 0) & (s < 0.8)))
                else:
                    hits["topr_tapered"] += int(a < 0 and np.exp(np.sum(x)) < 1)
    assert min(hits.values()) > 0, hits


def test_negative_control_wrong_closed_form_fails():
    """A closed form without CFPO's penalty (plain alpha A s) must disagree with the derived gradient."""
    v = VARIANTS["cfpo"]
    rng = np.random.default_rng(1)
    rewards, lengths, lr = random_group(rng, v)
    got = token_gradient(v, rewards, lengths, lr)
    plain = token_gradient(v.replace(eps_low=None, eps_up=None, surrogate="clip"), rewards, lengths, lr)
    assert rel_err(got, plain) > 1e-3


def test_cfpo_restoring_gradient():
    """CFPO: zero gradient at s = 1 + eps (A > 0) and 1 - eps (A < 0), pushing back beyond it."""
    eps = 0.2
    for s, sign in ((1 + eps, 0), (1.3, -1), (1.1, 1)):
        g = token_gradient("cfpo", [1.0, 0.0], [1, 1], [[math.log(s)], [0.0]])[0][0]
        assert (abs(g) < 1e-15) if sign == 0 else (np.sign(g) == sign)
    g = token_gradient("cfpo", [1.0, 0.0], [1, 1], [[0.0], [math.log(0.7)]])[1][0]  # A < 0 below 1 - eps: pushed up
    assert g > 0


def test_dppo_default_old_prob_is_documented_value():
    rewards, lengths, lr = [1.0, 0.0, 0.5], [2, 3, 1], [[0.5, -0.9], [0.3, 0.0, -0.6], [0.45]]
    default = token_gradient("dppo_tv", rewards, lengths, lr)
    explicit = token_gradient("dppo_tv", rewards, lengths, lr, old_logp=[[math.log(0.5)] * L for L in lengths])
    assert rel_err(default, explicit) == 0.0
    # with p_old = 1/2 the mask acts at s = 1 +- 2 delta = 1.4 / 0.6: s = 1.5 is masked for A > 0
    g = token_gradient("dppo_tv", [1.0, 0.0], [1, 1], [[math.log(1.5)], [math.log(1.5)]])
    assert g[0][0] == 0.0 and g[1][0] < 0


def test_dppo_old_logp_must_be_log_probabilities():
    with pytest.raises(InputError, match="<= 0"):
        token_gradient("dppo_tv", [1.0, 0.0], [1, 1], old_logp=[[0.2], [-0.1]])


def test_stare_surprisal_selection_and_limits():
    rewards, lengths = [1.0, 0.0, 0.0, 1.0], [3, 2, 4, 1]
    rng = np.random.default_rng(3)
    lr = [rng.normal(scale=0.05, size=L) for L in lengths]
    surprisal = [rng.uniform(0, 5, size=L) for L in lengths]
    chi = surprisal_selection(surprisal, 0.2)
    assert sum(int(c.sum()) for c in chi) == math.ceil(0.2 * sum(lengths))
    by_surprisal = token_gradient("stare", rewards, lengths, lr, surprisal=surprisal)
    by_mask = token_gradient("stare", rewards, lengths, lr, masks={"chi": chi})
    assert rel_err(by_surprisal, by_mask) == 0.0
    assert rel_err(by_mask, _closed_form(VARIANTS["stare"], rewards, lengths, lr, chi=chi)) <= 1e-14
    # no token selected: STARE is DAPO
    none = token_gradient("stare", rewards, lengths, lr, masks={"chi": [np.zeros(L) for L in lengths]})
    assert rel_err(none, token_gradient("dapo", rewards, lengths, lr)) <= 1e-15
    with pytest.raises(InputError, match="not both"):
        token_gradient("stare", rewards, lengths, surprisal=surprisal, masks={"chi": chi})


def test_limits_against_table1_methods():
    rng = np.random.default_rng(5)
    rewards, lengths = [1.0, 0.0, 0.25, 1.0, 0.0], [4, 7, 2, 5, 3]
    lr = [rng.normal(scale=0.1, size=L) for L in lengths]
    A = np.asarray(rewards) - np.mean(rewards)
    dapo = token_gradient("dapo", rewards, lengths, lr)
    wapo = token_gradient("wapo", rewards, lengths, lr)
    for a, g_w, g_d in zip(A, wapo, dapo):
        np.testing.assert_allclose(g_w, g_d if a > 0 else 0 * g_d, rtol=1e-15, atol=0)
    # LUSPO = GSPO with each completion's weight multiplied by |o_i|
    seq_lr = [np.full(L, rng.normal(scale=1e-4)) for L in lengths]
    for L, g_l, g_g in zip(lengths, token_gradient("luspo", rewards, lengths, seq_lr), token_gradient("gspo", rewards, lengths, seq_lr)):
        np.testing.assert_allclose(g_l, L * g_g, rtol=1e-14, atol=0)
    # s = 1 everywhere: every later term gives alpha A (its weight times the advantage)
    for name in CONTRACT:
        num_alpha = _closed_form(VARIANTS[name], rewards, lengths, [np.zeros(L) for L in lengths])
        np.testing.assert_allclose(np.concatenate(token_gradient(name, rewards, lengths)), np.concatenate(num_alpha),
                                   rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("kwargs, message", [
    ({"surrogate": "quadratic", "eps_low": None, "eps_up": None}, "needs eps_low and eps_up"),
    ({"surrogate": "tv-mask", "phi_params": {"delta_tv": 0.2}}, "has no ratio clip"),
    ({"surrogate": "tv-mask", "eps_low": None, "eps_up": None}, "takes the parameters delta_tv"),
    ({"surrogate": "sigmoid", "eps_low": None, "eps_up": None, "phi_params": {"tau_pos": -1.0, "tau_neg": 1.0}},
     "tau_pos must be a positive number"),
    ({"surrogate": "taper", "eps_low": None, "eps_up": None}, "needs the ratio 'sequence-sg-weight'"),
    ({"family": "2027"}, "family must be"),
])
def test_bad_variants(kwargs, message):
    with pytest.raises(InputError, match=message):
        REGISTRY["grpo"].replace(name="mine", **kwargs)


@pytest.mark.parametrize("name", CONTRACT)
def test_verdict_card_derives(name):
    d = derive(name)
    assert d.gradient["branches"] and d.prefix["worked"] is not None
    assert d.overshoot["reason"]


def test_card_facts():
    """Facts the card states, each checked against a derivation done differently here."""
    # SAPO at s = 1: phi = (4/tau) sigmoid(0) A = 2 A / tau: the loss value is sum_i (2/tau_i) A_i Omega_i,
    # nonzero on the worked example (r = [1, 0, 0, 1], |o| = [10, 30, 20, 40], Omega_i = 1/(4 sigma))
    d = derive("sapo")
    assert d.loss["regime"] == "covariance"
    A, sigma = np.array([0.5, -0.5, -0.5, 0.5]), 0.5
    tau = np.where(A > 0, 1.0, 1.05)
    assert d.loss["worked"]["value"] == pytest.approx(float(np.sum(2 / tau * A / (4 * sigma))), rel=1e-14)
    assert derive("dppo_tv").overshoot["exposed"] and not derive("cfpo").overshoot["exposed"]
    assert derive("up").overshoot["one_sided"]
    assert not derive("stare").prefix["cancels"] and not derive("wapo").prefix["cancels"]
    assert derive("luspo").prefix["cancels"]  # |o_i| removed: Omega constant within the group at s = 1
