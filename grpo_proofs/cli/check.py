"""``grpo-proofs check``: every proposition of arXiv 2601.05002 asked of one variant, derived and measured.

``grpo-proofs check SPEC`` (a registry name, a YAML/TOML/JSON spec or a trainer config), or
``grpo-proofs check --variant-file my_variant.py:MyVariant``, prints the verdict card: the symbolic
per-token gradient, the shared-prefix coefficient W (Prop. 1), the meaning of the loss value (Prop. 4),
the reward-scale verdict under Adam/AdamW (Props. 5, 6, 2), the overshoot exposure with C_(T,k)
(Props. 3, 7) and the registered methods it equals up to a constant factor. Each verdict is then
confirmed on the real transformer policy (``--symbolic`` skips that); ``--report DIR`` writes
check.json, summary.md and three PNG plots into a new or empty folder (``--force`` replaces one that
holds files). Every confirmation compares a prediction with a measurement, error against tolerance.
Exit code 0: every confirmation holds; 1: one does not (its row says FAIL); 2: bad input (nothing
is written), or a report that could not be written (the results are printed all the same).

Optimizer settings of the overshoot verdict: ``--beta1 0.9 --beta2 0.999`` (torch.optim.AdamW's
defaults; a trainer config's own betas when it gives them), ``--T`` (first inner step with zero
advantage gradient, default 2) and ``--k`` (steps after it, default mu - T): only steps the optimizer
takes, T >= 2 and T + k <= mu, the inner steps per sampled batch (the config's mu, or ``--mu``).
"""

from __future__ import annotations
import sys
from dataclasses import asdict

from ..errors import InputError
from .common import add_device_flag, add_json_flag, check_report_dir, cuda_or_fail, emit_json, number, write_failed

__all__ = ["register", "run", "resolve_options"]


def resolve_options(args, spec):
    """CLI flags over the spec's own settings over the defaults, validated (InputError).

    T and k of the overshoot numbers must be steps the optimizer takes: 2 <= T, T + k <= mu (the
    inner steps per batch); their defaults are T = 2, k = mu - 2 (every reachable step).
    """
    from ..checking.confirmation import Options
    from ..check.verdict import reachable

    b1 = number(args.beta1, "--beta1", lo=0, hi=1, open_lo=True, open_hi=True) if args.beta1 is not None \
        else (spec.betas or (0.9, 0.999))[0]
    b2 = number(args.beta2, "--beta2", lo=0, hi=1, open_lo=True, open_hi=True) if args.beta2 is not None \
        else (spec.betas or (0.9, 0.999))[1]
    mu = number(args.mu, "--mu", kind=int, lo=1, hi=64) if args.mu is not None \
        else min(spec.mu or (6 if args.quick else 8), 64)
    T = number(args.T, "--T", kind=int, lo=2) if args.T is not None else None
    k = number(args.k, "--k", kind=int, lo=0, hi=1000) if args.k is not None else None
    where = "from the spec" if spec.mu and args.mu is None else ("--mu" if args.mu is not None else "the default")
    if mu < 2 and (T is not None or k is not None):
        raise InputError(f"--T/--k: with mu = {mu} optimizer step per batch ({where}) no step follows a clip, so no "
                         "overshoot step exists; leave out --T and --k")
    if mu >= 2:
        T = 2 if T is None else T
        k = mu - T if k is None else k
        if not reachable(T, k, mu):
            raise InputError(f"--T {T} --k {k}: step T + k = {T + k} lies past the mu = {mu} optimizer steps per batch "
                             f"({where}); choose T >= 2 and T + k <= {mu} (default: T = 2, k = mu - 2)")
    sigma = args.sigma or spec.sigma
    return Options(device=args.device, quick=args.quick, seed=number(args.seed, "--seed", kind=int, lo=0),
                   mu=mu, T=T, k=k, beta1=b1, beta2=b2,
                   eps=number(args.eps, "--eps", lo=0, hi=1, open_lo=True, open_hi=True), sigma=sigma)


def _usable(v, alpha):
    """``alpha`` when it is a valid weight for ``v`` (a trainer's guard-free weight), else None."""
    if alpha is None:
        return None
    try:
        v.replace(alpha=alpha)
    except InputError:
        return None
    return alpha


