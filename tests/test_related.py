"""Related results: Dr. GRPO's biases, token-gradient cancellation and its fixes, the group-relative baseline.

Each claim passes on its own statement and FAILS on a planted wrong one (a wrong closed form, a wrong
exchangeability table, a wrong fix, a wrong formula) or on a planted wrong measurement. Expected values
typed here are worked by hand in the comments.
"""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from grpo_proofs import notation as n
from grpo_proofs.checking import Context, all_claims, run_claim
from grpo_proofs.props.related import api, claims, derive
from grpo_proofs.props.related.model import FIXES, Case, fix_rows

LABELS = ["related-drgrpo-length-bias", "related-drgrpo-difficulty-bias", "related-token-cancellation-condition",
          "related-cancellation-fixes", "related-advantage-bias"]
QUICK = Context(quick=True)
p, G, L = derive.p, n.G, derive.L


def test_registered_on_their_page_in_paper_order():
    order = list(all_claims())
    assert [label for label in order if label.startswith("related-")] == LABELS
    assert all(all_claims()[label].page == "related" for label in LABELS)
    assert order.index(LABELS[0]) > max(order.index(label) for label in order if label.startswith(("prop3", "prop7")))
    assert order.index(LABELS[-1]) < min(order.index(label) for label in order if label.startswith("trainers"))


@pytest.mark.parametrize("label", LABELS)
def test_claim_passes_and_states_its_coverage(label):
    out = run_claim(label, QUICK)
    assert out.passed, out.detail
    assert out.data["compared"] > 0 and str(out.data["compared"]) in out.detail


# ---------------------------------------------------------------- values worked by hand


def test_worked_values():
    # 3 of 8 correct: p = 3/8, t = (1-p)/p = 5/3; GRPO per token on a correct answer of length 6:
    # A/sigma = (5/8)/sqrt(15/64) = sqrt(5/3), over G |o| = 48
    assert sp.simplify(derive.token_coefficient("grpo", True).subs({derive.t: sp.Rational(5, 3), G: 8, L: 6})
                       - sp.sqrt(sp.Rational(5, 3)) / 48) == 0
    # Dr. GRPO on a wrong answer: -p/G = -3/64, whatever the length
    assert derive.token_coefficient("dr_grpo", False).subs({derive.t: sp.Rational(5, 3), G: 8}) == sp.Rational(-3, 64)
    # the difficulty factor at p = 1/2 (t = 1) is 1/sqrt(1/4) = 2
    assert derive.difficulty_factor().subs(derive.t, 1) == 2
    # E[p_hat | R = 1] = 1/2 for G = 2, and (1 + p)/3 for G = 3 (p(1-p^2)/(3p(1-p)))
    assert api.enumerated_baseline(2, [0.1, 0.7])[0] == pytest.approx([0.5, 0.5], abs=1e-15)
    assert api.enumerated_baseline(3, [0.2])[0][0] == pytest.approx(1.2 / 3, abs=1e-15)
    assert derive.enumerated_mean(3) - (1 + p) / 3 != 0 and sp.cancel(derive.enumerated_mean(3) - (1 + p) / 3) == 0
    # projection: A = (1, -1), w = (3, 1): A.w = 2, |A|^2 = 2, w' = (3 - 1, 1 + 1) = (2, 2)
    assert api.projection_fix(np.array([1.0, -1.0]), np.array([3.0, 1.0])).tolist() == [2.0, 2.0]
    assert api.min_fix(None, torch.tensor([0.3, 0.0, 0.2])).tolist() == [0.0, 0.0, 0.0]


def test_shared_token_gradient_of_the_worked_example():
    # G = 4, r = (1, 0, 0, 1), |o| = (10, 30, 20, 40), s = 1: GRPO gives alpha_i A_i = A_i/(G |o_i| sigma) =
    # (1/40, -1/120, -1/80, 1/160), which add up to W = 1/96; Dr. GRPO gives A_i/G, which add up to 0
    x = [np.zeros(L_) for L_ in (10, 30, 20, 40)]
    g = api.shared_token_gradient("grpo", [1, 0, 0, 1], [10, 30, 20, 40], x)
    assert g == pytest.approx([1 / 40, -1 / 120, -1 / 80, 1 / 160], rel=1e-14)
    assert g.sum() == pytest.approx(1 / 96, rel=1e-14)
    assert abs(api.shared_token_gradient("dr_grpo", [1, 0, 0, 1], [10, 30, 20, 40], x).sum()) < 1e-17


