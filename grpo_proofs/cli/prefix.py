"""``grpo-proofs prefix``: the net coefficient W on a shared prefix (Prop. 1), and its real-model checks.

Closed form (arXiv 2601.05002, Sec. 4, App. B.2)::

    grpo-proofs prefix --variant grpo --rewards 1,0,0,1 --lengths 10,30,20,40          # W = 1/96
    grpo-proofs prefix --variant dr_grpo --rewards 1,0,0,1 --lengths 10,30,20,40 --ratio 1.25

prints W, its covariance form and which completions dominate (largest |A_i omega_i|). Real model:
``--confirm`` checks the gradient identity for every variant on sampled groups; ``--train`` runs the
GRPO vs Dr. GRPO drift comparison (``--plot DIR`` saves the PNG).
"""

from __future__ import annotations

import sys

from ..errors import InputError
from .common import (add_device_flag, add_json_flag, check_out_dir, cuda_or_fail, emit_json, floats, ints, number, whole,
                     write_failed)

__all__ = ["register"]


def closed_form(args) -> int:
    from ..props.prefix.inputs import check_prefix_inputs
    from ..variants import get_variant
    from ..weights import group_weights

    missing = [f for f in ("variant", "rewards", "lengths") if getattr(args, f) is None]
    if missing:
        raise InputError(f"missing --{', --'.join(missing)}; e.g. --variant grpo --rewards 1,0,0,1 --lengths 10,30,20,40")
    v = get_variant(args.variant)
    rewards, lengths = floats(args.rewards, "--rewards"), ints(args.lengths, "--lengths")
    shared = ints(args.shared, "--shared") if args.shared is not None else None
    seq = floats(args.sequence_ratios, "--sequence-ratios") if args.sequence_ratios is not None else None
    if seq is not None and not v.sequence_level:
        raise InputError(f"--sequence-ratios applies to sequence-level variants (gspo, gcpo); {v.name} has token "
                         "ratios: give --ratio instead")
    if seq is not None and len(seq) != len(rewards):
        raise InputError(f"--sequence-ratios has {len(seq)} values for {len(rewards)} completions; give one s_i per "
                         "completion")
    ratio = floats(args.ratio, "--ratio")
    if len(ratio) != 1:
        raise InputError(f"--ratio takes one number (the prefix token's ratio), got {args.ratio!r}")
    check_prefix_inputs(v, len(rewards), shared, ratio[0], seq)
    w = group_weights(v, rewards, lengths, sigma=args.sigma)  # validates the group and its memory estimate
    from ..props.gradient.derive import plain
    from ..props.prefix.api import group_terms  # torch: imported once the input is known to be valid

    t = group_terms(v, w, shared=shared, ratio=ratio[0], sequence_ratios=seq)
    whole = len(t.shared) == len(rewards)
    rows = [{"i": i, "reward": rewards[i], "length": lengths[i], "A": float(t.A[i]), "omega": float(t.omega[i]),
             "contribution": c, "share": sh} for i, c, sh in t.dominant()]
    payload = {"variant": v.name, "sigma_kind": args.sigma, "sigma": t.sigma, "shared": list(t.shared),
               "whole_group": whole, "ratio": ratio[0], "sequence_ratios": seq, "W": t.W,
               "covariance_term": t.covariance_term, "mean_term": t.mean_term, "completions": rows}
    if args.json:
        emit_json(payload)
        return 0
    sig = f"; sigma ({args.sigma}) = {t.sigma:.6g}" if t.sigma is not None else ""
    print(f"variant {v.name}: alpha = {plain(v.alpha)}, ratio {v.ratio.value}{sig}")
    where = "whole group" if whole else f"subset of {len(rewards)}"
    seq_text = ", ".join(f"{x:g}" for x in seq) if seq is not None else "1 for every completion"
    at = f"sequence ratios s_i = {seq_text}" if v.sequence_level else f"prefix-token ratio s = {ratio[0]:g}"
    print(f"shared prefix: S = {{{', '.join(map(str, t.shared))}}} ({where}, |S| = {len(t.shared)}); {at}")
    print(f"W = sum_(i in S) A_i omega_i = {t.W:.6g}")
    print(f"covariance form: |S| Cov_S(A, omega) + |S| mean_S(A) mean_S(omega) = {t.covariance_term:.6g} + "
          f"{t.mean_term:.6g}" + ("   (whole group: W = G Cov_pop(A, omega))" if whole else ""))
    print("completions in S by |A_i omega_i|, largest first:")
    print(f"{'i':>4} {'r_i':>9} {'|o_i|':>6} {'A_i':>11} {'omega_i':>11} {'A_i*omega_i':>12} {'share':>7}")
    for r in rows[: args.top]:
        print(f"{r['i']:>4} {r['reward']:>9.4g} {r['length']:>6} {r['A']:>11.4g} {r['omega']:>11.4g} "
              f"{r['contribution']:>12.4g} {100 * r['share']:>6.1f}%")
    if len(rows) > args.top:
        print(f"  ... {len(rows) - args.top} more (--top N)")
    scale = sum(abs(r["contribution"]) for r in rows)
    if abs(t.W) <= 1e-12 * scale or t.W == 0:
        print("W = 0: the contributions cancel; the prefix gets no net gradient")
    else:
        push = [r["i"] for r in rows if r["contribution"] * t.W > 0]
        print(f"W {'>' if t.W > 0 else '<'} 0: the prefix's log-probability is pushed {'up' if t.W > 0 else 'down'} "
              f"(carried by completions {', '.join(map(str, push))})")
    return 0


