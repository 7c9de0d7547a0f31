"""Negative controls: every claim family's comparison FAILS when a wrong prediction is planted.

One test per family (gradient, prefix, loss_value, reward_scale, overshoot, related, trainers, check),
each naming what it plants; plus the coverage floors (a comparison over too few items fails, whatever
its error) and the hypothesis profile the suite runs under. A check that still passed here could not
tell a right prediction from a wrong one.
"""

import dataclasses
import math
import os

import numpy as np
import pytest
import sympy as sp
from hypothesis import settings

from grpo_proofs.checking.coverage import compare, floor_fraction, merge
from grpo_proofs.checking.table1 import TABLE1
from grpo_proofs.checking import Context, all_claims

QUICK = Context(quick=True)
all_claims()


def _scaled_row(name: str, factor: float):
    """Table 1's row of ``name`` with its weight multiplied by ``factor`` (a wrong stated weight)."""
    row = TABLE1[name]
    return dataclasses.replace(row, alpha=lambda **kw: factor * row.alpha(**kw))


# ------------------------------------------------------------------ coverage floors


def test_comparison_below_its_floor_fails_even_with_zero_error():
    """Planted: a selection that keeps nothing. The error over it is 0, the comparison still fails."""
    m = [np.array([1.0, 2.0, 3.0])]
    c = compare(m, [np.array([5.0, 6.0, 7.0])], keep=[np.zeros(3, bool)], floor=1)
    assert c.compared == 0 and c.dropped == 3 and c.below_floor and c.error == math.inf
    assert not c.passed(1e300) and "below the floor of 1" in c.message
    # the same data, fully covered, is compared and reported
    ok = compare(m, m, floor=3, what="coordinates")
    assert ok.passed(0.0) and ok.message == "3/3 coordinates compared (100.0%)"
    assert floor_fraction(10, 0.8) == 8
    assert not merge([ok, c]).passed(1.0)


def test_hypothesis_runs_derandomised_with_reproduction_blobs():
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") != "ci":
        pytest.skip("another hypothesis profile was chosen")
    assert settings.default.derandomize and settings.default.print_blob and settings.default.deadline is None


# ------------------------------------------------------------------ families


def test_gradient_fails_on_a_planted_derived_gradient(monkeypatch):
    """Planted: token_gradient (the derived side of eq15-gradient) off by 1e-9 relative."""
    from grpo_proofs.checking.tolerances import CLOSED_FORM
    from grpo_proofs.props.gradient import claims as cg
    from grpo_proofs.variants import REGISTRY

    true = cg.token_gradient
    monkeypatch.setattr(cg, "token_gradient", lambda *a, **k: [g * (1 + 1e-9) for g in true(*a, **k)])
    rng = np.random.default_rng(0)
    for name in ("grpo", "dapo", "gspo"):
        rewards, lengths, lr = cg.random_group(rng, REGISTRY[name])
        err = cg.check_variant(REGISTRY[name], rewards, lengths, lr)
        assert 5e-10 < err and err > CLOSED_FORM, name


def test_prefix_fails_on_a_planted_table1_weight(monkeypatch):
    """Planted: GRPO's Table 1 weight doubled. Prop. 1's comparison (derived W against the stated
    sum_i A_i omega_i) must find a nonzero residue; the right weight gives none."""
    from grpo_proofs.props.prefix.claims import LENGTHS, SUBSETS, symbolic_rewards
    from grpo_proofs.props.prefix.derive import derived_W, is_zero, table1_omega
    from grpo_proofs.variants import REGISTRY

    v = REGISTRY["grpo"]
    _, A = symbolic_rewards(len(LENGTHS))
    S = SUBSETS[-1]
    W = derived_W(v, LENGTHS, S, A, [1] * len(LENGTHS))
    right = table1_omega(v, LENGTHS, A, [1] * len(LENGTHS))
    assert is_zero(W - sp.Add(*[A[i] * right[i] for i in S]))
    monkeypatch.setitem(TABLE1, "grpo", _scaled_row("grpo", 2))
    wrong = table1_omega(v, LENGTHS, A, [1] * len(LENGTHS))
    assert not is_zero(W - sp.Add(*[A[i] * wrong[i] for i in S]))


