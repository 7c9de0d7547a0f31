"""Every verdict agrees with its own measurement, or says FAIL.

Expected values are derived here by hand (the paper's formulas typed from its text), never copied from
the code under test; each comparison has a control that a wrong verdict would fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os

import numpy as np
import pytest
import sympy as sp

from grpo_proofs.cli import main
from grpo_proofs.errors import InputError
from grpo_proofs.variants import REGISTRY

OPT_TOL = 1e-10
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def C_Tk(T, k, b1, b2):
    """arXiv 2601.05002, App. D (Prop. 7), typed from the paper."""
    return (b1 ** (k + 1) * (1 - b1 ** (T - 1)) / (1 - b1 ** (T + k))
            * math.sqrt((1 - b2 ** (T + k)) / (b2 ** (k + 1) * (1 - b2 ** (T - 1)))))


def check_json(*argv):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["check", *argv, "--json"])
    return rc, json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def trl_kl(tmp_path_factory):
    """A TRL config: loss_type dapo, KL beta = 0.04, rewards scaled by the group std + 1e-4 (quick check)."""
    path = tmp_path_factory.mktemp("cfg") / "trl_kl.yaml"
    path.write_text("trl:\n  loss_type: dapo\n  beta: 0.04\n  scale_rewards: true\n")
    return check_json(str(path), "--quick")


# -- reward scale: the sigma constant and the KL term ------------------------------------------

def test_sigma_constant_with_kl_is_not_invariant(trl_kl):
    rc, p = trl_kl
    assert rc == 0, p["failed"]
    assert p["verdicts"]["reward_scale"]["verdict"] == "not invariant"
    assert {t["label"]: t["verdict"] for t in p["trainer_verdicts"]}["reward_scale"] == "not invariant"
    # the factor on the worked example group, by hand: sigma_sample = sqrt(1/3), c = 1e-4
    s0, c = math.sqrt(1 / 3), 1e-4
    by_hand = {phi: phi * (s0 + c) / (phi * s0 + c) for phi in (0.01, 0.1, 10.0, 100.0)}
    for x in p["verdicts"]["reward_scale"]["factors_worked"]:
        assert x["k"] == pytest.approx(by_hand[x["phi"]], rel=1e-14)


def test_sigma_constant_with_kl_predicted_change_per_phi_is_measured(trl_kl):
    _, p = trl_kl
    rs = next(c for c in p["confirmations"] if c["name"] == "reward_scale")
    assert rs["passed"] and rs["error"] <= OPT_TOL
    sigma = rs["data"]["sigma"]
    for row in rs["data"]["rows"]:
        # k from the group's own sigma, by hand
        assert row["factor"] == pytest.approx(row["phi"] * (sigma + 1e-4) / (row["phi"] * sigma + 1e-4), rel=1e-14)
        assert row["predicted_change"] == pytest.approx(row["measured_change"], rel=1e-6)
    # control: the step really changes, so the old verdict "the whole gradient, KL included, is unchanged" fails
    assert max(r["measured_change"] for r in rs["data"]["rows"]) > 1e3 * OPT_TOL


def test_grad_clip_activity_predicted_per_step(trl_kl):
    _, p = trl_kl
    gc = next(c for c in p["confirmations"] if c["name"] == "grad_clip")
    assert gc["passed"] and gc["data"]["activity_mismatches"] == 0
    pred, meas = gc["data"]["active_predicted"], gc["data"]["active_measured"]
    assert pred == meas
    assert pred["unscaled"][0] != pred["scaled"][0]    # the max norm lies between the two first gradient norms


def test_grad_clip_active_in_the_scaled_run_only_for_a_centered_advantage():
    rc, p = check_json("dr_grpo", "--quick")
    assert rc == 0, p["failed"]
    gc = next(c for c in p["confirmations"] if c["name"] == "grad_clip")
    # phi = 10 multiplies a centered advantage's gradient by 10: the scaled run clips, the unscaled does not
    assert gc["data"]["phi"] == 10.0 and gc["data"]["active_predicted"]["scaled"][0] is True
    assert gc["data"]["active_predicted"]["unscaled"][0] is False
    assert gc["passed"] and gc["data"]["measured_change"] > 1e-3


def test_every_confirmation_is_a_comparison(trl_kl):
    _, p = trl_kl
    for c in p["confirmations"]:
        assert c["error"] is not None and c["tolerance"] is not None and c["passed"] is True, c["name"]
        assert "not asserted" not in c["detail"] and "reported" not in c["detail"]


def test_a_confirmation_without_a_comparison_fails():
    from grpo_proofs.checking.confirmation import Confirmation

    assert Confirmation("x", "t", "p").passed is False
    assert Confirmation("x", "t", "p", float("inf"), 1.0).passed is False
    assert Confirmation("x", "t", "p", 0.0, 0.0).passed is True


# -- overshoot: only reachable steps -------------------------------------------------------------

def test_overshoot_numbers_only_for_reachable_steps():
    from grpo_proofs.check.verdict import derive

    ov = derive("dapo", mu=4, beta1=0.9, beta2=0.99).overshoot
    assert (ov["T"], ov["k"]) == (2, 2) and [r["k"] for r in ov["table"]] == [0, 1, 2]
    assert ov["total_drift"] == pytest.approx(sum(C_Tk(2, j, 0.9, 0.99) for j in range(3)), rel=1e-12)
    rho = 0.9 / math.sqrt(0.99)
    assert ov["later_batches_drift"] == pytest.approx(rho + rho ** 2 + rho ** 3, rel=1e-12)
    assert derive("dapo", mu=1).overshoot["table"] == []
    with pytest.raises(InputError, match="past the mu = 2"):
        derive("dapo", mu=2, T=5, k=4)
    # without a mu (the paper's setting) the old defaults and the unbounded drift rho/(1 - rho)
    ov = derive("dapo").overshoot
    assert (ov["T"], ov["k"]) == (5, 4) and ov["total_drift"] == pytest.approx(0.9 / math.sqrt(0.999) /
                                                                               (1 - 0.9 / math.sqrt(0.999)))


def test_card_for_mu_2_quotes_no_unreachable_number(capsys):
    from grpo_proofs.cli import main as cli

    rc = cli(["check", os.path.join(EXAMPLES, "trl_dapo.yaml"), "--symbolic"])
    out = capsys.readouterr().out
    section = out.split("5. Momentum overshoot")[1].split("\n\n")[0]
    assert rc == 0 and "C_(T,1)" not in section and "C_(T,0) = 0.671580" in section
    assert f"{C_Tk(2, 0, 0.9, 0.99):.6f}" == "0.671580"
    assert "9.475" not in section                     # rho/(1 - rho) of beta2 = 0.99: not reachable with mu = 2


def test_premise_run_excursion_predicted_and_eps_matters():
    from grpo_proofs.props.overshoot.premise import premise_run

    run = premise_run("dapo", T=2, mu=4, betas=(0.9, 0.99))
    assert run.T == 2 and run.all_clipped[0] is False and all(run.all_clipped[1:])
    assert run.covered == 3 and all(g == 0.0 for g in run.grad_max[1:])
    assert max(run.step_error) <= OPT_TOL
    assert min(run.step_error_eps_neglected) > 1e3 * OPT_TOL      # control: C_(T,k) without eps is visibly off
    err = max(float(np.abs(p - run.excursion[1 + j]).max()) for j, p in enumerate(run.predicted_excursion))
    assert err <= 1e-12 and min(float(e.min()) for e in run.predicted_excursion) > 0   # every token past its bound


# -- readable forms --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_gradient_branches_match_the_compiled_gradient(name):
    """Each branch evaluated at random points inside its region equals the compiled gradient there."""
    from grpo_proofs import notation as n
    from grpo_proofs.props.gradient.derive import gradient_branches
    from grpo_proofs.evaluate import token_gradient
    from grpo_proofs.variants import Ratio

    v = REGISTRY[name]
    if v.ratio is not Ratio.TOKEN and v.ratio is not Ratio.SG_WEIGHT and v.ratio is not Ratio.LOGPROB:
        pytest.skip("sequence ratios: s is the completion's ratio, checked through the token path below")
    rng = np.random.default_rng(0)
    rewards, lengths = [1.0, 0.0, 0.0, 1.0], [3, 2, 4, 2]
    logr = [rng.uniform(-0.6, 1.9, size=L) for L in lengths]
    g = token_gradient(v, rewards, lengths, log_ratios=logr)
    # A_i = r_i - mean r = +-1/2, sigma_pop = 1/2, G = 4, sum |o| = 11: Table 1's weights typed by hand
    A_hand = [0.5, -0.5, -0.5, 0.5]
    alpha_hand = {"grpo": lambda L: 1 / (4 * L * 0.5), "grpo_v32": lambda L: 1 / (4 * L),
                  "gtpo": lambda L: 1 / (4 * L), "dapo": lambda L: 1 / (0.5 * 11),
                  "cppo": lambda L: 1 / (4 * L * 0.5), "dr_grpo": lambda L: 1 / 4, "gpg": lambda L: 1 / 11,
                  "cispo": lambda L: 1 / (0.5 * 11)}[name]
    branches = gradient_branches(v)
    for i in range(4):
        for t in range(lengths[i]):
            s, A, a = float(np.exp(logr[i][t])), A_hand[i], alpha_hand(lengths[i])
            if any(abs(s - b) < 1e-9 for b in (0.8, 1.2, 1.28, 5.0)):
                continue
            value = None
            for b in branches:
                if _holds(b["where"], A, s):
                    value = float(sp.sympify(b["expr"].replace("alpha", "a_")).subs({"A_i": A, "s": s, "a_": a}))
            assert value is not None and value == pytest.approx(g[i][t], rel=1e-12, abs=1e-15), (name, b, A, s)


def _holds(where: str, A: float, s: float) -> bool:
    """Evaluate a branch condition as printed ('A_i > 0 and 0.8 < s < 1.2, or ...') at (A, s)."""
    text = where.replace("every A_i and s", "True").replace(", either sign of A_i", "")
    text = text.replace(", or ", ") or (").replace("any s", "True")
    return bool(eval(f"({text})", {}, {"A_i": A, "s": s}))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_card_shows_no_raw_sympy_or_python(capsys, name):
    rc = main(["check", name, "--symbolic"])
    out = capsys.readouterr().out
    assert rc == 0
    for word in ("Heaviside", "Piecewise", "None", "Sum(", "[i]", "exp(x)", "NoneType"):
        assert word not in out, (name, word)


def test_yaml_values_are_named_without_python_words(capsys, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text('alpha: "1/G"\nratio: token\nclip: 0.2\nadvantage: centered\nbeta:\n')
    rc = main(["check", str(spec), "--symbolic"])
    err = capsys.readouterr().err
    assert rc == 2 and "nothing (an empty value)" in err and "None" not in err


def test_one_sided_clip_is_exposed_per_token_only(tmp_path):
    spec = tmp_path / "one_sided.yaml"
    spec.write_text('alpha: "1/(G*|o_i|*sigma)"\nratio: token\nclip: [null, 0.28]\nadvantage: std-pop\n')
    rc, p = check_json(str(spec), "--quick")
    ov = p["verdicts"]["overshoot"]
    assert rc == 0 and ov["exposed"] is True and ov["one_sided"] is True
    prem = next(c for c in p["confirmations"] if c["name"] == "overshoot_premise")
    # A < 0 completions are never clipped: the batch gradient never vanishes, as the verdict says
    assert prem["passed"] and prem["error"] == 0.0 and min(prem["data"]["grad_max"]) > 0
