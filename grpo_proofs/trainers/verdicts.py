"""The propositions of arXiv 2601.05002 asked of one trainer config.

* Prop. 1 (prefix bias): a prefix shared by a whole group gets sum_i A_i omega_i; it cancels
  (sum_i A_i = 0) only when omega does not vary within the group. Read off the mapped weight:
  L_i in omega -> bias; micro-batch-local symbols (b_k, N_k, T_k) -> cancels only if each group
  sits in one micro-batch (or its micro-batches agree on them); a shifted advantage (whitening,
  OPO, pass@k) has sum_i A_i != 0 and breaks the cancellation even with uniform weights.
* Props. 5, 6, 2 (reward scale under Adam): a std-normalised advantage is scale-free (only the
  constant added to the std leaks); a centered one scales with phi, which Adam undoes only as
  eps/(phi sqrt(v_hat)) -> 0, and only with beta = 0 -- a KL term makes phi an inverse KL
  coefficient; a KL penalty inside the reward is scaled differently from the task reward.
* Props. 3, 7 (overshoot): with mu = 1 optimizer step per sampled batch the ratio is identically
  1 at that step and clipping never acts; with mu > 1 and a hard clip (zero-gradient region)
  Adam's momentum carries the update past the bound, about rho/(1 - rho) steps with
  rho = beta1/sqrt(beta2); CISPO, GPG, SAPO and VESPO have no zero-gradient region.

Where a default hides the answer (verl's and OpenRLHF's default estimator is ``gae``, a critic,
so Prop. 1 and the reward scale are undecided), the verdict names the key that decides it and
gives the answer for the common choices of that key (``Verdict.choices``).

>>> [v.verdict for v in propositions("trl", {"loss_type": "grpo", "num_iterations": 2})]
['bias', 'invariant', 'exposed']
>>> dict(propositions("verl", {}, version="0.9.1")[0].choices)["grpo"]
'cancels'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import notation as n
from .mapping import TrainerMapping, to_variant

__all__ = ["Verdict", "propositions", "prefix_verdict", "reward_scale_verdict", "overshoot_verdict"]

_LOCAL = {n.b_k: "b_k", n.N_k: "N_k", n.T_k: "T_k"}


@dataclass(frozen=True)
class Verdict:
    """One proposition's verdict for a config: a short word, True/False/None, and why."""

    label: str
    title: str
    verdict: str
    holds: bool | None
    reason: str
    #: where the verdict is undecided by a default: (value of the deciding key, verdict) for common values
    choices: tuple = ()


def prefix_verdict(mp: TrainerMapping) -> Verdict:
    title = "Prop. 1: shared-prefix cancellation"
    label = "prefix"
    w = mp.weight
    extra = ""
    if mp.kl is not None:
        extra += " The KL term on a shared token does not cancel: it is advantage-free (beta * sum_i omega_i)."
    if mp.sequence:
        extra += " After the first inner step s_i differs across i, so a sequence ratio breaks it too."
    if mp.advantage_kind == "critic":
        return Verdict(label, title, "undecided", None, f"advantages come from a critic ({mp.advantage}); no group centering.")
    if n.L_i in w.free_symbols:
        return Verdict(label, title, "bias", False,
                       f"omega = {w} varies with |o_i| within a group: sum_i A_i omega_i != 0, the shared prefix is "
                       "pushed by the lengths of the answers (short positive ones dominate)." + extra)
    if mp.advantage_kind == "shifted" or mp.advantage_kind == "whiten":
        return Verdict(label, title, "bias", False,
                       f"the advantage ({mp.advantage}) is shifted by a batch- or length-weighted mean, so sum_i A_i != 0 "
                       "within a group even with a uniform weight." + extra)
    local = sorted(_LOCAL[s] for s in w.free_symbols if s in _LOCAL)
    if local:
        return Verdict(label, title, "conditional", None,
                       f"omega = {w} is constant within a micro-batch: the prefix cancels if each group lies in one "
                       f"micro-batch (or its micro-batches have equal {', '.join(local)}), not otherwise (pitfall 1)." + extra)
    return Verdict(label, title, "cancels", True,
                   f"omega = {w} is the same for every completion of a group at the first inner step, and sum_i A_i = 0." + extra)


