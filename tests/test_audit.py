"""ProofsCallback on a real TRL 1.16.0 GRPOTrainer: every metric against an independent computation.

Each run is a real ``trl.GRPOTrainer`` on the CPU (tiny random Qwen2 built offline, float64,
tokenizer built in code, in-memory prompts, deterministic reward). Beside the audit callback, a
test-side recorder keeps, at every optimizer step, what the optimizer is about to use: the
trainer's buffered generation batch, the step's slices (found from the trainer's micro-step
counter as ``_prepare_inputs`` picks them), the per-token log-probs the loss sees (TRL's own
function called afresh, not the callback's copy; TRL's fused log-prob kernel accumulates in float32
whatever the model's dtype, so they are checked against a float64 log-softmax of the model's logits
at float32 precision), the gradients after clipping and the learning rate. From those, this file recomputes each metric with TRL
1.16.0's formulas written out by hand (weights S/(K N) for dapo, 1/(K b |o_i|) for grpo, the PPO
clip branch, the bias-corrected k3 term) and a hand-written Adam recurrence, and compares:

* weights: the callback's max relative difference (trainer vs mapped formula) is 0 to 1e-12, and,
  negative control, with the config the callback reads altered after the trainer was built
  (``loss_type`` grpo read, dapo run), it equals the hand-computed difference of the two formulas;
* prefix: W, its covariance form, its length part and the share pushed by length, per step;
* clip: the clipped share (also against TRL's own ``clip_ratio/region_mean``) and the excursion;
  overshoot: the share of clipped tokens that moved further out, the move ratio, C_T lr_T/lr_{T-1};
* scale: the share of coordinates whose step changes by more than 1e-3, from two Adam recurrences
  (gradients g and phi g) against the callback's reading of the optimizer's state;
* loss: the trainer's loss and its split (length statistic, KL part, ratio part) by hand.

Negative controls: each comparison is also made against a wrong formula (grpo weights for a dapo run,
no learning-rate ratio in the overshoot prediction, phi = 1 for the scale share, ...) and must fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from grpo_proofs.checking.tolerances import CLOSED_FORM, MODEL_FLOAT32, MODEL_FLOAT64, RELEASE_FLOAT32

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
pytestmark = pytest.mark.skipif(trl.__version__ != "1.16.0", reason="the audit reads TRL 1.16.0")

from transformers import TrainerCallback  # noqa: E402
from transformers.trainer_callback import PrinterCallback  # noqa: E402

from grpo_proofs.runtime.trl_offline import SHARP, build_trainer, float64, quiet  # noqa: E402
from grpo_proofs.integrations.trl import ProofsCallback  # noqa: E402

SIZES = dict(num_generations=4, max_completion_length=12, learning_rate=0.05, bf16=False)


# ------------------------------------------------------------------------------------ the recorder
def own_logps(model, sl) -> np.ndarray:
    """Per-token log-probs of the slice's completions: log_softmax of the model's float64 logits, gathered."""
    ids = torch.cat([sl["prompt_ids"], sl["completion_ids"]], 1)
    att = torch.cat([sl["prompt_mask"], sl["completion_mask"]], 1)
    T = sl["completion_ids"].shape[1]
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        logits = model(input_ids=ids, attention_mask=att).logits[:, -T - 1:-1].double()
    return torch.log_softmax(logits, -1).gather(-1, sl["completion_ids"].unsqueeze(-1)).squeeze(-1).numpy()


def trl_logps(tr, sl) -> np.ndarray:
    """The same through TRL 1.16.0's own function (the class's, not the audit's wrapper): its fused log-prob
    kernel accumulates in float32 whatever the model's dtype, so these are the values the loss sees."""
    ids = torch.cat([sl["prompt_ids"], sl["completion_ids"]], 1)
    att = torch.cat([sl["prompt_mask"], sl["completion_mask"]], 1)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        lp, _, _ = type(tr)._get_per_token_logps_and_entropies(tr, tr.model, ids, att, sl["completion_ids"].shape[1])
    return lp.double().numpy()


class Recorder(TrainerCallback):
    """What each optimizer step is about to use, kept by the test alone."""

    def __init__(self):
        self.trainer, self.steps = None, []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        tr = self.trainer
        K, S = tr.current_gradient_accumulation_steps, tr.args.steps_per_generation
        idx = [(tr._step - K + k) % S for k in range(K)]
        gen = tr._buffered_inputs
        opt = getattr(optimizer, "optimizer", optimizer)
        params = [p for g in opt.param_groups for p in g["params"]]
        self.steps.append(dict(
            idx=idx, K=K, S=S, first=tr._step - K, gen=gen, lr=float(opt.param_groups[0]["lr"]),
            slices=[{k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()} for s in gen],
            logps=[trl_logps(tr, gen[i]) for i in idx], own=[own_logps(tr.model, gen[i]) for i in idx],
            grads=[np.zeros(p.shape) if p.grad is None else p.grad.detach().double().numpy().copy() for p in params],
            betas=tuple(opt.param_groups[0]["betas"]), eps=float(opt.param_groups[0]["eps"])))


