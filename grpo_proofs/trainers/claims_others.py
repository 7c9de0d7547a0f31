"""Claims on the trainers beyond TRL, verl and OpenRLHF (:mod:`grpo_proofs.trainers.others`).

* ``trainers-other-defaults`` -- for slime, NeMo-RL, SkyRL, prime-rl and Unsloth, the findings page's
  measures (:mod:`grpo_proofs.props.findings.api`) from the derived gradient of the mapped variant equal
  those of autograd of the transcribed loss, and so do the verdicts;
* ``nemo-rl-singleton`` -- NeMo-RL's leave-one-out std is exactly zero for completion i if and only if the
  other G - 1 rewards are all equal (every binary group, G = 2..8, float64 and float32), and such an
  advantage is left undivided; with non-dyadic rewards in float32 the residue of the same formula can
  pass the s > 0 guard and give advantages of order 1e3 and more.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from ..checking import Context, Outcome, claim
from ..checking.coverage import compare
from ..checking.tolerances import CLOSED_FORM
from ..props.findings import api
from ..props.findings.claims import KEYS
from .others import OTHER_TRAINERS, loo_advantages, loo_baseline_std

__all__ = ["PAGE", "defaults_check", "singleton_check", "other_rows"]

PAGE = "trainers"


def other_rows(transcriptions: dict | None = None) -> list[dict]:
    """One row per trainer: release, source, the measures from the mapping and from the transcription, verdicts."""
    out = []
    for name, t in OTHER_TRAINERS.items():
        loss = (transcriptions or {}).get(name, t.transcription)
        masks = (lambda r, t=t: {"delta": t.delta(r)}) if t.delta else None
        d = api.measures(lambda r, x, t=t, m=masks: api.derived_gradient(t.variant, r, x, sigma=t.sigma, masks=m))
        f = api.measures(lambda r, x, name=name, loss=loss: api.reference_gradient(name, r, x, {name: loss}))
        out.append({"trainer": name, "release": t.release, "source": t.source, "derived": d, "transcribed": f,
                    "verdicts": api.verdicts(d), "transcribed_verdicts": api.verdicts(f)})
    return out


#: an unbalanced group (2 correct of 6): NeMo-RL's leave-one-out std differs between correct and wrong
UNBALANCED = ((1.0, 1.0, 0.0, 0.0, 0.0, 0.0), (3, 5, 2, 4, 6, 7))


def unbalanced_W(loss=None) -> tuple[float, float, float]:
    """NeMo-RL's W on a first token shared by the unbalanced group at s = 1: (mapped, transcribed, sum of |.|)."""
    from ..evaluate import token_gradient

    t = OTHER_TRAINERS["nemo_rl"]
    r, L = UNBALANCED
    g = token_gradient(t.variant, list(r), list(L), masks={"delta": t.delta(r)})
    mask = (torch.arange(max(L))[None, :] < torch.tensor(L)[:, None]).double()
    logp = torch.full(mask.shape, -1.0, dtype=torch.float64, requires_grad=True)
    (h,) = torch.autograd.grad((loss or t.transcription)(logp, logp.detach(), r, mask), logp)
    first = np.array([gi[0] for gi in g])
    return float(first.sum()), float(-h[:, 0].sum()), float(np.abs(first).sum())


def defaults_check(ctx: Context, transcriptions: dict | None = None) -> Outcome:
    """Mapping against transcription for every trainer (``transcriptions`` replaces some: a planted wrong one
    must fail)."""
    rows = other_rows(transcriptions)
    nan = [np.array([math.isnan(r["derived"][k]) and math.isnan(r["transcribed"][k]) for k in KEYS]) for r in rows]
    meas = [np.array([0.0 if m else r["derived"][k] for k, m in zip(KEYS, b)]) for r, b in zip(rows, nan)]
    pred = [np.array([0.0 if m else r["transcribed"][k] for k, m in zip(KEYS, b)]) for r, b in zip(rows, nan)]
    c = compare(meas, pred, scale=[np.maximum(np.abs(p), 1.0) for p in pred], floor=len(KEYS) * len(rows),
                what="measures")
    same = sum(r["verdicts"] == r["transcribed_verdicts"] for r in rows)
    Wm, Wt, scale = unbalanced_W((transcriptions or {}).get("nemo_rl"))
    w_err = abs(Wm - Wt) / scale
    ok = same == len(rows) and abs(Wt) / scale > 1e-3
    return Outcome(max(c.error, w_err) if ok else math.inf, CLOSED_FORM,
                   f"{c.message}; verdicts equal for {same} of {len(rows)} trainers (mapped surrogate vs the "
                   f"transcribed loss); NeMo-RL on r = {UNBALANCED[0]}: W = {Wm:.6g} mapped, {Wt:.6g} transcribed "
                   f"(W / sum of |.| = {abs(Wt) / scale:.3g})",
                   data={"rows": rows, "compared": c.compared, "nemo_unbalanced_W": Wm})