def test_prefix_group_constant_reading_fails_on_a_planted_weight(monkeypatch):
    """Planted: Dr. GRPO's Table 1 weight made length-dependent (1/(G |o_i|)); the cancellation claim
    must see the Table 1 reading disagree with the derived one."""
    from grpo_proofs.props.prefix.claims import group_constant
    from grpo_proofs.variants import REGISTRY

    assert group_constant(REGISTRY["dr_grpo"])
    monkeypatch.setitem(TABLE1, "dr_grpo", dataclasses.replace(TABLE1["dr_grpo"], alpha=lambda G, L_i, **_: 1 / (G * L_i)))
    assert not group_constant(REGISTRY["dr_grpo"])


def test_loss_value_fails_on_a_planted_table1_weight(monkeypatch):
    """Planted: DAPO's Table 1 weight times 3/2 (the stated side of prop4-loss-value)."""
    from grpo_proofs.checking import run_claim

    monkeypatch.setitem(TABLE1, "dapo", _scaled_row("dapo", sp.Rational(3, 2)))
    out = run_claim("prop4-loss-value", QUICK)
    assert not out.passed and "dapo" in out.detail


def test_reward_scale_fails_on_a_planted_factor(monkeypatch):
    """Planted: the advantage scale factor k of Prop. 5 multiplied by phi (a wrong degree)."""
    from grpo_proofs import notation as n
    from grpo_proofs.props.reward_scale import claims as rs

    true = rs.advantage_scaling
    monkeypatch.setattr(rs, "advantage_scaling", lambda v: {**true(v), "k": true(v)["k"] * n.phi})
    out = rs._prop5(QUICK)
    assert not out.passed


def test_noninvariant_fraction_fails_when_nothing_is_compared(monkeypatch):
    """Planted: a premise selection that keeps no coordinate. The fraction of disagreements over nothing
    is no evidence: the claim fails and says it is below its coverage floor."""
    import grpo_proofs.props.reward_scale.experiments as rc
    from grpo_proofs.props.reward_scale import claims_consequences as rsc

    true = rc.conditioned

    def keeps_nothing(grads, scaled_grads=None, *a, **k):      # the premise selection only, not the resolution
        out = true(grads, scaled_grads, *a, **k)
        return out if scaled_grads is None else [np.zeros_like(x) for x in out]

    monkeypatch.setattr(rc, "conditioned", keeps_nothing)
    out = rsc._fraction(QUICK)
    assert not out.passed and out.error == math.inf and "below the coverage floor" in out.detail
    assert out.data["compared"] == 0


def test_overshoot_fails_on_a_planted_ratio(monkeypatch):
    """Planted: C_{T,k} typed without the square root over the second-moment factor."""
    from grpo_proofs.props.overshoot import claims as oc
    from grpo_proofs.props.overshoot import derive as ov

    def wrong(one_minus=None):
        om = one_minus or (lambda beta, tt: (ov.c1 if beta is ov.b1 else ov.c2)(tt))
        return (ov.b1 ** (ov.k + 1) * om(ov.b1, ov.T - 1) / om(ov.b1, ov.T + ov.k)
                * (om(ov.b2, ov.T + ov.k) / (ov.b2 ** (ov.k + 1) * om(ov.b2, ov.T - 1))))

    ov.ratio_residues.cache_clear()
    monkeypatch.setattr(ov, "theory_ratio", wrong)
    try:
        out = oc._check_ratio(QUICK)
    finally:
        ov.ratio_residues.cache_clear()
    assert not out.passed and "C_{T,k} derived - paper" in out.detail


def test_overshoot_momentum_induction_fails_on_a_planted_ratio(monkeypatch):
    """Planted: the heavy-ball ratio mu^k instead of mu^(k+1): its base case no longer holds."""
    from grpo_proofs.props.overshoot import derive as ov

    ov.ratio_residues.cache_clear()
    monkeypatch.setattr(ov, "momentum_ratio", lambda: ov.mu ** ov.k)
    try:
        res = ov.ratio_residues()
    finally:
        ov.ratio_residues.cache_clear()
    assert sp.simplify(res["momentum base case"]) != 0


