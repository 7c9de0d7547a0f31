"""``grpo-proofs overshoot``: Adam's drift past the clip bound (Props 3, 7), closed form or real model.

Closed form (arXiv 2601.05002, App. D):  ``grpo-proofs overshoot --beta1 0.9 --beta2 0.95 --T 5 --k 4``
prints C_{T,j} for j = 0..k, the large-T approximation rho^(j+1), the limit rho = beta1/sqrt(beta2)
and the total drift rho/(1-rho). Real model: ``grpo-proofs overshoot --simulate --variant grpo --mu 8
--optimizer adam`` runs one policy through mu inner steps per batch and reports the token ratios
after every step; ``--compare`` runs every optimizer/mitigation row side by side, ``--plot DIR``
saves the ratio trajectories as a PNG.
"""

from __future__ import annotations

import math
import sys

from ..errors import InputError
from ..runtime.choices import MITIGATIONS, OVERSHOOT_OPTIMIZERS
from .common import add_device_flag, add_json_flag, check_out_dir, cuda_or_fail, emit_json, number, write_failed

__all__ = ["register"]


#: --k is counted in optimizer steps; the table has k + 1 rows (JSON lists them all)
MAX_K = 100_000
#: rows printed in the text table before the middle ones are left out (JSON lists every row)
SHOWN_ROWS = 12


def _g(x: float) -> str:
    """A positive value, or '< 1e-308' where it underflows float64 (C_(T,k) is never exactly 0)."""
    return f"{x:.6g}" if x > 0 else "< 1e-308"


def closed_form(args) -> int:
    from ..props.overshoot.api import overshoot_ratio, overshoot_total

    b1 = number(args.beta1, "--beta1", lo=0, hi=1, open_lo=True, open_hi=True)
    b2 = number(args.beta2, "--beta2", lo=0, hi=1, open_lo=True, open_hi=True)
    T = number(args.T, "--T", kind=int, lo=2)
    k = number(args.k, "--k", kind=int, lo=0, hi=MAX_K)
    overshoot_ratio(T, k, b1, b2)                       # validates every input first (InputError)
    rho = b1 / math.sqrt(b2)
    rows = [{"k": j, "C_Tk": overshoot_ratio(T, j, b1, b2), "large_T": rho ** (j + 1)} for j in range(k + 1)]
    payload = {"beta1": b1, "beta2": b2, "T": T, "k": k, "C_Tk": rows[-1]["C_Tk"], "large_T": rho ** (k + 1),
               "limit_C_T": rho, "total_drift": overshoot_total(b1, b2), "table": rows}
    if args.json:
        emit_json(payload)
        return 0
    print(f"Adam (beta1 = {b1:g}, beta2 = {b2:g}), gradient zero from inner step T = {T} on")
    print(f"{'k':>6} {'C_(T,k)':>12} {'rho^(k+1)':>12}")
    shown = rows if len(rows) <= SHOWN_ROWS else rows[:SHOWN_ROWS - 2] + [None] + rows[-1:]
    for r in shown:
        if r is None:
            print(f"{'...':>6}   rows k = {SHOWN_ROWS - 2}..{k - 1} left out (--json lists every row)")
            continue
        print(f"{r['k']:>6} {_g(r['C_Tk']):>12} {_g(r['large_T']):>12}")
    print(f"C_(T,{k}) = {_g(payload['C_Tk'])}; large-T approximation rho^{k + 1} = {_g(payload['large_T'])}")
    print(f"lim_(T->oo) C_T = beta1/sqrt(beta2) = {rho:.6f}")
    drift = payload["total_drift"]
    print("total drift after clipping, if the gradient stays zero for ever: "
          + (f"rho/(1-rho) = {drift:.4f} last pre-clip steps" if math.isfinite(drift)
             else "infinite (beta1^2 >= beta2)"))
    print("a batch used for mu optimizer steps reaches only k <= mu - T (see `grpo-proofs check --mu`)")
    return 0


