"""OpenRLHF 0.11.2's own loss, advantage and option code against grpo_proofs.trainers (the ``peers`` tests).

Oracle: the release's ``PolicyLoss``, ``aggregate_loss``, ``compute_approx_kl``,
``_optimizer_step_loss_norm``, ``compute_advantages_and_returns`` and ``train_ppo_ray`` option
parser, loaded from the installed wheel by grpo_proofs.trainers.peers.openrlhf and driven as the
actor drives them (gas = K micro-batches, DeepSpeed's 1/gas, ``loss = actor_loss + kl_loss * kl_ctl``).
Configs are argument lines parsed by the release's own parser (then ``hierarchize``) on its
side and by grpo_proofs.trainers.config_files on the project's side.

Tolerance: OpenRLHF keeps its normalisers (token and sample counts / gas) and its KL estimator
and reward whitening in float32; the project computes in float64 -- RELEASE_FLOAT32 (the policy
term with gas = 1, where the normaliser is an exact float32 integer, must still agree to 1e-12).

Coverage: both policy loss types x both aggregation modes x dual clip (also <= 1, which the
release refuses) x KL in the loss (k1, k2, k3, with and without the unbiased gradient, init_coef
0 too) x 1-4 micro-batches x empty rows, log-ratios out to +-25 (beyond the +-20 clamp), junk in
the padding; every group estimator (with the reward clip range, n_samples_per_prompt 1 too,
which the release refuses for the group estimators); argument lines of the loss options.
"""

import ast

import numpy as np
import pytest

from grpo_proofs.errors import InputError
from grpo_proofs.runtime.numerics import rel_err
from grpo_proofs.checking.tolerances import CLOSED_FORM, RELEASE_FLOAT32
from grpo_proofs.trainers import advantages, effective_config, loss_and_grad
from grpo_proofs.trainers.config_files import parse_argument_line
from grpo_proofs.trainers.peers.loading import PeerUnavailable, release_source, require

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _available():
    try:
        require("openrlhf", "0.11.2")
    except PeerUnavailable:
        return False
    return True


pytestmark = [pytest.mark.peers, pytest.mark.skipif(not _available(), reason="needs openrlhf==0.11.2 (peers-nodeps)")]
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def po():
    from grpo_proofs.trainers.peers import openrlhf

    openrlhf.modules()
    return openrlhf


def _release_args(po, argv):
    """The release's parse of an argument line, with its own eps_clip_low_high default."""
    args = po.parse(argv)
    if args.actor.eps_clip_low_high is None:
        args.actor.eps_clip_low_high = (args.actor.eps_clip, args.actor.eps_clip)
    return args


def _group_check(po):
    """The release's own statement refusing group estimators with n_samples_per_prompt = 1 (train_ppo_ray main)."""
    path, text = release_source("openrlhf", "cli/train_ppo_ray.py")
    main = [n for n in ast.parse(text).body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)][0]
    node = [s for s in main.body if isinstance(s, ast.If) and "requires n_samples_per_prompt > 1" in ast.unparse(s)]
    assert len(node) == 1
    code = compile(ast.Module(body=node, type_ignores=[]), path, "exec")
    return lambda args: exec(code, {"args": args})


@st.composite
def lines(draw):
    argv = ["--actor.policy_loss_type", draw(st.sampled_from(["ppo", "gspo"])),
            "--actor.loss_agg_mode", draw(st.sampled_from(["token-mean", "seq-mean-token-mean"]))]
    if draw(st.booleans()):
        argv += ["--actor.eps_clip_low_high", str(draw(st.sampled_from([0.2, 3e-4]))), str(draw(st.sampled_from([0.28, 4e-4])))]
    else:
        argv += ["--actor.eps_clip", str(draw(st.sampled_from([0.1, 0.2])))]
    if draw(st.booleans()):
        argv += ["--actor.dual_clip", str(draw(st.sampled_from([3.0, 1.3, 1.0, 0.5])))]
    if draw(st.booleans()):
        argv += ["--algo.kl.use_loss", "--algo.kl.estimator", draw(st.sampled_from(["k1", "k2", "k3"])),
                 "--algo.kl.init_coef", str(draw(st.sampled_from([0.01, 0.3, 0.0])))]
        if draw(st.booleans()):
            argv.append("--algo.kl.unbiased_gradient")
    argv += ["--actor.adam.lr", "1e-6", "--train.seed", "7"]  # options the loss does not read
    return argv


@st.composite
def batches(draw):
    B, T = draw(st.integers(2, 8)), draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    L = rng.integers(0 if draw(st.booleans()) else 1, T + 1, size=B)
    L[rng.integers(B)] = T
    mask = (np.arange(T)[None, :] < L[:, None]).astype(np.float64)
    spread = draw(st.sampled_from([0.05, 0.5, 3.0, 25.0]))
    logp = -rng.uniform(0.1, 3.0, size=(B, T))
    old = logp + spread * rng.uniform(-1, 1, size=(B, T))
    ref = logp + min(spread, 4.0) * rng.uniform(-1, 1, size=(B, T))
    pad = mask == 0
    for a in (logp, old, ref):
        a[pad] = rng.uniform(-8, 8, size=int(pad.sum()))
    K = draw(st.integers(1, min(4, B)))
    order = rng.permutation(B)
    cuts = sorted(rng.choice(np.arange(1, B), size=K - 1, replace=False)) if K > 1 else []
    mbs = [sorted(int(i) for i in part) for part in np.split(order, cuts)]
    return dict(logp=logp, old_logp=old, ref_logp=ref, mask=mask, advantages=rng.normal(size=B)), mbs