def run(config: dict, steps: int, out, *, change_args=None, jsonl=False):
    """A real run with the audit callback and the recorder, writing into ``out``: (callback, recorder, trainer)."""
    audit, rec = ProofsCallback(jsonl=jsonl), Recorder()
    with quiet(), float64():
        tr = build_trainer({**SIZES, **config}, output_dir=str(out),
                           callbacks=[audit, rec], initializer_range=SHARP, max_steps=steps)
        tr.remove_callback(PrinterCallback)
        rec.trainer = tr
        if change_args:
            change_args(tr.args)
        tr.train()
    assert len(audit.records) == steps == len(rec.steps)
    return audit, rec, tr


# ------------------------------------------------------------------ TRL 1.16.0's formulas by hand
def hand_step(st: dict, cfg: dict, loss_type=None) -> dict:
    """The step's rows as arrays, and TRL's per-token weight w of ``loss_type`` on them."""
    lt = loss_type or cfg.get("loss_type", "dapo")
    sl = [st["slices"][i] for i in st["idx"]]
    cat = lambda key: torch.cat([s[key] for s in sl]).double().numpy()  # noqa: E731
    m, A, K, S = cat("completion_mask"), cat("advantages"), st["K"], st["S"]
    lp = np.concatenate(st["logps"])
    old = cat("old_per_token_logps") if "old_per_token_logps" in sl[0] else lp.copy()
    ref = cat("ref_per_token_logps") if "ref_per_token_logps" in sl[0] else None
    b = sl[0]["completion_ids"].shape[0]
    N_gen = float(sum(s["completion_mask"].sum() for s in st["slices"]))
    L = np.maximum(m.sum(-1, keepdims=True), 1.0)
    w = {"dapo": S / (K * N_gen) * np.ones_like(m), "grpo": 1.0 / (K * b * L) * np.ones_like(m)}[lt] * m
    keys = [tuple(p[q > 0].tolist()) for s in sl for p, q in zip(s["prompt_ids"].numpy(), s["prompt_mask"].numpy())]
    ids = np.concatenate([s["completion_ids"].numpy() for s in sl])
    return dict(m=m, A=A, lp=lp, old=old, ref=ref, w=w, keys=keys, ids=ids, b=b)


def hand_ppo(h: dict, cfg: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, unclipped indicator, clipped region) of TRL's token-level PPO clip."""
    eps = cfg.get("epsilon", 0.2)
    eps_h = cfg.get("epsilon_high") or eps
    r, a = np.exp(h["lp"] - h["old"]), h["A"][:, None]
    unclipped = ((a > 0) & (r < 1 + eps_h)) | ((a < 0) & (r > 1 - eps))
    region = (h["m"] > 0) & (((r < 1 - eps) & (a < 0)) | ((r > 1 + eps_h) & (a > 0)))
    return r, unclipped, region


def hand_groups(h: dict) -> list[tuple[np.ndarray, int]]:
    """(rows, common prefix length) of every prompt with >= 2 completions sharing a first token."""
    out = []
    for key in dict.fromkeys(h["keys"]):
        rows = np.array([i for i, k in enumerate(h["keys"]) if k == key])
        if rows.size < 2:
            continue
        k = 0
        while k < h["m"].shape[1] and all(h["m"][i, k] > 0 and h["ids"][i, k] == h["ids"][rows[0], k] for i in rows):
            k += 1
        rows = rows[h["A"][rows] != 0]
        if k and rows.size:
            out.append((rows, k))
    return out


def close(a, b, tol=MODEL_FLOAT64) -> bool:
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-300) or abs(a - b) <= 1e-15


# ---------------------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    """grpo, num_iterations = 3, KL (bias-corrected default): one generation batch, inner steps 0, 1, 2."""
    cfg = dict(loss_type="grpo", num_iterations=3, beta=0.04, per_device_train_batch_size=16)
    return cfg, *run(cfg, 3, tmp_path_factory.mktemp("grpo-run"))