@claim("trainers-other-defaults", title="slime, NeMo-RL, SkyRL, prime-rl and Unsloth on the surrogate", page=PAGE,
       kind="numeric",
       statement="For the default objective of slime, NeMo-RL (leave-one-out baseline and std), SkyRL (token_mean; "
                 "prompt_mean is the same on one group), prime-rl (DPPO's mask, advantage part) and Unsloth (TRL's "
                 "dapo), the findings measures of the mapped unified surrogate equal those of autograd of the "
                 "transcribed loss on the findings group, and so do the verdicts; on the unbalanced group "
                 "r = (1, 1, 0, 0, 0, 0) NeMo-RL's leave-one-out std leaves W != 0 on a shared first token.")
def _check_defaults(ctx: Context) -> Outcome:
    return defaults_check(ctx)


#: non-dyadic reward levels for the float32 residue
RESIDUE_LEVELS = (0.1, 0.3, 0.7, 0.9, 0.2, 0.6)


def singleton_check(ctx: Context, condition=None) -> Outcome:
    """The exact zero-std condition against the transcription on every binary group, G = 2..8, in float64
    and float32; ``condition(rewards, i)`` replaces 'the other rewards are all equal' (a planted one must fail)."""
    cond = condition or (lambda r, i: len(set(r[:i] + r[i + 1:])) <= 1)
    checked = wrong = 0
    undivided_ok = True
    for G in range(2, 9):
        for bits in itertools.product((0.0, 1.0), repeat=G):
            r = list(bits)
            for dtype in (torch.float64, torch.float32):
                b, s = loo_baseline_std(r, dtype)
                A = loo_advantages(r, dtype)
                for i in range(G):
                    checked += 1
                    zero = bool(s[i] == 0)
                    wrong += zero != bool(cond(r, i))
                    if zero and float(A[i]) != r[i] - float(b[i]):
                        undivided_ok = False
    big = 0.0
    for lo, hi in itertools.permutations(RESIDUE_LEVELS, 2):
        for G in (4, 8, 16):
            r = [hi] + [lo] * (G - 1)
            big = max(big, float(loo_advantages(r, torch.float32).abs().max()))
    err = 0.0 if (wrong == 0 and undivided_ok and big >= 1e3) else math.inf
    return Outcome(err, 0.0,
                   f"zero leave-one-out std exactly where the other rewards are all equal: {checked - wrong} of "
                   f"{checked} (completion, binary group, dtype) cases agree; undivided there: {undivided_ok}; "
                   f"non-dyadic 1-vs-rest groups in float32: largest |A| = {big:.3g}",
                   data={"compared": checked, "wrong": wrong, "float32_max_abs_A": big})


@claim("nemo-rl-singleton", title="NeMo-RL's leave-one-out std: the singleton pathology", page=PAGE, kind="numeric",
       statement="NeMo-RL's leave-one-out std of completion i is exactly zero if and only if the other G - 1 rewards "
                 "are all equal (checked on every binary group, G = 2..8, float64 and float32); such an advantage "
                 "r_i - b_i is not divided at all, while every other completion of the group is; with non-dyadic "
                 "rewards in a 1-vs-rest group, float32 residue of the same formula passes the s > 0 guard and gives "
                 "advantages of order 1e3 or more.")
def _check_singleton(ctx: Context) -> Outcome:
    return singleton_check(ctx)
