"""The verdict card of ``grpo-proofs check``: terminal text, Markdown, JSON and PNG plots.

:func:`card` renders a :class:`grpo_proofs.check.verdict.Verdicts` (and the numerical confirmations, if any)
as text; :func:`markdown` as a Markdown summary; :func:`write_report` writes ``check.json``,
``summary.md`` and the plots (predicted vs measured prefix gradient, step ratio under reward scaling,
ratio trajectories under mu inner steps) into a temporary folder and moves them into the report
folder only once everything is written, so a failure leaves the report folder untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from ..props.gradient.derive import plain
from .report_plots import plot_prefix, plot_scale, plot_trajectories

__all__ = ["card", "markdown", "write_report", "PLOTS", "FILES"]

#: plot file names
PLOTS = {"prefix": "prefix_gradient.png", "reward_scale": "reward_scale_step_ratio.png",
         "trajectories": "ratio_trajectories.png"}
FILES = ("check.json", "summary.md") + tuple(PLOTS.values())


def _status(c) -> str:
    return "PASS" if c.passed else "FAIL"


def _tol(c) -> str:
    if c.tolerance is None:
        return "-"
    return "0" if c.tolerance == 0 else f"{c.tolerance:.0e}"


def _formula(expr) -> str:
    from ..errors import InputError
    from .formula_text import to_formula

    try:
        return to_formula(expr)
    except InputError:
        return str(expr)


def _header(spec, v) -> list[str]:
    side = (lambda e: "open" if e is None else f"{e:g}")  # noqa: E731
    clip = "none" if not v.clipped else f"eps_low {side(v.eps_low)}, eps_up {side(v.eps_up)}"
    adv = "centered" if v.advantage == "centered" else f"std ({spec.sigma}{', + %g' % v.sigma_eps if v.sigma_eps else ''})"
    lines = [f"weight alpha_(i,t) = {_formula(v.alpha)}   ratio: {v.ratio.value}   clip: {clip}   advantage: {adv}   "
             f"regularizer: {v.regularizer.value} (beta = {v.beta:g})"]
    if spec.mapping is not None:
        betas = "-" if spec.betas is None else f"{spec.betas[0]:g}, {spec.betas[1]:g}"
        gclip = "off" if not spec.grad_clip else f"max norm {spec.grad_clip:g}"
        lines.append(f"trainer weight omega_(i,t) = {plain(spec.mapping.weight)} (batch symbols), mu = {spec.mu} optimizer "
                     f"step(s) per batch, Adam betas {betas}, gradient clipping {gclip}")
    lines += [f"note: {x}" for x in spec.notes]
    return lines


def _exact(w: dict) -> str:
    """'1/96 = 0.0104167', or just '0' when the exact value is its own decimal."""
    dec = f"{w['value']:.6g}"
    return w["exact"] if w["exact"] == dec else f"{w['exact']} = {dec}"


def _trainer(trainer) -> list[tuple[str, str, list[str]]]:
    if not trainer:
        return []
    return [("Trainer config (grpo_proofs.trainers: micro-batches, KL placement, mu)", "",
             [f"{t['title']}: {t['verdict'].upper()} -- {t['reason']}" for t in trainer])]


def _overshoot_numbers(ov: dict) -> list[str]:
    """The C_(T,k) lines of the card: only steps the optimizer takes when mu is known."""
    if not ov["table"]:
        return [f"mu = {ov['mu']}: no step is taken after a clip can act, so no overshoot step exists"]
    head = f"T = {ov['T']}, beta1 = {ov['beta1']:g}, beta2 = {ov['beta2']:g}"
    if ov["mu"] is not None:
        head += f" (inner steps {ov['T']}..{ov['T'] + ov['k']} of the mu = {ov['mu']} per batch)"
    lines = [head + ": " + ", ".join(f"C_(T,{r['k']}) = {r['C_Tk']:.6f}" for r in ov["table"])]
    if ov["mu"] is None:
        lines.append(f"rho = beta1/sqrt(beta2) = {ov['rho']:.6f}, total drift after clipping rho/(1 - rho) = "
                     f"{ov['total_drift']:.4g} last pre-clip steps (as many steps as it takes)")
    else:
        last = ov["mu"] - ov["T"]
        lines.append(f"drift after clipping within the batch: sum_(j=0..{last}) C_(T,j) = {ov['total_drift']:.4g} last "
                     f"pre-clip steps in the first batch; in later batches Adam's step counter keeps counting and the "
                     f"same steps give up to sum_(j=0..{last}) rho^(j+1) = {ov['later_batches_drift']:.4g} "
                     f"(rho = {ov['rho']:.6f})")
    return lines


def _measured_scale(confirmations) -> list[str]:
    """The predicted and measured step change per phi on the checked group (from the confirmation)."""
    by = {c.name: c for c in confirmations or []}
    out = []
    rs = by.get("reward_scale")
    if rs is not None and rs.data.get("rows"):
        rows = rs.data["rows"]
        verdict = (f"PASS, error {rs.error:.1e} <= {_tol(rs)}" if rs.passed else
                   f"FAIL, error {rs.error:.1e} > {_tol(rs)}")
        per = "; ".join(f"phi = {x['phi']:g}: " + ("" if x["factor"] is None else f"k = {x['factor']:.6g}, ")
                        + f"step change predicted {x['predicted_change']:.3g}, measured {x['measured_change']:.3g}"
                        for x in rows)
        sig = f" (sigma = {rs.data['sigma']:.4g})" if rs.data.get("degree") == "0" else ""
        out.append(f"on the checked group{sig}, AdamW steps at phi r against r: {per} "
                   f"({verdict})")
    gc = by.get("grad_clip")
    if gc is not None and "max_norm" in gc.data:
        act = gc.data["active_predicted"]
        where = ("both runs" if all(act["unscaled"]) and all(act["scaled"]) else
                 "the scaled run only" if any(act["scaled"]) and not any(act["unscaled"]) else
                 "the unscaled run only" if any(act["unscaled"]) and not any(act["scaled"]) else "per step as predicted")
        out.append(f"clipping at max norm {gc.data['max_norm']:.3g} (phi = {gc.data['phi']:g}): active in {where}; step "
                   f"change predicted {gc.data['predicted_change']:.3g}, measured {gc.data['measured_change']:.3g} "
                   f"({_status(gc)})")
    return out


def _sections(d, confirmations=None) -> list[tuple[str, str, list[str]]]:
    p, lo, rs, ov, eq = d.prefix, d.loss, d.reward_scale, d.overshoot, d.equivalence
    w = p["worked"]
    grad = [f"dJ/dlog pi_(i,t), branch by branch ({d.gradient['legend']}):"]
    width = max(len(b["expr"]) for b in d.gradient["branches"])
    grad += [f"  = {b['expr']:<{width}}   where {b['where']}" for b in d.gradient["branches"]]
    grad.append(f"unclipped branch: dJ/dlog pi = A_i omega_(i,t), omega_(i,t)(s) = {d.gradient['omega']}")
    prefix = [f"W = {p['W']}", p["reason"], f"off the first step: {p['off_first_step']}", p["subset"],
              f"worked example (r = {w['rewards']}, |o| = {w['lengths']}, sigma {w['sigma']}): "
              f"W = {_exact(w)}"]
    loss = [f"J(s = 1) = {lo['J']}", lo["meaning"]]
    if lo["worked"] is not None:
        loss.append(f"worked example: reward part of J = {_exact(lo['worked'])}")
    scale = [rs["reason"], *_measured_scale(confirmations), rs["grad_clip"], rs["also"]]
    if rs.get("config"):
        scale.insert(0, f"THIS CONFIG: not invariant -- {rs['config']}")
    over = [ov["reason"], ov["formula"]] + _overshoot_numbers(ov)
    equiv = [f"{m['name']}: {m['factor_kind']} (factor {m['factor']})"
             + (f"; differs in {', '.join(m['differs'])}" if m["differs"] else "") for m in eq["matches"]]
    equiv = equiv or ["none of the registered methods (same ratio kind and clip, weight up to a constant factor)"]
    equiv += [f"related: {m['name']} (weight factor {m['factor']}, but differs in {', '.join(m['differs'])})"
              for m in eq["same_weight"]]
    equiv.append(eq["note"])
    return [
        ("Per-token gradient (Eq. 13-15, 28; derived by SymPy)", "", grad),
        ("Shared prefix (Prop. 1)", "cancels" if p["cancels"] else "does not cancel", prefix),
        ("Loss value (Prop. 4)", f"regime: {lo['regime']}", loss),
        ("Reward scale under Adam/AdamW (Props. 5, 6, 2)", rs["verdict"], scale),
        ("Momentum overshoot (Props. 3, 7)", ("no zero-gradient region" if not ov["exposed"] else
                                              "exposed per token only (one-sided clip)" if ov.get("one_sided") else
                                              "exposed"
                                              if ov["mu"] != 1 else "exposed only with mu > 1 (this spec: mu = 1)"), over),
        ("Equivalent registered methods", f"{len(eq['matches'])} match(es)", equiv),
    ]


def card(spec, d, confirmations=None, opts=None, trainer=None) -> str:
    """The verdict card as plain text (what ``grpo-proofs check`` prints)."""
    v = spec.variant
    out = [f"grpo-proofs check: {v.name} ({spec.origin}: {spec.source})", *("  " + x for x in _header(spec, v)), ""]
    for i, (title, verdict, lines) in enumerate(_sections(d, confirmations) + _trainer(trainer), start=1):
        out.append(f"{i}. {title}" + (f"  ->  {verdict.upper()}" if verdict else ""))
        out += [f"   {x}" for x in lines]
        out.append("")
    if confirmations:
        out.append(f"Numerical confirmation on the real policy ({opts.device}{', quick' if opts.quick else ''}):")
        out.append(f"  {'check':<18} {'status':<9} {'error':>9} {'tol':>8}  detail")
        for c in confirmations:
            e = "-" if c.error is None else f"{c.error:.1e}"
            out.append(f"  {c.name:<18} {_status(c):<9} {e:>9} {_tol(c):>8}  {c.detail}")
    return "\n".join(out).rstrip() + "\n"


def markdown(spec, d, confirmations=None, opts=None, trainer=None) -> str:
    """The Markdown summary written to the report folder."""
    v = spec.variant
    out = [f"# Verdict card: `{v.name}`", "", f"Source: {spec.origin} `{spec.source}`. "
           "Derived from arXiv 2601.05002 (Props. 1-7) by grpo-proofs.", ""]
    out += [f"* {x}" for x in _header(spec, v)] + [""]
    for title, verdict, lines in _sections(d, confirmations) + _trainer(trainer):
        out += [f"## {title}" + (f": **{verdict}**" if verdict else ""), ""] + [f"* {x}" for x in lines] + [""]
    cases = " \\\\ ".join(f"{b['latex']} & \\text{{{b['where']}}}" for b in d.gradient["branches"])
    out += ["## Gradient in LaTeX", "", "$$\\frac{\\partial J}{\\partial \\log \\pi_{i,t}} = \\begin{cases} " + cases
            + " \\end{cases}$$", "", "$$\\omega_{i,t}(s) = "
            + d.gradient["omega_latex"] + "$$", "", "$$W = " + d.prefix["W_latex"] + "$$", ""]
    if confirmations:
        out += [f"## Numerical confirmation ({opts.device}{', quick' if opts.quick else ''})", "",
                "| check | status | error | tolerance | prediction | detail |", "|---|---|---|---|---|---|"]
        for c in confirmations:
            e = "" if c.error is None else f"{c.error:.2e}"
            t = _tol(c)
            cell = lambda x: x.replace("|", "\\|")  # noqa: E731  (a literal | would split the cell)
            out.append(f"| {c.name} | {_status(c)} | {e} | {t} | {cell(c.prediction)} | {cell(c.detail)} |")
        out += ["", *(f"![{k}]({f})" for k, f in PLOTS.items())]
    return "\n".join(out) + "\n"


def write_report(folder: str, payload: dict, summary: str, confirmations) -> list[str]:
    """Write JSON, Markdown and plots to a temporary folder, then put it at ``folder`` whole.

    An existing ``folder`` (empty, or allowed by ``--force``) is replaced as a whole, so files of an
    earlier report never mix with this one; a failure leaves ``folder`` as it was.
    """
    from ..output import replace_dir, to_jsonable

    tmp = tempfile.mkdtemp(prefix="grpo-proofs-check-")
    try:
        with open(os.path.join(tmp, "check.json"), "w") as f:
            json.dump(to_jsonable(payload), f, indent=2)
        with open(os.path.join(tmp, "summary.md"), "w") as f:
            f.write(summary)
        by = {c.name: c for c in confirmations or []}
        for key, fn in (("prefix", plot_prefix), ("reward_scale", plot_scale)):
            if key in by and by[key].plot:  # a confirmation that crashed has nothing to plot
                fn(by[key], os.path.join(tmp, PLOTS[key]))
        traj = next((c for c in confirmations or [] if "runs" in c.plot), None)
        if traj is not None:
            plot_trajectories(traj, os.path.join(tmp, PLOTS["trajectories"]))
        names = sorted(os.listdir(tmp))
        replace_dir(tmp, folder)
        return [os.path.join(folder, name) for name in names]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