@pytest.fixture(scope="module")
def dapo_run(tmp_path_factory):
    """dapo, K = 2 micro-batches, S = 4 slices per generation (S/K = 2 optimizer steps on one batch)."""
    cfg = dict(loss_type="dapo", per_device_train_batch_size=8, gradient_accumulation_steps=2, steps_per_generation=4)
    return cfg, *run(cfg, 3, tmp_path_factory.mktemp("dapo-run"))


@pytest.mark.parametrize("which", ["grpo_run", "dapo_run"])
def test_trainer_logps_are_the_models_to_float32_precision(which, request):
    """The log-probs the metrics use are TRL's (float32 kernel); a float64 log-softmax agrees to float32 rounding."""
    cfg, audit, rec, tr = request.getfixturevalue(which)
    worst = 0.0
    for st in rec.steps:
        for sl_i, trl_lp, own_lp in zip(st["idx"], st["logps"], st["own"]):
            m = st["slices"][sl_i]["completion_mask"].numpy() > 0
            scale = np.abs(own_lp[m]).max()
            worst = max(worst, np.abs(trl_lp - own_lp)[m].max() / scale)
            # negative control: the float64 values are not the float32 ones (else this compares nothing)
            assert np.abs(trl_lp - own_lp)[m].max() > 0
    assert worst <= MODEL_FLOAT32, worst


@pytest.mark.parametrize("which", ["grpo_run", "dapo_run"])
def test_weights_agree_with_the_mapped_formula(which, request):
    cfg, audit, rec, tr = request.getfixturevalue(which)
    for r, st in zip(audit.records, rec.steps):
        h = hand_step(st, cfg)
        assert r["proofs/weight_tokens"] == int(h["m"].sum()) > 0
        assert r["proofs/weight_max_rel"] <= CLOSED_FORM
        spread = h["w"][h["m"] > 0]
        assert close(r["proofs/weight_spread"], spread.max() / spread.min(), CLOSED_FORM)
    assert audit.summary["weight_agrees"] and audit.summary["method"] == [cfg["loss_type"]]


def test_weight_metric_reports_a_config_the_trainer_does_not_run(tmp_path):
    """Negative control: the callback reads loss_type = grpo while the trainer (built with dapo) runs dapo."""
    cfg = dict(loss_type="dapo", per_device_train_batch_size=8)

    def lie(args):
        args.loss_type = "grpo"

    audit, rec, tr = run(cfg, 2, tmp_path, change_args=lie)
    for r, st in zip(audit.records, rec.steps):
        h_run, h_read = hand_step(st, cfg, "dapo"), hand_step(st, cfg, "grpo")
        act = h_run["m"] > 0
        want = np.abs(h_run["w"] - h_read["w"])[act].max() / np.abs(h_read["w"])[act].max()
        assert want > 0.01 and close(r["proofs/weight_max_rel"], want, CLOSED_FORM)
    assert audit.summary["weight_agrees"] is False and "DIFFER" in audit.summary["lines"][0]


def test_prefix_coefficient_and_its_forms(grpo_run):
    cfg, audit, rec, tr = grpo_run
    measured = 0
    for r, st in zip(audit.records, rec.steps):
        h = hand_step(st, cfg)
        r_, unc, _ = hand_ppo(h, cfg)
        a_omega = h["A"][:, None] * h["w"] * r_ * unc               # dJ/dl = A_i omega_i, policy part
        Ws, covs, lens, pushed = [], [], [], []
        for rows, k in hand_groups(h):
            A = h["A"][rows]
            W_t = a_omega[rows, :k].sum(0)
            omega = a_omega[rows, :k] / A[:, None]
            cov_t = [np.sum((A - A.mean()) * (omega[:, t] - omega[:, t].mean())) for t in range(k)]
            len_t = [np.sum((A - A.mean()) * (h["w"][rows, t] - h["w"][rows, t].mean())) for t in range(k)]
            gross = np.mean([np.sum(np.abs(A) * h["w"][rows, t]) for t in range(k)])
            Ws.append(W_t.mean()), covs.append(np.mean(cov_t)), lens.append(np.mean(len_t))
            pushed.append(abs(np.mean(len_t)) > 0.01 * gross)
        assert r["proofs/prefix_groups"] == len(Ws)
        if not Ws:
            continue
        measured += len(Ws)
        assert close(r["proofs/prefix_W_mean"], np.mean(Ws))
        assert close(r["proofs/prefix_W_cov_mean"], np.mean(covs))
        assert close(r["proofs/prefix_W_length_mean"], np.mean(lens))
        assert r["proofs/prefix_length_share"] == pytest.approx(np.mean(pushed), abs=1e-15)
        # negative control: without the 1/|o_i| of grpo (a token mean) the length part would vanish
        flat = [np.sum((h["A"][rows] - h["A"][rows].mean()) * 1.0) for rows, _ in hand_groups(h)]
        if any(abs(x) > 0 for x in lens):
            assert not close(r["proofs/prefix_W_length_mean"], float(np.mean(flat)))
    assert measured >= 4, "the run must share prefixes for the check to cover anything"
    assert 0 < audit.summary["prefix_length_share"] <= 1


