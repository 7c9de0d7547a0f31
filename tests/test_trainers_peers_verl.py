"""verl 0.9.1's own loss and advantage code against grpo_proofs.trainers (the ``peers`` tests).

Oracle: the release's ``core_algos`` (policy losses, ``agg_loss``, ``kl_penalty``, the advantage
estimators) and config dataclasses, loaded from the installed wheel by
grpo_proofs.trainers.peers.verl, called the way verl's engine calls them (``ppo_loss``: boolean
mask, the mini-batch's normalisers, each micro-batch padded to its own longest response).
float64, 1e-12, except where the release computes in float32 -- RELEASE_FLOAT32:
``grpo_vectorized`` (``group_mean_std`` casts to float32), ``reinforce_plus_plus_baseline``
(``masked_var``'s Bessel factor count/(count-1) is an integer division, float32), ``gpg`` (its
alpha = B / #{R != 0} too) and ``grpo`` with a one-completion group (std ``torch.tensor(1.0)`` is a
float32 scalar, so 1 + 1e-6 is rounded to float32).

Coverage: every loss mode the project models (parametrized) x hypothesis draws of aggregation
mode, clip bounds, dual-clip bound (also <= 1, which verl refuses for vanilla), loss_scale_factor,
KL loss types (with '+'), SAPO temperatures, 1-4 micro-batches, empty rows, log-ratios out to
+-3 (ratios past every bound) and junk in the padding; every estimator the project models
(parametrized) over group sizes 1-5 (a singleton group, which grpo_passk refuses) and lengths
1-7. A case the project models but the release refuses, or the reverse, fails. Negative
controls: the earlier gspo aggregation and the 1e-8 length guard must fail at this tolerance.
"""

import numpy as np
import pytest

from grpo_proofs.errors import InputError
from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.checking.tolerances import CLOSED_FORM, RELEASE_FLOAT32
from grpo_proofs.trainers import advantages, loss_and_grad
from grpo_proofs.trainers.peers.loading import PeerUnavailable, require
from grpo_proofs.trainers.verl import AGG_MODES, ESTIMATORS, KL_TYPES, LOSS_MODES

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _available():
    try:
        require("verl", "0.9.1")
    except PeerUnavailable:
        return False
    return True


pytestmark = [pytest.mark.peers, pytest.mark.skipif(not _available(), reason="needs verl==0.9.1 (peers-nodeps)")]
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def pv():
    from grpo_proofs.trainers.peers import verl

    verl.modules()
    return verl


@st.composite
def batches(draw):
    B = draw(st.integers(2, 8))
    T = draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    L = rng.integers(0 if draw(st.booleans()) else 1, T + 1, size=B)
    L[rng.integers(B)] = T
    mask = (np.arange(T)[None, :] < L[:, None]).astype(np.float64)
    spread = draw(st.sampled_from([0.05, 0.5, 3.0]))
    logp = -rng.uniform(0.1, 3.0, size=(B, T))
    old = logp + spread * rng.uniform(-1, 1, size=(B, T))
    ref = logp + spread * rng.uniform(-1, 1, size=(B, T))
    pad = mask == 0
    for a in (logp, old, ref):
        a[pad] = rng.uniform(-8, 8, size=int(pad.sum()))
    K = draw(st.integers(1, min(4, B)))
    order = rng.permutation(B)
    cuts = sorted(rng.choice(np.arange(1, B), size=K - 1, replace=False)) if K > 1 else []
    mbs = [sorted(int(i) for i in part) for part in np.split(order, cuts)]
    return dict(logp=logp, old_logp=old, ref_logp=ref, mask=mask, advantages=rng.normal(size=B)), mbs


@st.composite
def actor_configs(draw, mode):
    cfg = {"policy_loss": {"loss_mode": mode}, "loss_agg_mode": draw(st.sampled_from(AGG_MODES)),
           "clip_ratio_low": draw(st.sampled_from([0.2, 0.1, 3e-4])), "clip_ratio_high": draw(st.sampled_from([0.2, 0.28, 4e-4])),
           "clip_ratio_c": draw(st.sampled_from([3.0, 1.3, 10.0, 1.0, 0.5]))}
    if draw(st.booleans()):
        cfg["loss_scale_factor"] = draw(st.sampled_from([7, 64]))
    if mode == "sapo":
        cfg["tau_pos"], cfg["tau_neg"] = draw(st.sampled_from([1.0, 0.5])), draw(st.sampled_from([1.05, 2.0]))
    if draw(st.booleans()):
        kind = draw(st.sampled_from(KL_TYPES))
        cfg.update(use_kl_loss=True, kl_loss_type=kind + ("+" if draw(st.booleans()) else ""),
                   kl_loss_coef=draw(st.sampled_from([0.001, 0.3])))
    return cfg


