"""``grpo-proofs scale``: how Adam/AdamW steps change when rewards are scaled by phi (Props 5, 6, 2).

Runs the real policy (tiny GPT-2 in float64 by default, ``--full`` for the small one) for a few steps at
rewards r and phi r and prints the predicted and measured deviation from invariance, the error of the
prediction against its tolerance (exit code 1 when it fails), and the fraction of coordinates whose
step changes by more than 1e-3 relative.
"""

from __future__ import annotations

import math

from .common import add_device_flag, add_json_flag, check_out_dir, cuda_or_fail, emit_json, number, whole, write_failed

__all__ = ["register"]


def run(args) -> int:
    from ..props.reward_scale.inputs import check_scale_inputs
    from ..variants import get_variant

    phi, eps, beta = number(args.phi, "--phi"), number(args.eps, "--eps"), number(args.beta, "--beta")
    mgn = None if args.max_grad_norm is None else number(args.max_grad_norm, "--max-grad-norm")
    check_scale_inputs(phi, eps, beta, mgn, args.steps, args.optimizer)
    get_variant(args.variant)
    if args.plot:
        check_out_dir(args.plot, "--plot")
    cuda_or_fail(args.device)
    from ..checking.tolerances import OPTIMIZER_FLOAT64
    from ..props.reward_scale.report import scale_report  # torch: imported after the checks above

    rep = scale_report(args.variant, phi, eps=eps, beta=beta, max_grad_norm=mgn, steps=args.steps,
                       device=args.device, optimizer=args.optimizer, quick=not args.full, seed=args.seed,
                       progress=True)
    abs_grad = rep.pop("abs_grad")
    rep["tolerance"] = OPTIMIZER_FLOAT64
    rep["passed"] = bool(math.isfinite(rep["max_rel_err_predicted_vs_measured"])
                         and rep["max_rel_err_predicted_vs_measured"] <= OPTIMIZER_FLOAT64)
    rep["plot"], write_error = None, None
    if args.plot:
        from ..props.reward_scale.plot import plot_gradient_scale

        thr = rep["threshold_abs_g_first_step"]
        rows = [{"eps": eps, "phi": phi, "threshold_abs_g": thr if thr is not None else math.nan,
                 "predicted_fraction": rep["noninvariant_fraction_predicted"]}]
        try:
            rep["plot"] = plot_gradient_scale({"abs_grad": abs_grad, "rows": rows, "tol": rep["tol"],
                                               "n_nonzero": int(abs_grad.size)}, args.plot, phis=None)
        except OSError as exc:
            write_error = exc
    code = 0 if rep["passed"] else 1
    if args.json:
        emit_json(rep)
        return write_failed("scale", "the plot", write_error) if write_error else code
    mgn_s = "off" if mgn is None else f"{mgn:g}"
    print(f"{rep['variant']}: rewards x {phi:g}, eps {eps:g}, beta {beta:g}, max-grad-norm {mgn_s}, "
          f"{rep['steps']} step(s), {rep['optimizer']}, {rep['model']}, {rep['n_params']} parameters on {rep['device']}")
    ks = ", ".join(f"{k:.6g}" for k in rep["gradient_scale_k"])
    rows = [
        ("gradient scale k per prompt (Prop 5)", ks),
        ("Adam factor R = phi(sqrt(v)+eps)/(|phi|sqrt(v)+eps), range",
         "n/a (not one uniform scale)" if rep["adam_factor_min"] is None
         else f"{rep['adam_factor_min']:.6g} .. {rep['adam_factor_max']:.6g}"),
        ("deviation from invariance, predicted (max, per coordinate)", f"{rep['deviation_predicted']:.3e}"),
        ("deviation from invariance, measured  (max, per coordinate)", f"{rep['deviation_measured']:.3e}"),
        ("deviation from invariance, measured  (normwise)", f"{rep['deviation_normwise']:.3e}"),
        ("predicted vs measured: max rel err", f"{rep['max_rel_err_predicted_vs_measured']:.1e}"
         f"  (steps {rep['step_rel_err_per_coordinate']:.1e} per coordinate, gradient {rep['gradient_rel_err_normwise']:.1e} normwise)"),
        (f"non-invariant fraction (step changes > {rep['tol']:g} of {rep['resolved_coordinates']} resolved), measured",
         f"{100 * rep['noninvariant_fraction']:.3f}%"),
        ("non-invariant fraction, predicted", f"{100 * rep['noninvariant_fraction_predicted']:.3f}%"),
    ]
    w = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"  {a:<{w}}  {b}")
    err = rep["max_rel_err_predicted_vs_measured"]
    print(f"  prediction {'confirmed' if rep['passed'] else 'FAILS'}: max rel err {err:.1e} "
          f"{'<=' if rep['passed'] else '>'} tolerance {OPTIMIZER_FLOAT64:.0e} (float64 optimizer steps)")
    if rep["plot"]:
        print(f"  plot: {rep['plot']}")
    return write_failed("scale", "the plot", write_error) if write_error else code


def register(sub) -> None:
    p = sub.add_parser("scale", help="Adam/AdamW steps under a reward scale phi: predicted vs measured (Props 5, 6, 2)",
                       description=__doc__)
    p.add_argument("--variant", required=True, help="registry name (see `grpo-proofs variants`)")
    p.add_argument("--phi", required=True, help="reward scale: rewards r -> phi r (nonzero)")
    p.add_argument("--eps", default="1e-8", help="Adam's eps, > 0 (default 1e-8)")
    p.add_argument("--beta", default="0", help="k3 KL coefficient against a second random model (default 0)")
    p.add_argument("--max-grad-norm", default=None, help="global gradient-norm clipping (default off)")
    p.add_argument("--steps", type=whole(1, 100), default=3, help="optimizer steps T, 1..100 (default 3)")
    p.add_argument("--optimizer", default="adamw", choices=["adam", "adamw"],
                   help="torch.optim.Adam, or AdamW with weight decay 0.1 (default adamw)")
    p.add_argument("--seed", type=whole(0), default=0, help="model and sampling seed (default 0)")
    p.add_argument("--full", action="store_true", help="the small GPT-2 (212k parameters) instead of the tiny one")
    p.add_argument("--plot", metavar="DIR", help="save the |g| vs eps histogram as a PNG in DIR")
    add_device_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)