def reward_scale_verdict(mp: TrainerMapping) -> Verdict:
    title = "Props. 5, 6, 2: reward-scale invariance under Adam"
    label = "reward_scale"
    clip = ""
    if mp.grad_clip:
        clip = f" Global gradient-norm clipping (max norm {mp.grad_clip:g}) breaks it whenever it is active."
    if mp.kl_in_reward:
        return Verdict(label, title, "not invariant", False,
                       f"the KL penalty ({mp.kl_in_reward}) is inside the reward: r -> phi r scales the task reward but not "
                       "the penalty, so the trade-off between them moves with phi.")
    if mp.advantage_kind == "critic":
        return Verdict(label, title, "undecided", None,
                       f"{mp.advantage}: the advantages depend on a learned critic.")
    if mp.advantage_kind in ("std-group", "std-batch", "whiten"):
        c = mp.variant.sigma_eps
        if mp.kl is not None and mp.kl_coef and c > 0:
            leak = c * 0.99 / (0.01 * 0.5 + c)
            return Verdict(label, title, "not invariant", False,
                           f"the advantage is divided by a std plus a constant c = {c:g} ({mp.advantage}): r -> phi r "
                           "multiplies the advantage gradient by k = phi (sigma + c)/(phi sigma + c) but leaves the KL term "
                           f"(beta = {mp.kl_coef:g}) unchanged, so training on phi r equals training on r with beta/k: the "
                           f"reward/KL balance moves by |k - 1| <= c |1 - phi|/(phi sigma + c) ({100 * leak:.1f}% at "
                           "phi = 0.01, sigma = 0.5)." + clip)
        if c > 0:
            return Verdict(label, title, "invariant", True,
                           f"the advantage is divided by a std ({mp.advantage}): r -> phi r (phi > 0) multiplies the whole "
                           f"gradient by k = phi (sigma + c)/(phi sigma + c), c = {c:g} the constant added to the std, one "
                           "factor per group that Adam undoes up to eps (Prop. 2); k -> 1 when c << phi sigma." + clip)
        return Verdict(label, title, "invariant", True,
                       f"the advantage is divided by a std ({mp.advantage}): r -> phi r (phi > 0) leaves it unchanged, so "
                       "the whole gradient, KL term included, is unchanged.")
    if mp.kl is not None:
        return Verdict(label, title, "not invariant", False,
                       f"centered advantage ({mp.advantage}) scales with phi but the KL term (beta = {mp.kl_coef:g}) does not: "
                       "training on phi r with beta equals training on r with beta/phi (reward scale = inverse KL coefficient).")
    return Verdict(label, title, "eps-limit", None,
                   f"centered advantage ({mp.advantage}) and no KL term: the gradient scales by phi, and Adam's step is "
                   "unchanged only as eps/(phi sqrt(v_hat)) -> 0 (Prop. 2): exact ratio (1 + eps/sqrt(v_hat))/(1 + eps/(phi sqrt(v_hat)))."
                   + clip)