@settings(max_examples=120, **SETTINGS)
@given(argv=lines(), batch=batches())
def test_loss_and_grad_equal_openrlhf_0_11_2(po, argv, batch):
    step, mbs = batch
    try:
        args = _release_args(po, argv)
        loss, grad = po.loss_and_grad(args, micro_batches=mbs, **step)
        release_ok = True
    except (AssertionError, ValueError):
        release_ok = False
    try:
        cfg = parse_argument_line(argv, "0.11.2")
        mine, my_grad = loss_and_grad("openrlhf", cfg, micro_batches=mbs, version="0.11.2", **step)
        mine_ok = True
    except InputError:
        mine_ok = False
    assert mine_ok == release_ok, argv
    if not release_ok:
        return
    exact = len(mbs) == 1 and not cfg.get("algo.kl.use_loss")  # float32 integer normaliser, no float32 KL
    tol = CLOSED_FORM if exact else RELEASE_FLOAT32
    assert rel_err(my_grad, grad) <= tol, (argv, rel_err(my_grad, grad))
    assert abs(mine - loss) <= tol * max(1.0, abs(loss)), argv


@pytest.mark.parametrize("est", ["group_norm", "dr_grpo", "rloo", "reinforce_baseline", "flash_reinforce"])
@settings(max_examples=25, **SETTINGS)
@given(data=st.data())
def test_advantages_equal_openrlhf_0_11_2(po, est, data):
    n = data.draw(st.integers(1, 5))
    groups = data.draw(st.integers(1, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    scale = data.draw(st.sampled_from([1.0, 30.0]))  # 30: shaped rewards past the clip range [-10, 10]
    rewards = np.round(rng.normal(size=n * groups) * scale * 4) / 4
    lengths = rng.integers(1, 8, size=n * groups)
    argv = ["--algo.advantage.estimator", est, "--rollout.n_samples_per_prompt", str(n)]
    if data.draw(st.booleans()):
        argv.append("--algo.advantage.no_std_norm")
    if data.draw(st.booleans()):
        argv += ["--reward.clip_range", "-5", "5"]
    args = _release_args(po, argv)
    try:
        _group_check(po)(args)
        theirs = po.advantages(args, rewards, lengths)
        release_ok = True
    except AssertionError:
        release_ok = False
    try:
        cfg = parse_argument_line(argv, "0.11.2")
        mine = advantages("openrlhf", cfg, rewards, np.repeat(np.arange(groups), n), lengths=lengths, version="0.11.2")
        mine_ok = True
    except InputError:
        mine_ok = False
    assert mine_ok == release_ok, argv
    if release_ok:
        tol = RELEASE_FLOAT32 if est == "reinforce_baseline" else CLOSED_FORM  # whitening in float32
        assert rel_err(mine, theirs) <= tol, (argv, rel_err(mine, theirs))


@settings(max_examples=40, **SETTINGS)
@given(argv=lines())
def test_argument_lines_read_as_the_release_reads_them(po, argv):
    ns = vars(po.parser().parse_args(argv))
    mine = parse_argument_line(argv, "0.11.2")
    for dest, value in mine.items():
        theirs = ns[dest]
        assert (list(theirs) if isinstance(theirs, tuple) else theirs) == value, dest
    given = {a.split("=")[0] for a in argv if a.startswith("--")}
    assert {f"--{d}" for d in mine} == given


def test_misspelt_option_names_the_closest():
    with pytest.raises(InputError, match="closest is --actor.eps_clip"):
        parse_argument_line(["--actor.eps_clipp", "0.2"], "0.11.2")


def test_actor_statements_mirrored_are_the_releases(po):
    assert po.glue_statements() == {}


def test_negative_control_the_earlier_kl_aggregation_fails(po):
    """Before 0.11 the KL loss followed the policy aggregation (sample level for gspo); 0.11.2 takes a token mean."""
    rng = np.random.default_rng(1)
    B, T = 5, 6
    L = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < L[:, None]).astype(float)
    logp = -rng.uniform(0.1, 3, size=(B, T))
    step = dict(logp=logp, old_logp=logp + 0.2 * rng.normal(size=(B, T)), ref_logp=logp + 0.5 * rng.normal(size=(B, T)),
                mask=mask, advantages=np.zeros(B))
    argv = ["--actor.policy_loss_type", "gspo", "--algo.kl.use_loss", "--algo.kl.estimator", "k2", "--algo.kl.init_coef", "1"]
    _, theirs = po.loss_and_grad(_release_args(po, argv), **step)
    d = logp - step["ref_logp"]
    sample_level = d * mask / (mask.sum(-1, keepdims=True) * B)
    token_level = d * mask / mask.sum()
    assert rel_err(token_level, theirs) <= RELEASE_FLOAT32
    assert rel_err(sample_level, theirs) > 0.05


def test_defaults_are_the_releases():
    from grpo_proofs.trainers import option_tables
    from grpo_proofs.trainers.openrlhf import SPEC

    defaults = option_tables.defaults("openrlhf", "0.11.2")
    for name, key in SPEC.items():
        value = defaults[name]
        value = list(value) if isinstance(value, (list, tuple)) else value
        assert key.default == value or (isinstance(value, list) and [float(x) for x in value] == key.default), (name, value)
    assert len(SPEC) >= 20
    assert effective_config("openrlhf", {}, "0.11.2")["rollout.batch_size"] == 1024