def test_stated_exchangeability_table():
    cells = {(rr, lr) for rr in derive.RATIO_REGIMES for lr in derive.LENGTH_REGIMES}
    assert {c for c in cells if claims.stated_exchangeable("dr_grpo", *c)} == {
        ("s = 1", "equal lengths"), ("s = 1", "lengths differ"), ("in the band", "equal lengths"),
        ("in the band", "lengths differ")}
    assert {c for c in cells if claims.stated_exchangeable("gspo", *c)} == {("s = 1", "equal lengths")}
    assert all(claims.stated_exchangeable("cispo", *c) for c in cells)


# ---------------------------------------------------------------- negative controls: each must FAIL


def test_length_bias_fails_on_a_planted_formula():
    no_length = {"grpo": (sp.sqrt((1 - p) / p) / G, -sp.sqrt(p / (1 - p)) / G), "dr_grpo": derive.LENGTH_STATED["dr_grpo"]}
    out = claims.length_bias_check(QUICK, stated=no_length)
    assert not out.passed and "grpo correct" in out.detail


def test_length_bias_fails_on_a_planted_measurement(monkeypatch):
    true = api.reference_token_gradient
    monkeypatch.setattr(api, "reference_token_gradient", lambda *a, **k: [g * (1 + 1e-9) for g in true(*a, **k)])
    out = claims.length_bias_check(QUICK)
    assert not out.passed and 5e-10 < out.error < 2e-9


def test_difficulty_bias_fails_on_a_planted_factor():
    out = claims.difficulty_bias_check(QUICK, stated=1 / (p * (1 - p)))
    assert not out.passed and "residue" in out.detail


def test_difficulty_bias_fails_on_a_planted_measurement(monkeypatch):
    true = api.reference_token_gradient
    monkeypatch.setattr(api, "reference_token_gradient",                # GRPO with the sample std instead
                        lambda name, r, lengths, sigma="pop": true(name, r, lengths, "sample"))
    assert not claims.difficulty_bias_check(QUICK).passed


def test_condition_fails_on_a_planted_table():
    def planted(name, rr, lr):                       # forgets that clipping one advantage sign breaks Dr. GRPO
        return True if name == "dr_grpo" else claims.stated_exchangeable(name, rr, lr)
    out = claims.condition_check(QUICK, stated=planted)
    assert not out.passed and "dr_grpo, above the band" in out.detail


def test_condition_fails_on_a_planted_measurement():
    def planted(name, rewards, lengths, x):          # every method measured with Dr. GRPO's loss
        return api.shared_token_gradient("dr_grpo", rewards, lengths, x)
    assert not claims.condition_check(QUICK, measure=planted).passed


def test_fixes_fail_on_a_planted_projection():
    wrong = {"min": api.min_fix, "projection": lambda A, w: w - (A * w).sum() / (A * A).sum() ** 0.5 * A}
    out = claims.fixes_check(QUICK, fixes=wrong)
    assert not out.passed and "projection: W" in out.detail


def test_fix_without_stop_gradient_does_not_cancel():
    rows = fix_rows(Case("gspo", "in the band", seq=(1 - 1.5e-4, 1 + 2e-4)), FIXES)
    whole = {r.fix: r for r in rows if r.shared == "whole group"}
    assert whole["projection"].remaining < 1e-14 < 1e-3 < whole["projection, no stop-gradient"].remaining
    assert whole["min"].remaining < 1e-14 < 1e-3 < whole["min, no stop-gradient"].remaining


def test_advantage_bias_fails_on_planted_formulas():
    for planted in (p, (p - p ** G) / (1 - (1 - p) ** G)):        # unbiased; only R = 0 dropped
        out = claims.advantage_bias_check(QUICK, stated=planted)
        assert not out.passed and "residue" in out.detail


def test_advantage_bias_factor_fails_when_planted(monkeypatch):
    q = 1 - p
    monkeypatch.setattr(derive, "advantage_bias_factor",
                        lambda: p * q * (q ** G - p ** G) / (1 - q ** G - p ** G))   # exponent G instead of G - 1
    assert derive.advantage_residues(range(2, 3))["bias factor"] != 0


def test_comparisons_need_coverage():
    assert api.covered([], floor=1) == (math.inf, 0)
    assert api.covered([0.0, 0.0, 0.0], floor=4) == (math.inf, 3)
    assert api.covered([0.0, math.nan], floor=1)[0] == math.inf
    assert api.covered([1e-16, 2e-16], floor=2) == (2e-16, 2)
    nan = lambda name, rewards, lengths, x: np.full(len(rewards), np.nan)  # noqa: E731
    assert not claims.condition_check(QUICK, measure=nan).passed


# ---------------------------------------------------------------- the layout's import rules


@pytest.mark.parametrize("module, forbidden", [("derive", {"torch", "numpy"}), ("api", {"sympy"}),
                                               ("model", {"sympy"}), ("claims", {"sympy"})])
def test_module_imports(module, forbidden):
    path = Path(claims.__file__).with_name(f"{module}.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert not names & forbidden
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 320