def overshoot_verdict(mp: TrainerMapping) -> Verdict:
    title = "Props. 3, 7: momentum overshoot past the clip"
    label = "overshoot"
    mu = mp.mu
    if mu <= 1:
        return Verdict(label, title, "not exposed", True,
                       "one optimizer step per sampled batch (mu = 1): the ratio is identically 1 at that step, clipping never "
                       "acts and the gradient is -omega A (pitfall 3).")
    if mp.surrogate in ("cispo-cap", "cispo-clip", "reinforce", "sapo", "vespo"):
        kind = {"cispo-cap": "CISPO clips a stop-gradient weight", "cispo-clip": "CISPO clips a stop-gradient weight",
                "reinforce": "GPG has no ratio", "sapo": "SAPO's gate is smooth", "vespo": "VESPO reweights by Phi_i"}[mp.surrogate]
        return Verdict(label, title, "no zero-gradient region", True,
                       f"mu = {mu:g} optimizer steps per batch, but {kind}: the advantage gradient never vanishes, so "
                       "Prop. 3's premise (all contributions clipped) fails.")
    b1, b2 = mp.adam_betas
    rho = b1 / math.sqrt(b2)
    drift = rho / (1 - rho) if rho < 1 else math.inf
    extra = ""
    if mp.dual_clip is not None:
        extra = f" The dual clip (c = {mp.dual_clip:g}) adds a zero-gradient region for A < 0 once r > c."
    return Verdict(label, title, "exposed", False,
                   f"mu = {mu:g} optimizer steps per sampled batch with a hard clip: after the first step tokens past the bound "
                   f"get zero advantage gradient while Adam (beta1 = {b1:g}, beta2 = {b2:g}) keeps moving them: the step k "
                   f"updates after clipping is about rho^(k+1) of the last one, rho = beta1/sqrt(beta2) = {rho:.4f}, total drift "
                   f"rho/(1 - rho) = {drift:.2f} steps." + extra)


#: trainer -> (the key that picks the advantage, its common values, extra keys those values need)
_DECIDING = {
    "verl": ("algorithm.adv_estimator", (("grpo", {"adv_estimator": "grpo"}),
                                         ("grpo, norm_adv_by_std_in_grpo=false", {"adv_estimator": "grpo", "norm_adv_by_std_in_grpo": False}),
                                         ("rloo", {"adv_estimator": "rloo"}),
                                         ("reinforce_plus_plus_baseline", {"adv_estimator": "reinforce_plus_plus_baseline"}))),
    "openrlhf": ("algo.advantage.estimator", (("group_norm", {"algo.advantage.estimator": "group_norm"}),
                                               ("dr_grpo", {"algo.advantage.estimator": "dr_grpo"}),
                                               ("rloo", {"algo.advantage.estimator": "rloo"}),
                                               ("reinforce_baseline", {"algo.advantage.estimator": "reinforce_baseline"}))),
}


def _decided(mp: TrainerMapping, verdicts: list[Verdict]) -> list[Verdict]:
    """Undecided verdicts of a critic default, with the answer for each common estimator."""
    if mp.advantage_kind != "critic" or mp.trainer not in _DECIDING:
        return verdicts
    key, options = _DECIDING[mp.trainer]
    given = {k: mp.config[k] for k in mp.config["_given"]}
    if mp.trainer == "openrlhf":
        given["rollout.n_samples_per_prompt"] = max(mp.config["rollout.n_samples_per_prompt"], 2)
    alternatives = []
    for name, change in options:
        alt = to_variant(mp.trainer, {**given, **change}, version=mp.release.version)
        alternatives.append((name, {v.label: v.verdict for v in (prefix_verdict(alt), reward_scale_verdict(alt))}))
    name_in = "adv_estimator" if mp.trainer == "verl" else "algo.advantage.estimator"
    current = mp.config[name_in]
    how = "given" if name_in in mp.config["_given"] else "the default"
    out = []
    for v in verdicts:
        if v.verdict != "undecided":
            out.append(v)
            continue
        choices = tuple((name, found[v.label]) for name, found in alternatives)
        listing = "; ".join(f"{name}: {verdict.upper()}" for name, verdict in choices)
        reason = f"{v.reason} {key} decides it ({current!r} here, {how}); with {listing}"
        if mp.trainer == "openrlhf" and mp.config["rollout.n_samples_per_prompt"] < 2:
            reason += " (the group estimators need rollout.n_samples_per_prompt > 1)"
        out.append(Verdict(v.label, v.title, v.verdict, v.holds, reason + ".", choices))
    return out


def propositions(trainer, config=None, *, version=None) -> list[Verdict]:
    """Verdicts of Props. 1, 5/6/2 and 3/7 for a trainer config of a release (or a TrainerMapping)."""
    mp = trainer if isinstance(trainer, TrainerMapping) else to_variant(trainer, config, version=version)
    return _decided(mp, [prefix_verdict(mp), reward_scale_verdict(mp), overshoot_verdict(mp)])