def test_prefix_cancels_with_token_mean_weights(dapo_run):
    """dapo's weights are the same for every token: the length part is exactly 0, no group is pushed by length."""
    cfg, audit, rec, tr = dapo_run
    groups = sum(r["proofs/prefix_groups"] for r in audit.records)
    assert groups > 0
    for r in audit.records:
        if r["proofs/prefix_groups"]:
            assert r["proofs/prefix_W_length_mean"] == 0.0 and r["proofs/prefix_length_share"] == 0.0
    on_policy = [r for r in audit.records if r["proofs/clip_inner_step"] == 0 and r["proofs/prefix_groups"]]
    for r in on_policy:  # r = 1: W = sum_i A_i w over a whole... subset: |S| mean_S(A) w
        assert abs(r["proofs/prefix_W_mean"] - r["proofs/prefix_W_meanterm_mean"] - r["proofs/prefix_W_cov_mean"]) \
            <= MODEL_FLOAT64 * max(abs(r["proofs/prefix_W_mean"]), 1e-12)


def test_clip_share_and_excursion(grpo_run, dapo_run):
    covered = 0
    for cfg, audit, rec, tr in (grpo_run, dapo_run):
        trl_share = [e["clip_ratio/region_mean"] for e in tr.state.log_history if "clip_ratio/region_mean" in e]
        for r, st, trl_value in zip(audit.records, rec.steps, trl_share):
            h = hand_step(st, cfg)
            _, _, region = hand_ppo(h, cfg)
            assert r["proofs/clip_inner_step"] == (st["first"] % (st["S"] * cfg.get("num_iterations", 1))) // st["K"]
            share = region.sum() / h["m"].sum()
            assert close(r["proofs/clip_share"], share, CLOSED_FORM)
            if st["K"] == 1:  # TRL's own metric: the same share, computed by the trainer (logged as float32)
                assert close(r["proofs/clip_share"], trl_value, RELEASE_FLOAT32)
            if region.any():
                covered += int(region.sum())
                r_ = np.exp(h["lp"] - h["old"])
                eps = cfg.get("epsilon", 0.2)
                exc = np.where(h["A"][:, None] > 0, r_ - (1 + eps), (1 - eps) - r_)[region].mean()
                assert close(r["proofs/clip_excursion"], exc)
                assert not close(r["proofs/clip_excursion"], exc + 1e-6)
            else:
                assert "proofs/clip_excursion" not in r
    assert covered > 10


def test_overshoot_against_hand_tracking(grpo_run):
    cfg, audit, rec, tr = grpo_run
    eps = 0.2
    hist: dict = {}
    found = 0
    for t, (r, st) in enumerate(zip(audit.records, rec.steps), start=1):
        h = hand_step(st, cfg)
        x = h["lp"] - h["old"]
        a = h["A"][:, None]
        region = (h["m"] > 0) & (((np.exp(x) < 1 - eps) & (a < 0)) | ((np.exp(x) > 1 + eps) & (a > 0)))
        seen = hist.setdefault(st["idx"][0], [])
        if seen and seen[-1]["region"].any():
            prev = seen[-1]
            moved = np.where(a > 0, x > prev["x"], x < prev["x"])[prev["region"]]
            assert r["proofs/overshoot_tokens"] == moved.size
            assert close(r["proofs/overshoot_share"], moved.mean(), CLOSED_FORM)
            if len(seen) >= 2:
                new = prev["region"] & ~seen[-2]["region"]
                ratio = np.median((x - prev["x"])[new] / (prev["x"] - seen[-2]["x"])[new])
                b1, b2 = st["betas"]
                T = prev["t"]
                C = b1 * (1 - b1 ** (T - 1)) / (1 - b1 ** T) * math.sqrt((1 - b2 ** T) / (b2 * (1 - b2 ** (T - 1))))
                assert close(r["proofs/overshoot_ratio"], ratio)
                assert close(r["proofs/overshoot_C"], C, CLOSED_FORM)
                pred = C * prev["lr"] / seen[-2]["lr"]
                assert close(r["proofs/overshoot_pred"], pred, CLOSED_FORM)
                assert prev["lr"] != seen[-2]["lr"] and not close(r["proofs/overshoot_pred"], C, CLOSED_FORM)
                found += 1
        seen.append(dict(x=x, region=region, t=t, lr=st["lr"]))
    assert found >= 1, "the run must revisit tokens after they clipped"


