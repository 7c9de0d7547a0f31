"""Props 3, 7 for a user's variant, measured within the steps the config takes.

* exposed variant, mu >= 2: :func:`grpo_proofs.props.overshoot.premise.premise_run` trains a fixed
  batch for the config's mu inner steps with every token past its clip bound from inner step T on
  (the card's T). Two comparisons on that run: the parameter steps T, T + 1, ... against
  C^eps_(T,k) times the step of T - 1 (with the gradient exactly zero there), and the tokens'
  excursion past their bound after each of those steps, measured against the excursion the model
  shows at the predicted parameters. Coverage: the steps the premise keeps holding (predicted, and
  checked against the run);
* exposed, mu = 1: the only inner step sees ratio 1 exactly, so nothing is clipped;
* no zero-gradient region (GPG, CISPO, no clip), or a clip on one side only (the other sign's
  completions keep their gradient): over the inner steps, no batch gradient is exactly zero.

A sampled group trained for mu inner steps (:func:`grpo_proofs.props.overshoot.model.run`) is shown in
the trajectory plot as an illustration (not a verdict): on a sampled group other tokens keep their
gradient, so the premise holds only in part. :func:`confirm_adam_ratio` compares C_(T,k) with a real
``torch.optim.Adam`` fed zero gradients from step T on.
"""

from __future__ import annotations

import numpy as np
import torch

from .api import overshoot_ratio
from ...checking.tolerances import CLOSED_FORM, EXACT, MODEL_FLOAT64, OPTIMIZER_FLOAT64
from ...checking.confirmation import Confirmation, Options

__all__ = ["confirm_overshoot", "confirm_adam_ratio", "illustration"]


def illustration(v, opts: Options) -> tuple[dict, list[dict]]:
    """The sampled-group runs over mu inner steps: (plot data, summaries). Not a verdict."""
    from . import model as ex
    from .premise import post_entry_drift

    setup = ex.Setup(variant=v, G=8, mu=opts.mu, n_batches=1, first_step=0.08, max_new_tokens=5,
                     betas=(opts.beta1, opts.beta2), eps=opts.eps, seed=opts.seed, device=opts.device)
    runs = [ex.run(setup, "adam")] + ([] if opts.quick else [ex.run(setup, "sgd")])
    summ = [dict(rn.summary(), post_entry={kk: vv for kk, vv in post_entry_drift(rn, v).items() if kk != "tokens"})
            for rn in runs]
    plot = {"runs": [(rn.optimizer, rn.lr, rn.ratios[0], rn.sides[0]) for rn in runs], "bounds": ex.clip_bounds(v)}
    return plot, summ


def _illustration_text(summ: list[dict]) -> str:
    return "sampled group of 8 (illustration, not a verdict): " + "; ".join(
        f"{s['optimizer']}: up to {s['max_forbidden_frac']:.3f} of the tokens past their bound, max excursion "
        f"{s['max_excursion']:.3f}" for s in summ)


def _no_zero_region(v, opts: Options, one_sided: bool = False) -> Confirmation:
    from .premise import premise_case

    mu_p = max(opts.mu, 6)
    case = premise_case(False, mu=mu_p, betas=(opts.beta1, opts.beta2), eps=opts.eps, variant=v,
                        device=opts.device, seed=opts.seed)
    gmax = [float(np.abs(g).max()) for g in case["grads"]]
    zeros = sum(1 for g in gmax if g == 0.0)
    title, what = (("Props. 3, 7: one-sided clip, no batch-wide zero gradient",
                    "the completions of the unclipped advantage sign keep the batch gradient from vanishing")
                   if one_sided else ("Props. 3, 7: no zero-gradient region",
                                      "the advantage gradient never vanishes, whatever the ratios"))
    return Confirmation("overshoot_premise", title, what, float(zeros), EXACT,
                        f"{mu_p} Adam steps: steps with an exactly zero gradient: {zeros} (smallest max|g| "
                        f"{min(gmax):.2e})", data={"grad_max": gmax})


