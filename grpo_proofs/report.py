"""The verdict card of ``grpo-proofs check``: terminal text, Markdown, JSON and PNG plots.

:func:`card` renders a :class:`grpo_proofs.verdict.Verdicts` (and the numerical confirmations, if any)
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

import numpy as np

from .adam import adam_step_ratio

__all__ = ["card", "markdown", "write_report", "PLOTS", "FILES"]

#: plot file names
PLOTS = {"prefix": "prefix_gradient.png", "reward_scale": "reward_scale_step_ratio.png",
         "trajectories": "ratio_trajectories.png"}
FILES = ("check.json", "summary.md") + tuple(PLOTS.values())


def _status(c) -> str:
    return "reported" if c.passed is None else ("PASS" if c.passed else "FAIL")


def _formula(expr) -> str:
    from .errors import InputError
    from .formula import to_formula

    try:
        return to_formula(expr)
    except InputError:
        return str(expr)


def _header(spec, v) -> list[str]:
    clip = "none" if not v.clipped else f"[{v.eps_low}, {v.eps_up}]"
    adv = "centered" if v.advantage == "centered" else f"std ({spec.sigma}{', + %g' % v.sigma_eps if v.sigma_eps else ''})"
    lines = [f"weight alpha_(i,t) = {_formula(v.alpha)}   ratio: {v.ratio.value}   clip: {clip}   advantage: {adv}   "
             f"regularizer: {v.regularizer.value} (beta = {v.beta:g})"]
    if spec.mapping is not None:
        lines.append(f"trainer weight omega_(i,t) = {spec.mapping.weight} (batch symbols), mu = {spec.mu} optimizer "
                     f"step(s) per batch, Adam betas {spec.betas}, grad clip {spec.grad_clip}")
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


def _sections(d) -> list[tuple[str, str, list[str]]]:
    p, lo, rs, ov, eq = d.prefix, d.loss, d.reward_scale, d.overshoot, d.equivalence
    w = p["worked"]
    grad = [f"dJ/dlog pi = {d.gradient['expr']}   [of {', '.join(d.gradient['args'])}]",
            f"unclipped branch: dJ/dlog pi = A_i omega_(i,t), omega_(i,t)(s) = {d.gradient['omega']}"]
    prefix = [f"W = {p['W']}", p["reason"], f"off the first step: {p['off_first_step']}", p["subset"],
              f"worked example (r = {w['rewards']}, |o| = {w['lengths']}, sigma {w['sigma']}): "
              f"W = {_exact(w)}"]
    loss = [f"J(s = 1) = {lo['J']}", lo["meaning"]]
    if lo["worked"] is not None:
        loss.append(f"worked example: reward part of J = {_exact(lo['worked'])}")
    scale = [rs["reason"], rs["grad_clip"], rs["also"]]
    if rs.get("config"):
        scale.insert(0, f"THIS CONFIG: not invariant -- {rs['config']}")
    over = [ov["reason"], ov["formula"],
            f"T = {ov['T']}, beta1 = {ov['beta1']:g}, beta2 = {ov['beta2']:g}: "
            + ", ".join(f"C_(T,{r['k']}) = {r['C_Tk']:.6f}" for r in ov["table"]),
            f"rho = beta1/sqrt(beta2) = {ov['rho']:.6f}, total drift after clipping rho/(1 - rho) = "
            f"{ov['total_drift']:.4g} last pre-clip steps"]
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
        ("Momentum overshoot (Props. 3, 7)", ("no zero-gradient region" if not ov["exposed"] else "exposed"
                                              if ov["mu"] != 1 else "exposed only with mu > 1 (this spec: mu = 1)"), over),
        ("Equivalent registered methods", f"{len(eq['matches'])} match(es)", equiv),
    ]


def card(spec, d, confirmations=None, opts=None, trainer=None) -> str:
    """The verdict card as plain text (what ``grpo-proofs check`` prints)."""
    v = spec.variant
    out = [f"grpo-proofs check: {v.name} ({spec.origin}: {spec.source})", *("  " + x for x in _header(spec, v)), ""]
    for i, (title, verdict, lines) in enumerate(_sections(d) + _trainer(trainer), start=1):
        out.append(f"{i}. {title}" + (f"  ->  {verdict.upper()}" if verdict else ""))
        out += [f"   {x}" for x in lines]
        out.append("")
    if confirmations:
        out.append(f"Numerical confirmation on the real policy ({opts.device}{', quick' if opts.quick else ''}):")
        out.append(f"  {'check':<18} {'status':<9} {'error':>9} {'tol':>8}  detail")
        for c in confirmations:
            e = "-" if c.error is None else f"{c.error:.1e}"
            t = "-" if c.tolerance is None else f"{c.tolerance:.0e}"
            out.append(f"  {c.name:<18} {_status(c):<9} {e:>9} {t:>8}  {c.detail}")
    return "\n".join(out).rstrip() + "\n"


def markdown(spec, d, confirmations=None, opts=None, trainer=None) -> str:
    """The Markdown summary written to the report folder."""
    v = spec.variant
    out = [f"# Verdict card: `{v.name}`", "", f"Source: {spec.origin} `{spec.source}`. "
           "Derived from arXiv 2601.05002 (Props. 1-7) by grpo-proofs.", ""]
    out += [f"* {x}" for x in _header(spec, v)] + [""]
    for title, verdict, lines in _sections(d) + _trainer(trainer):
        out += [f"## {title}" + (f": **{verdict}**" if verdict else ""), ""] + [f"* {x}" for x in lines] + [""]
    out += ["## Gradient in LaTeX", "", "$$" + d.gradient["latex"] + "$$", "", "$$\\omega_{i,t}(s) = "
            + d.gradient["omega_latex"] + "$$", "", "$$W = " + d.prefix["W_latex"] + "$$", ""]
    if confirmations:
        out += [f"## Numerical confirmation ({opts.device}{', quick' if opts.quick else ''})", "",
                "| check | status | error | tolerance | prediction | detail |", "|---|---|---|---|---|---|"]
        for c in confirmations:
            e = "" if c.error is None else f"{c.error:.2e}"
            t = "" if c.tolerance is None else f"{c.tolerance:.0e}"
            cell = lambda x: x.replace("|", "\\|")  # noqa: E731  (a literal | would split the cell)
            out.append(f"| {c.name} | {_status(c)} | {e} | {t} | {cell(c.prediction)} | {cell(c.detail)} |")
        out += ["", *(f"![{k}]({f})" for k, f in PLOTS.items())]
    return "\n".join(out) + "\n"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_prefix(c, path: str) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    lo = hi = 0.0
    for step, (pred, meas) in enumerate(c.plot["points"]):
        a.scatter(pred, meas, s=4, alpha=0.6, label=f"inner step {step}")
        lo, hi = min(lo, pred.min(), meas.min()), max(hi, pred.max(), meas.max())
    a.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    a.set(xlabel="predicted sum_t W_t grad log pi(y_t) (one copy)", ylabel="measured (autograd, every completion)",
          title="prefix gradient, parameter coordinates")
    a.legend(fontsize=7)
    for step, (m, p) in enumerate(zip(c.plot["W_meas"], c.plot["W_pred"])):
        pos = np.arange(1, len(m) + 1)
        b.plot(pos, p, "-", lw=1, label=f"predicted, step {step}")
        b.plot(pos, m, "o", ms=5, mfc="none", label=f"measured, step {step}")
    b.set(xlabel="prefix position t", ylabel="W_t", title="net coefficient on the shared prefix")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_scale(c, path: str) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    curves = c.plot.get("curves", [])
    eps = c.plot.get("eps", 0.0)
    for cv in curves:
        x, y = np.asarray(cv["sqrt_vhat"]), np.asarray(cv["ratio"])
        R = adam_step_ratio(cv["k"], eps, x ** 2)
        pts = a.scatter(x, y, s=5, alpha=0.5, label=f"measured, phi = {cv['phi']:g}")
        grid = np.geomspace(max(min(x.min(), eps / 100 if eps > 0 else x.min()), 1e-300), x.max(), 300)
        a.plot(grid, adam_step_ratio(cv["k"], eps, grid ** 2), color=pts.get_facecolor()[0], lw=1.2,
               label=f"predicted R(k = {cv['k']:.4g}, eps, v_hat)")
        b.scatter(x, np.maximum(np.abs(y / R - 1), 1e-17), s=5, alpha=0.5, label=f"phi = {cv['phi']:g}")
    if curves:
        a.set_xscale("log")
        a.ticklabel_format(axis="y", useOffset=False)
        a.set(xlabel="sqrt(v_hat) of the reference run", ylabel="scaled step / reference step",
              title=f"AdamW step ratio under r -> phi r (eps = {eps:g})")
        a.legend(fontsize=7)
        b.set_xscale("log")
        b.set_yscale("log")
        b.axhline(1e-10, color="k", ls="--", lw=0.8)
        b.set(xlabel="sqrt(v_hat) of the reference run", ylabel="|measured / predicted - 1|",
              title="per-coordinate deviation (dashed: 1e-10)")
        b.legend(fontsize=7)
    else:
        for ax in (a, b):
            ax.set_axis_off()
        a.text(0.5, 0.5, "no closed-form step ratio for this variant\n(see the measured change in the summary)",
               ha="center", va="center", transform=a.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_traj(c, path: str) -> None:
    plt = _plt()
    runs = c.plot["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.8), squeeze=False, sharey=True)
    for ax, (name, lr, R, side) in zip(axes[0], runs):
        for j in range(R.shape[1]):
            ax.plot(np.arange(R.shape[0]), R[:, j], color="tab:red" if side[j] > 0 else "tab:blue", lw=0.7, alpha=0.6)
        for y in c.plot["bounds"]:
            ax.axhline(y, color="k", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set(xlabel="inner step", title=f"{name} (lr {lr:.2g})")
    axes[0][0].set_ylabel("ratio s (A > 0 red, A < 0 blue)")
    fig.suptitle(f"token ratios over mu = {runs[0][2].shape[0] - 1} inner steps; clip bounds dashed", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(folder: str, payload: dict, summary: str, confirmations) -> list[str]:
    """Write JSON, Markdown and plots to a temporary folder, then move them into ``folder``."""
    from .cli.common import to_jsonable

    tmp = tempfile.mkdtemp(prefix="grpo-proofs-check-")
    try:
        with open(os.path.join(tmp, "check.json"), "w") as f:
            json.dump(to_jsonable(payload), f, indent=2)
        with open(os.path.join(tmp, "summary.md"), "w") as f:
            f.write(summary)
        by = {c.name: c for c in confirmations or []}
        for key, fn in (("prefix", _plot_prefix), ("reward_scale", _plot_scale), ("trajectories", _plot_traj)):
            if key in by and by[key].plot:  # a confirmation that crashed has nothing to plot
                fn(by[key], os.path.join(tmp, PLOTS[key]))
        names = sorted(os.listdir(tmp))
        os.makedirs(folder, exist_ok=True)
        for name in names:
            shutil.move(os.path.join(tmp, name), os.path.join(folder, name))
        return [os.path.join(folder, name) for name in names]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