def test_related_fails_on_a_planted_formula():
    """Planted: Dr. GRPO's per-token coefficient on a correct answer halved."""
    from grpo_proofs.props.related import claims, derive

    stated = {**derive.LENGTH_STATED, "dr_grpo": ((1 - derive.p) / (2 * derive.n.G), -derive.p / derive.n.G)}
    out = claims.length_bias_check(QUICK, stated=stated)
    assert not out.passed


def test_trainers_fail_on_a_planted_mapping(monkeypatch):
    """Planted: the mapped (closed-form) trainer gradient off by 1e-9 relative, on the first three configs."""
    import grpo_proofs.trainers as tr
    from grpo_proofs.trainers import claims as ct

    true_map, true_cfgs = tr.mapped_gradient, ct.LOSS_AND_GRAD_CONFIGS
    monkeypatch.setattr(tr, "mapped_gradient", lambda *a, **k: true_map(*a, **k) * (1 + 1e-9))
    monkeypatch.setattr(ct, "LOSS_AND_GRAD_CONFIGS", lambda quick: true_cfgs(quick)[:3])
    out = ct.check_loss_and_grad(QUICK)
    assert not out.passed and 5e-10 < out.error < 2e-9


def test_check_fails_on_a_planted_scale_degree(monkeypatch):
    """Planted: the reward-scale degree of Dr. GRPO raised by one (k = phi^2 instead of phi). The
    confirmation compares every resolved coordinate, so the wrong prediction fails; the coverage is
    stated."""
    import grpo_proofs.props.reward_scale.confirm as cs
    from grpo_proofs.check.spec_files import load_spec
    from grpo_proofs.check.verdict import derive
    from grpo_proofs.checking.confirmation import Options

    spec = load_spec("dr_grpo")
    verdicts = derive(spec.variant)
    true = cs.scale_degree
    monkeypatch.setattr(cs, "scale_degree", lambda v: (true(v)[0] + 1,) + tuple(true(v)[1:]))
    main = cs.confirm_reward_scale(spec, verdicts, Options(quick=True))[0]
    assert not main.passed and main.error > 1e-3
    assert main.data["compared"] >= main.data["floor"] > 0 and "coordinate-steps compared" in main.detail


def test_training_drift_fails_when_every_dr_grpo_step_was_skipped():
    """Planted: a drift result whose Dr. GRPO runs took no optimizer step (every group had equal rewards).
    Its zero drift is no evidence: the claim fails and states the steps that counted."""
    from grpo_proofs.props.prefix import drift as dr
    from grpo_proofs.props.prefix.claims_model import drift_outcome

    setup = dr.DriftSetup(steps=4, G=4)

    def run(v, detached, logp, skipped):
        return dr.DriftRun(v, detached, np.asarray(logp, float), np.full(4, 0.1 if v == "grpo" else 0.0),
                           np.full(4, 0.5), skipped)

    runs = {("grpo", False): run("grpo", False, [0, 0.2, 0.4, 0.6, 0.8], 0),
            ("grpo", True): run("grpo", True, [0, 0.1, 0.2, 0.3, 0.4], 0),
            ("dr_grpo", False): run("dr_grpo", False, [0] * 5, 4),
            ("dr_grpo", True): run("dr_grpo", True, [0] * 5, 4)}
    out = drift_outcome(dr.DriftResult(setup, runs))
    assert not out.passed and "too few optimizer steps" in out.detail and out.data["compared"] == 0
    runs[("dr_grpo", False)] = run("dr_grpo", False, [0] * 5, 0)
    runs[("dr_grpo", True)] = run("dr_grpo", True, [0] * 5, 0)
    ok = drift_outcome(dr.DriftResult(setup, runs))
    assert ok.passed and ok.data["compared"] == 4


def test_overshoot_toy_fails_on_a_planted_step_ratio(monkeypatch):
    """Planted: the derived post-clip step ratio of the one-logit toy 0.1% too large."""
    from grpo_proofs.props.overshoot import claims as oc

    true = oc.derived_value
    monkeypatch.setattr(oc, "derived_value", lambda *a, **k: true(*a, **k) * 1.001)
    out = oc._check_toy(QUICK)
    assert not out.passed and out.data["compared"] > 0