@pytest.mark.parametrize("which", ["grpo_run", "dapo_run"])
def test_scale_share_from_two_adam_recurrences(which, request):
    cfg, audit, rec, tr = request.getfixturevalue(which)
    phi = audit.phi
    b1, b2 = rec.steps[0]["betas"]
    eps = rec.steps[0]["eps"]
    m = [np.zeros_like(g) for g in rec.steps[0]["grads"]]
    v, mp, vp = [x.copy() for x in m], [x.copy() for x in m], [x.copy() for x in m]
    for t, (r, st) in enumerate(zip(audit.records, rec.steps), start=1):
        changed = total = changed_one = 0
        for j, g in enumerate(st["grads"]):
            m[j] = b1 * m[j] + (1 - b1) * g
            v[j] = b2 * v[j] + (1 - b2) * g * g
            mp[j] = b1 * mp[j] + (1 - b1) * phi * g
            vp[j] = b2 * vp[j] + (1 - b2) * (phi * g) ** 2
            step = (m[j] / (1 - b1 ** t)) / (np.sqrt(v[j] / (1 - b2 ** t)) + eps)
            step_phi = (mp[j] / (1 - b1 ** t)) / (np.sqrt(vp[j] / (1 - b2 ** t)) + eps)
            live = step != 0
            ratio = step_phi[live] / step[live]
            total += int(live.sum())
            changed += int((np.abs(ratio - 1) > 1e-3).sum())
            changed_one += int((np.abs(ratio / phi - 1) > 1e-3).sum())  # a wrong premise: no rescale
        assert r["proofs/scale_coords"] == total > 0
        assert r["proofs/scale_share"] == changed / total
        if changed:
            assert r["proofs/scale_share"] != changed_one / total


def test_loss_and_its_split(grpo_run, dapo_run):
    for cfg, audit, rec, tr in (grpo_run, dapo_run):
        beta = cfg.get("beta", 0.0)
        logged = [e["loss"] for e in tr.state.log_history if "loss" in e and "train_loss" not in e]
        for r, st, trainer_loss in zip(audit.records, rec.steps, logged):
            h = hand_step(st, cfg)
            r_, unc, _ = hand_ppo(h, cfg)
            eps = cfg.get("epsilon", 0.2)
            a = h["A"][:, None]
            policy = -np.minimum(r_ * a, np.clip(r_, 1 - eps, 1 + eps) * a)
            kl = 0.0
            if beta:
                d = h["ref"] - h["lp"]
                kl = float((h["w"] * beta * r_ * (np.exp(d) - d - 1)).sum())
            length = float(-(h["A"] * h["w"].sum(-1)).sum())
            total = float((h["w"] * policy).sum()) + kl
            # the trainer's loss: TRL forms the ratios exp(logp - old) of its float32 log-probs in float32
            assert close(r["proofs/loss"], total, RELEASE_FLOAT32)
            if abs(total) > 1e-9:  # negative control: a loss off by 0.1% fails
                assert not close(r["proofs/loss"], total * (1 + 1e-3), RELEASE_FLOAT32)
            assert close(r["proofs/loss"], trainer_loss, CLOSED_FORM)         # the Trainer's own logged loss
            assert close(r["proofs/loss_length"], length)
            assert close(r["proofs/loss_kl"], kl)
            assert abs(r["proofs/loss_ratio"] - (total - length - kl)) <= RELEASE_FLOAT32 * abs(total) + 1e-15
            if r.get("proofs/clip_inner_step", 0) == 0:
                assert abs(r["proofs/loss_ratio"]) <= 1e-6 * max(abs(r["proofs/loss"]), 1e-3)
    # negative control: grpo's whole groups in one micro-batch make the length statistic vanish, dapo's do not
    assert all(abs(r["proofs/loss_length"]) < 1e-15 for r in grpo_run[1].records)
    assert any(abs(r["proofs/loss_length"]) > 1e-6 for r in dapo_run[1].records)


def test_metrics_go_through_the_trainers_log(grpo_run):
    cfg, audit, rec, tr = grpo_run
    logged = [e for e in tr.state.log_history if any(k.startswith("proofs/") for k in e)]
    assert len(logged) == len(audit.records)
    for e, r in zip(logged, audit.records):
        assert e["step"] == r["step"]
        assert {k for k in e if k.startswith("proofs/")} == {k for k in r if k != "step"}
        for k, v in r.items():
            if k != "step":
                assert e[k] == pytest.approx(v, rel=1e-15, abs=1e-300)