def _release(pv, cfg, step, mbs):
    actor = pv.actor_config(cfg, rollout_n=2, micro_batch_rows=len(mbs[0]))
    return pv.policy_loss_and_grad(actor, micro_batches=mbs, **step)


@pytest.mark.parametrize("mode", LOSS_MODES)
@settings(max_examples=25, **SETTINGS)
@given(data=st.data())
def test_actor_loss_and_grad_equal_verl_0_9_1(pv, mode, data):
    step, mbs = data.draw(batches())
    cfg = data.draw(actor_configs(mode))
    try:
        loss, grad = _release(pv, cfg, step, mbs)
        release_ok = True
    except (AssertionError, ValueError, NotImplementedError):
        release_ok = False
    try:
        mine, my_grad = loss_and_grad("verl", cfg, micro_batches=mbs, version="0.9.1", **step)
        mine_ok = True
    except InputError:
        mine_ok = False
    assert mine_ok == release_ok, cfg
    if release_ok:
        assert rel_err(my_grad, grad) <= CLOSED_FORM, cfg
        assert abs(mine - loss) <= CLOSED_FORM * max(1.0, abs(loss)), cfg


@st.composite
def reward_batches(draw):
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    ids = np.repeat(np.arange(len(sizes)), sizes)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    rng.shuffle(ids)
    kind = draw(st.sampled_from(["binary", "ints", "reals"]))
    B = len(ids)
    rewards = {"binary": rng.integers(0, 2, size=B), "ints": rng.integers(-3, 6, size=B),
               "reals": np.round(rng.normal(size=B) * 8) / 8}[kind].astype(np.float64)
    return rewards, ids, rng.integers(1, 8, size=B)


@pytest.mark.parametrize("est", ESTIMATORS)
@settings(max_examples=25, **SETTINGS)
@given(data=st.data())
def test_advantages_equal_verl_0_9_1(pv, est, data):
    rewards, ids, lengths = data.draw(reward_batches())
    algo = {"adv_estimator": est, "norm_adv_by_std_in_grpo": data.draw(st.booleans())}
    try:
        theirs = pv.advantages(pv.algo_config(algo), rewards, ids, lengths)
        release_ok = True
    except ValueError:
        release_ok = False
    try:
        mine = advantages("verl", algo, rewards, ids, lengths=lengths, version="0.9.1")
        mine_ok = True
    except InputError:
        mine_ok = False
    assert mine_ok == release_ok, (algo, ids)
    if release_ok:
        singleton = np.min(np.unique(ids, return_counts=True)[1]) == 1
        float32 = est in ("grpo_vectorized", "reinforce_plus_plus_baseline", "gpg") or (est == "grpo" and singleton)
        tol = RELEASE_FLOAT32 if float32 else CLOSED_FORM
        assert rel_err(mine, theirs) <= tol, (algo, rel_err(mine, theirs))


def test_engine_statements_mirrored_are_the_releases(pv):
    assert pv.glue_statements() == {}


def test_negative_controls(pv):
    """The earlier gspo aggregation, and the 1e-8 length guard, are caught at this tolerance."""
    rng = np.random.default_rng(0)
    B, T = 6, 7
    L = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < L[:, None]).astype(float)
    logp = -rng.uniform(0.1, 3, size=(B, T))
    step = dict(logp=logp, old_logp=logp + 0.3 * rng.normal(size=(B, T)), mask=mask, advantages=rng.normal(size=B))
    _, release = _release(pv, {"policy_loss": {"loss_mode": "gspo"}}, step, [list(range(B))])
    _, forced = loss_and_grad("verl", {"policy_loss": {"loss_mode": "gspo"}, "loss_agg_mode": "seq-mean-token-mean"}, **step)
    assert rel_err(forced, release) > 0.1
    _, release = _release(pv, {"policy_loss": {"loss_mode": "gpg"}, "loss_agg_mode": "seq-mean-token-mean"}, step,
                          [list(range(B))])
    guarded = -step["advantages"][:, None] * mask / (B * (mask.sum(-1, keepdims=True) + 1e-8))
    assert rel_err(guarded, release) > 100 * CLOSED_FORM


def test_defaults_are_the_releases():
    from grpo_proofs.trainers import option_tables
    from grpo_proofs.trainers.verl import SPEC

    defaults = option_tables.defaults("verl", "0.9.1")
    where = {"train_batch_size": "data.train_batch_size", "rollout.n": "actor_rollout_ref.rollout.n"}
    checked = 0
    for name, key in SPEC.items():
        full = where.get(name)
        if full is None:
            candidates = [f"actor_rollout_ref.actor.{name}", f"algorithm.{name}"]
            full = next((c for c in candidates if c in defaults), None)
        assert full is not None, name
        if name in ("train_batch_size", "rollout.n"):
            continue  # the project leaves them open (given by the rows passed)
        value = defaults[full]
        assert key.default == value or (isinstance(value, (int, float)) and key.default == float(value)), (name, value)
        checked += 1
    assert checked >= 30