def confirm(args) -> int:
    from ..variants import get_variant

    cuda_or_fail(args.device)
    variants = [get_variant(args.variant).name] if args.variant else None
    from ..props.prefix import model as ex  # torch: imported once the input is known to be valid

    cuda = args.device == "cuda"
    setup = ex.Setup(model="qwen2_small" if cuda else args.model, dtype="float32" if cuda else "float64",
                     device="cuda" if cuda else "cpu", G=args.G, seed=args.seed)
    rows = ex.confirm(setup, variants, progress=not args.json and sys.stderr.isatty())
    failed = [r for r in rows if not r.passed]
    if args.json:
        emit_json({"model": setup.model, "dtype": setup.dtype, "device": setup.device, "passed": not failed,
                   "rows": [r.__dict__ for r in rows]})
    else:
        print(f"model {setup.model} ({setup.dtype}, {setup.device}); tolerance {setup.tolerance:.0e}")
        print(f"{'variant':<9} {'case':<24} {'W_t':<32} {'check':<9} {'error':>9}  result")
        for r in rows:
            W = ", ".join(f"{w:+.3g}" for w in r.W)
            kind = "vanish" if r.cancels else ("rel err" if setup.dtype == "float64" else "vs |g_U|")
            print(f"{r.variant:<9} {r.case:<24} {W:<32} {kind:<9} {r.error:>9.2e}  "
                  f"{('PASS' if setup.dtype == 'float64' else 'bounded') if r.passed else 'FAIL'}")
        print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def train(args) -> int:
    if args.steps < 1 or args.steps > 1000:
        raise InputError(f"--steps must be in 1..1000, got {args.steps}")
    lr = number(args.lr, "--lr", lo=0, open_lo=True)
    if args.plot:
        check_out_dir(args.plot, "--plot")
    from ..props.prefix import drift as ex  # torch: imported once the input is known to be valid

    setup = ex.DriftSetup(steps=args.steps, seed=args.seed, model=args.model, lr=lr)
    res = ex.drift(setup, progress=not args.json and sys.stderr.isatty())
    path, write_error = None, None
    if args.plot:
        try:
            path = ex.plot_drift(res, args.plot)
        except OSError as exc:
            write_error = exc
    payload = {v: {"raw_drift": res.raw(v), "control_drift": res.runs[(v, True)].drift,
                   "attributable_drift": res.attributable(v), "predicted_sum_W": res.predicted(v),
                   "skipped_steps": res.runs[(v, False)].skipped} for v in setup.variants}
    if args.json:
        emit_json({"steps": setup.steps, "lr": setup.lr, "reward": setup.reward, "variants": payload, "plot": path})
        return write_failed("prefix", "the plot", write_error) if write_error else 0
    print(f"AdamW lr={setup.lr:g}, {setup.steps} steps, G={setup.G}, reward {setup.reward}, prefix {setup.prefix}")
    print(f"{'variant':<9} {'sum W':>10} {'drift':>10} {'control':>10} {'prefix part':>12}   (nats of sum_t log pi(prefix_t))")
    for v, p in payload.items():
        print(f"{v:<9} {p['predicted_sum_W']:>+10.4g} {p['raw_drift']:>+10.4g} {p['control_drift']:>+10.4g} "
              f"{p['attributable_drift']:>+12.3g}")
    if path:
        print(f"plot: {path}")
    return write_failed("prefix", "the plot", write_error) if write_error else 0


def run(args) -> int:
    if args.confirm and args.train:
        raise InputError("choose one of --confirm and --train")
    if args.plot and not args.train:
        raise InputError("--plot saves the --train drift plot; add --train (or leave out --plot)")
    if args.confirm:
        return confirm(args)
    if args.train:
        return train(args)
    return closed_form(args)


def register(sub) -> None:
    p = sub.add_parser("prefix", help="net coefficient W on a shared prefix (Prop. 1), and its real-model checks")
    p.add_argument("--variant", help="registry name (see `grpo-proofs variants`); with --confirm: only this one")
    p.add_argument("--rewards", help="comma-separated rewards, one per completion")
    p.add_argument("--lengths", help="comma-separated completion lengths |o_i|")
    p.add_argument("--shared", help="comma-separated indices of the completions sharing the prefix (default all)")
    p.add_argument("--ratio", default="1", help="ratio pi_theta/pi_old of the shared token (token-level variants; default 1)")
    p.add_argument("--sequence-ratios", help="comma-separated s_i, one per completion (GSPO, GCPO; default 1)")
    p.add_argument("--sigma", default="pop", choices=["pop", "sample"], help="population or sample std (default pop)")
    p.add_argument("--top", type=whole(1), default=10, help="completions listed in the table (default 10)")
    p.add_argument("--confirm", action="store_true", help="check the gradient identity on a real transformer")
    p.add_argument("--train", action="store_true", help="GRPO vs Dr. GRPO prefix drift with AdamW")
    p.add_argument("--model", default="tiny", choices=["tiny", "small"], help="GPT-2 preset for --confirm/--train")
    p.add_argument("--G", type=whole(2, 64), default=8, help="group size for --confirm, 2..64 (default 8)")
    p.add_argument("--steps", type=whole(1, 1000), default=30, help="AdamW steps for --train, 1..1000 (default 30)")
    p.add_argument("--lr", default="5e-4", help="AdamW learning rate for --train, > 0 (default 5e-4)")
    p.add_argument("--seed", type=whole(0), default=0, help="seed of the model and the samples (default 0)")
    p.add_argument("--plot", metavar="DIR", help="with --train: save prop1_training_drift.png in DIR")
    add_device_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)