def _confirm(spec, verdicts, opts):
    from tqdm import tqdm

    from ..check.confirm import STAGES, run_all

    with tqdm(total=STAGES, desc="confirming", unit="check", file=sys.stderr, disable=None) as bar:
        return run_all(spec, verdicts, opts, progress=bar)


def run(args) -> int:
    cuda_or_fail(args.device)
    if args.report is not None:
        check_report_dir(args.report, args.force)
    from ..check.spec_files import load_spec

    spec = load_spec(args.spec, args.variant_file)
    opts = resolve_options(args, spec)
    from ..check.report import card, markdown, write_report  # imported once the input is known to be valid
    from ..check.spec import dump_spec
    from ..check.verdict import derive

    clean = getattr(spec.mapping, "alpha_clean", None)
    verdicts = derive(spec.variant, opts.sigma, T=opts.T, k=opts.k, beta1=opts.beta1, beta2=opts.beta2,
                      mu=opts.mu, grad_clip=spec.grad_clip, match_alpha=_usable(spec.variant, clean))
    trainer = None
    if spec.mapping is not None:
        from ..trainers import propositions

        trainer = [asdict(x) for x in propositions(spec.mapping)]
        if spec.mapping.kl_in_reward:
            verdicts.reward_scale["config"] = next(t["reason"] for t in trainer if t["label"] == "reward_scale")
    confirmations = [] if args.symbolic else _confirm(spec, verdicts, opts)
    try:
        declared = dump_spec(spec.variant, opts.sigma)
    except InputError:
        declared = {"name": spec.variant.name, "alpha": str(spec.variant.alpha)}
    failed = [c.name for c in confirmations if c.passed is False]
    payload = {"variant": declared, "origin": spec.origin, "source": spec.source, "mu": spec.mu,
               "notes": list(spec.notes), "options": asdict(opts), "verdicts": verdicts.to_dict(), "trainer_verdicts": trainer,
               "confirmations": [c.to_dict() for c in confirmations], "failed": failed,
               "passed": not failed if confirmations else None}
    write_error = None
    if args.report is not None:
        try:
            payload["report_files"] = write_report(args.report, payload, markdown(spec, verdicts, confirmations, opts,
                                                                                  trainer), confirmations)
        except OSError as exc:
            write_error = exc
    if args.json:
        emit_json(payload)
    else:
        sys.stdout.write(card(spec, verdicts, confirmations, opts, trainer))
        if payload.get("report_files"):
            print(f"report: {', '.join(payload['report_files'])}")
    if write_error is not None:
        return write_failed("check", f"the report folder {args.report!r}", write_error)
    return 1 if failed else 0


def register(sub) -> None:
    p = sub.add_parser("check", help="derive and confirm every proposition for one variant (yours)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("spec", nargs="?", metavar="SPEC",
                   help="a registry name (grpo, dapo, ...), a .yaml/.toml/.json spec, or a trainer config file")
    p.add_argument("--variant-file", metavar="FILE.py:NAME",
                   help="a Python file defining a Variant (or a function returning one); the file is executed")
    p.add_argument("--report", metavar="DIR", help="write check.json, summary.md and PNG plots to DIR (a new or "
                   "empty folder)")
    p.add_argument("--force", action="store_true", help="with --report: replace a folder that already holds files")
    p.add_argument("--quick", action="store_true", help="smaller groups and fewer steps (seconds on a CPU)")
    p.add_argument("--symbolic", action="store_true", help="derive the verdicts only; skip the real-model checks")
    p.add_argument("--sigma", choices=["pop", "sample"], help="std of the rewards (default: the spec's, else pop)")
    p.add_argument("--mu", help="inner optimizer steps per batch for the ratio trajectories, 1..64 (default: the spec's, else 8; "
                        "6 with --quick)")
    p.add_argument("--T", help="first inner step with zero advantage gradient, 2..mu (default 2)")
    p.add_argument("--k", help="steps after T for C_(T,k), T + k <= mu (default mu - T: every step the batch takes)")
    p.add_argument("--beta1", help="Adam beta1 in (0, 1) (default: the trainer config's, else 0.9)")
    p.add_argument("--beta2", help="Adam beta2 in (0, 1) (default: the trainer config's, else 0.999)")
    p.add_argument("--eps", default="1e-8", help="Adam eps in (0, 1) of the optimizer runs (default 1e-8)")
    p.add_argument("--seed", default="0", help="seed of the policy and the sampled groups (default 0)")
    add_device_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)