def _ratio_one(v, opts: Options) -> Confirmation:
    """mu = 1: the loss evaluation of the only inner step has s = 1 exactly."""
    from .clip import clip_ratio
    from .premise import DESIGNS, PROMPT
    from ...runtime.policy import PolicyConfig, build_policy, completion_logprobs

    model = build_policy(PolicyConfig.tiny(seed=opts.seed), device=opts.device)
    comps = DESIGNS[1]
    with torch.no_grad():
        old, mask = completion_logprobs(model, PROMPT, comps)
    lp, _ = completion_logprobs(model, PROMPT, comps)
    s = clip_ratio(v, lp.detach(), old, mask)
    err = float((s - 1)[mask > 0].abs().max())
    return Confirmation("overshoot_premise", "Props. 3, 7: mu = 1, nothing is clipped",
                        "the only inner step of a batch sees s = 1 on every token: no clip acts, no overshoot",
                        err, EXACT, f"max |s - 1| at the loss evaluation of the inner step: {err:.1e}",
                        data={"max_abs_s_minus_1": err})


def _tv_toy(v, opts: Options) -> Confirmation:
    """Props. 3, 7 for a probability-space mask (DPPO): on the one-logit toy, once p - p_old > delta_tv the
    autograd gradient is exactly 0 and each later Adam step is C_(T,k) (eps kept) times the last masked-free
    step; measured with ``torch.optim.Adam``, predicted by :func:`grpo_proofs.props.overshoot.api.overshoot_ratio_eps`."""
    from .api import overshoot_ratio_eps, tv_toy

    run = tv_toy(lr=0.1, betas=(opts.beta1, opts.beta2), eps=opts.eps, steps=24, delta=v.phi_params["delta_tv"])
    zs, gs = [run["z0"]] + run["z"], run["grad"]
    T = next((t for t, g in enumerate(gs, start=1) if g == 0.0), None)
    title = "Props. 3, 7: Adam after DPPO's mask zeroes the gradient (one-logit toy)"
    if T is None or T < 2:
        return Confirmation("overshoot_premise", title, "-", float("inf"), OPTIMIZER_FLOAT64,
                            "FAILS: the toy's gradient never became exactly zero from step 2 on")
    zero_after = all(g == 0.0 for g in gs[T - 1:])
    last = zs[T - 1] - zs[T - 2]
    errs, rows = [], []
    for k in range(len(gs) - T + 1):
        pred = float(overshoot_ratio_eps(T, k, opts.beta1, opts.beta2, opts.eps, run["sqrt_vhat"][T - 2]))
        meas = (zs[T + k] - zs[T + k - 1]) / last
        errs.append(abs(meas - pred) / pred)
        rows.append((k, pred, meas))
    err = max(errs) if zero_after else float("inf")
    return Confirmation("overshoot_premise", title,
                        "zero gradient from the first masked step T on; step T+k = C_(T,k) x step T-1",
                        err, OPTIMIZER_FLOAT64,
                        f"p_old = 0.5, delta_tv = {v.phi_params['delta_tv']:g}, lr 0.1: gradient exactly 0 from step {T} "
                        f"on ({'every' if zero_after else 'NOT every'} later step); C_(T,k) predicted vs measured for "
                        f"k = 0..{len(rows) - 1}: " + ", ".join(f"{p:.4f}/{m:.4f}" for _, p, m in rows[:4]) + " ...",
                        data={"T": T, "rows": rows})