def test_overshoot_adam_fails_when_nothing_is_compared(monkeypatch):
    """Planted: a run that yields no post-clip step to compare. No comparison is no evidence: the claim
    fails below its coverage floor."""
    from grpo_proofs.props.overshoot import claims as oc

    monkeypatch.setattr(oc, "adam_zero_gradient_errors", lambda *a, **k: [])
    out = oc._check_adam(QUICK)
    assert not out.passed and out.error == math.inf and "below the floor" in out.detail
    assert out.data["compared"] == 0


def test_findings_table_fails_on_a_planted_reference_loss():
    """Planted: CFPO's reference loss replaced by GRPO's (a clip where CFPO restores). The findings table's
    measures and verdicts no longer agree; with the true losses the same check passes."""
    from grpo_proofs.props.findings.claims import table_check
    from grpo_proofs.reference import REFERENCE

    bad = table_check(QUICK, references={**REFERENCE, "cfpo": REFERENCE["grpo"]})
    assert not bad.passed and "18 of 19" in bad.detail
    assert table_check(QUICK).passed


def test_findings_verdicts_follow_the_measures():
    """Planted: measures of a clip with a nonzero gradient past the bound; the verdict must not say momentum."""
    from grpo_proofs.props.findings.api import verdicts

    m = {"W": 0.0, "W_rel": 0.0, "rho": 1.0, "residual": 0.0, "past_up": 0.0, "past_low": 0.0}
    assert "momentum only" in verdicts(m)["overshoot"]
    assert "momentum only" not in verdicts({**m, "past_low": 1e-6})["overshoot"]
    assert verdicts({**m, "residual": 1e-3})["scale"] == "not proportional"
    assert verdicts({**m, "W_rel": 1e-6, "W": -1.0})["prefix"] == "W < 0"


def test_cfpo_real_model_fails_on_a_planted_bound():
    """Planted: CFPO's final excursion stated at most 1% of PPO-clip's (measured: about a third); the real-model
    claim must fail, and pass with the stated half."""
    from grpo_proofs.props.frontier.claims import real_model_check

    assert not real_model_check(QUICK, stated_bound=0.01).passed
    assert real_model_check(QUICK).passed


def test_other_trainers_fail_on_a_planted_transcription():
    """Planted: NeMo-RL's loss transcribed with the plain group std (no leave-one-out); the mapped surrogate and
    the transcription disagree on the unbalanced group."""
    import torch

    from grpo_proofs.trainers.claims_others import defaults_check

    def plain(logp, old, rewards, mask):
        r = torch.as_tensor(rewards, dtype=logp.dtype)
        A = ((r - r.mean()) / r.std())[:, None]
        s = torch.exp(logp - old)
        return -((torch.minimum(s * A, s.clamp(0.8, 1.2) * A) * mask).sum() / mask.sum())

    assert not defaults_check(QUICK, transcriptions={"nemo_rl": plain}).passed
    assert defaults_check(QUICK).passed


def test_nemo_singleton_fails_on_a_planted_condition():
    """Planted: 'the std is zero iff the rewards of the whole group are equal' (wrong for the singleton)."""
    from grpo_proofs.trainers.claims_others import singleton_check

    out = singleton_check(QUICK, condition=lambda r, i: len(set(r)) <= 1)
    assert not out.passed and out.data["wrong"] > 0


def test_sgd_scale_fails_on_a_planted_invariance():
    """Planted: SGD stated scale-invariant (factor 1 instead of phi = 10); the measured steps differ by 10x."""
    from grpo_proofs.props.reward_scale.claims_practice import sgd_check

    out = sgd_check(QUICK, stated_sgd_factor=1.0)
    assert not out.passed and out.data["sgd_error"] > 1


@pytest.mark.parametrize("kappa", [1.0, 10.0])
def test_aggregation_fails_on_a_planted_factor(kappa):
    """Planted: the aggregation switch stated as no loss scale (1) or as 10 instead of N/B; the predicted
    steps (and, clipped, the predicted clip activity) no longer match real AdamW."""
    from grpo_proofs.props.reward_scale.claims_practice import aggregation_check

    out = aggregation_check(QUICK, kappa=kappa)
    assert not out.passed
    rows = out.data["rows"]
    assert all(r["error"] > r["tolerance"] for r in rows if r["precision"] == "float64" and not r["clip"])