def simulate(args) -> int:
    from ..variants import get_variant

    get_variant(args.variant)
    cuda_or_fail(args.device)
    mu = number(args.mu, "--mu", kind=int, lo=1, hi=64)
    batches = number(args.batches, "--batches", kind=int, lo=1, hi=100)
    seed = number(args.seed, "--seed", kind=int, lo=0)
    first_step = number(args.first_step, "--first-step", lo=0, hi=1, open_lo=True, open_hi=True)
    if args.plot:
        check_out_dir(args.plot, "--plot")
    if args.optimizer not in OVERSHOOT_OPTIMIZERS:
        raise InputError(f"unknown optimizer {args.optimizer!r}; choose one of: {', '.join(OVERSHOOT_OPTIMIZERS)}")
    if args.mitigation not in MITIGATIONS:
        raise InputError(f"unknown mitigation {args.mitigation!r}; choose one of: {', '.join(MITIGATIONS)}")
    if not args.compare and args.mitigation == "adam-rel" and args.optimizer != "adam":
        raise InputError("--mitigation adam-rel resets Adam's step counter; use it with --optimizer adam")
    from tqdm import tqdm

    from ..props.overshoot import model as ex  # torch: imported after the checks above
    from ..props.overshoot.premise import post_entry_drift

    setup = ex.Setup(variant=args.variant, mu=mu, n_batches=batches, seed=seed, first_step=first_step,
                     device=args.device)
    rows = ex.ROWS if args.compare else ((args.optimizer, args.mitigation),)
    with tqdm(total=len(rows), desc="overshoot", unit="run", file=sys.stderr, disable=None) as bar:
        runs = ex.compare(setup, rows, progress=bar)
    out = []
    for rn in runs:
        item = {**rn.summary(), "post_entry": post_entry_drift(rn, setup.variant), "steps": rn.steps}
        out.append(item)
    plot_path, write_error = None, None
    if args.plot:
        try:
            plot_path = ex.plot(runs, args.plot, bounds=ex.clip_bounds(setup.variant) or None)
        except OSError as exc:
            write_error = exc
    payload = {"variant": setup.variant, "mu": mu, "batches": batches, "first_step": setup.first_step,
               "device": setup.device, "runs": out, "plot": plot_path}
    if args.json:
        emit_json(payload)
        return write_failed("overshoot", "the plot", write_error) if write_error else 0
    print(f"variant {setup.variant}, mu = {mu}, {batches} batch(es), lr set so the first step moves the largest "
          f"token log-ratio by {setup.first_step}")
    if not args.compare:
        print(f"{'batch':>5} {'step':>4} {'clipped@eval':>12} {'forbidden':>9} {'max exc.':>9} {'s 5%':>7} {'s 50%':>7} {'s 95%':>7}")
        for s in out[0]["steps"]:
            q = s["ratio_quantiles"]
            print(f"{s['batch']:>5} {s['step']:>4} {s['clipped_at_eval']:>12.3f} {s['forbidden_frac']:>9.3f} "
                  f"{s['max_excursion']:>9.4f} {q[1]:>7.3f} {q[3]:>7.3f} {q[5]:>7.3f}")
    print(f"{'optimizer':>13} {'mitigation':>10} {'lr':>9} {'max forb.':>9} {'max exc.':>9} {'D/delta max':>11} "
          f"{'D/D_pred med':>12} {'T':>3} {'premise dev.':>14}")
    for o in out:
        pe, dev = o["post_entry"], o["premise_deviation"]
        fmt = (lambda x: "-" if x is None else f"{x:.3f}")
        devs = "-" if not dev else f"{min(dev):.2f}..{max(dev):.2f}"
        print(f"{o['optimizer']:>13} {o['mitigation']:>10} {o['lr']:>9.2e} {o['max_forbidden_frac']:>9.3f} "
              f"{o['max_excursion']:>9.4f} {fmt(pe['max_drift_over_delta']):>11} {fmt(pe['median_drift_over_pred']):>12} "
              f"{'-' if o['premise_T'] is None else o['premise_T']:>3} {devs:>14}")
    print("these are measurements on a sampled group, not a verdict: other tokens keep their gradient, so the "
          "premise of Prop. 3 holds only in part (D/D_pred: drift after a token passed its bound over the premise's "
          "prediction); `grpo-proofs check` confirms Prop. 7 on a batch where it holds")
    if args.compare:
        print(ex.MITIGATION_NOTE)
    if plot_path:
        print(f"plot: {plot_path}")
    return write_failed("overshoot", "the plot", write_error) if write_error else 0


def run(args) -> int:
    return simulate(args) if args.simulate else closed_form(args)


def register(sub) -> None:
    p = sub.add_parser("overshoot", help="Adam/momentum drift past the clip bound (Props 3, 7)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--beta1", default="0.9", help="Adam beta1 in (0, 1) (default 0.9)")
    p.add_argument("--beta2", default="0.95", help="Adam beta2 in (0, 1) (default 0.95)")
    p.add_argument("--T", default="5", help="first inner step with zero gradient, >= 2 (default 5)")
    p.add_argument("--k", default="4", help=f"steps after T, 0..{MAX_K} (default 4)")
    p.add_argument("--simulate", action="store_true", help="run the real transformer policy instead")
    p.add_argument("--variant", default="grpo", help="registry name for --simulate (default grpo)")
    p.add_argument("--mu", default="8", help="inner steps per batch, 1..64 (default 8)")
    p.add_argument("--optimizer", default="adam", help="adam, sgd or sgd-momentum (default adam)")
    p.add_argument("--mitigation", default="none", help="none, mu1, reset or adam-rel (default none)")
    p.add_argument("--compare", action="store_true", help="run every optimizer/mitigation row side by side")
    p.add_argument("--batches", default="2", help="consecutive batches (default 2)")
    p.add_argument("--first-step", default="0.05", help="largest token log-ratio move of the first step (sets lr)")
    p.add_argument("--seed", default="0", help="sampling seed (default 0)")
    p.add_argument("--plot", metavar="DIR", help="save the ratio trajectories as DIR/overshoot_ratios.png")
    add_device_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)