def confirm_overshoot(spec, verdicts, opts: Options) -> list[Confirmation]:
    from .premise import premise_run

    v, ov = spec.variant, verdicts.overshoot
    if v.needs_old_logp:  # DPPO's mask lives in probability space: Prop. 3 on the one-logit toy
        return [_tv_toy(v, opts)]
    plot, summ = illustration(v, opts)
    note = _illustration_text(summ)
    if not ov["exposed"] or ov.get("one_sided"):
        c = _no_zero_region(v, opts, one_sided=bool(ov.get("one_sided")))
        c.plot, c.data["illustration"] = plot, summ
        return [c]
    if ov["T"] is None:
        c = _ratio_one(v, opts)
        c.plot, c.data["illustration"] = plot, summ
        return [c]
    T, mu = ov["T"], opts.mu
    run = premise_run(v, T, mu, (opts.beta1, opts.beta2), opts.eps, opts.device, opts.seed)
    if run.T is None:
        why = (f"FAILS: no learning rate put every token of the fixed batch past its bound at inner step {T} "
               "(and not before), so the premise could not be set up")
        return [Confirmation("overshoot_premise", "Props. 3, 7: Adam after every contribution is clipped", "-",
                             float("inf"), OPTIMIZER_FLOAT64, why, plot=plot, data={"illustration": summ})]
    n = run.covered
    steps = list(range(T, T + n))
    zero_ok = all(run.grad_max[t - 1] == 0.0 for t in steps)
    # the prediction says where the premise stops; the run must agree
    stop_ok = n == mu - T + 1 or not run.all_clipped[T + n - 1]
    step_err = max(run.step_error[:n]) if (zero_ok and stop_ok) else float("inf")
    cover = f"inner steps {T}..{T + n - 1} of mu = {mu} ({n} of the {mu - T + 1} steps from T on"
    cover += ")" if n == mu - T + 1 else f"; at step {T + n} a token is back inside its band, predicted and measured)"
    prem = Confirmation(
        "overshoot_premise", "Props. 3, 7: Adam after every contribution is clipped",
        "zero advantage gradient from inner step T on; step_(T+k) = C^eps_(T,k) x step_(T-1)",
        step_err, OPTIMIZER_FLOAT64,
        f"T = {T}, lr {run.lr:.3g}, {cover}: gradient exactly zero there: {'yes' if zero_ok else 'NO'}; "
        f"max relative step error {max(run.step_error[:n]):.1e} ({max(run.step_error_eps_neglected[:n]):.1e} with "
        "eps neglected)",
        data={"T": T, "lr": run.lr, "covered_steps": steps, "grad_max": run.grad_max, "error": run.step_error[:n],
              "error_eps_neglected": run.step_error_eps_neglected[:n],
              "all_clipped": run.all_clipped})
    meas = [run.excursion[t - 1] for t in steps]
    pred = run.predicted_excursion[:n]
    scale = max(max(float(np.abs(p).max()) for p in pred), 1e-300)
    exc_err = max(float(np.abs(p - m).max()) for p, m in zip(pred, meas)) / scale
    exc_err = exc_err if stop_ok else float("inf")
    entry = float(np.max(run.excursion[T - 2])) if T >= 2 else 0.0
    traj = Confirmation(
        "trajectories", "Props. 3, 7: excursion past the clip bound within the batch",
        "excursion after step T+j = the model's excursion at theta_(T-1) + sum_(i<=j) C^eps_(T,i) step_(T-1)",
        exc_err, MODEL_FLOAT64,
        f"largest excursion past the bound (log-ratio) after step {T - 1}: {entry:.4f}; after step {T + n - 1}: "
        f"predicted {float(np.max(pred[-1])):.4f}, measured {float(np.max(meas[-1])):.4f}; " + note,
        plot=dict(plot, premise={"T": T, "mu": mu, "excursion": [e.tolist() for e in run.excursion],
                                 "predicted": [p.tolist() for p in pred], "steps": steps}),
        data={"T": T, "predicted_max_excursion": [float(np.max(p)) for p in pred],
              "measured_max_excursion": [float(np.max(m)) for m in meas], "illustration": summ})
    return [prem, traj]


def confirm_adam_ratio(spec, verdicts, opts: Options) -> list[Confirmation]:
    """C_(T,k) against a real torch.optim.Adam (eps = 0) fed random gradients, then zeros from step T on."""
    ov = verdicts.overshoot
    if not ov["table"]:
        return []
    T, k, b1, b2 = ov["T"], ov["k"], ov["beta1"], ov["beta2"]
    gen = torch.Generator().manual_seed(opts.seed)
    p = torch.nn.Parameter(torch.zeros(16, dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=1.0, betas=(b1, b2), eps=0.0)
    steps = []
    for t in range(1, T + k + 1):
        p.grad = torch.randn(16, dtype=torch.float64, generator=gen) if t < T else torch.zeros(16, dtype=torch.float64)
        before = p.detach().clone()
        opt.step()
        steps.append((p.detach() - before).numpy())
    meas = [steps[T - 1 + j] / steps[T - 2] for j in range(k + 1)]
    pred = [overshoot_ratio(T, j, b1, b2) for j in range(k + 1)]
    err = max(float(np.max(np.abs(m - c)) / c) for m, c in zip(meas, pred))
    return [Confirmation("C_Tk", f"C_(T,k) against torch.optim.Adam (T = {T}, k = 0..{k})",
                         f"step_(T+k)/step_(T-1) = C_(T,k), beta1 = {b1:g}, beta2 = {b2:g}", err, CLOSED_FORM,
                         "16 coordinates, random gradients before T: "
                         + ", ".join(f"C_(T,{j}) = {c:.6f}" for j, c in enumerate(pred)),
                         data={"predicted": pred, "measured": [float(np.median(m)) for m in meas]})]
