"""The PNG plots of a ``grpo-proofs check`` report, one function per confirmation (matplotlib, Agg).

* :func:`plot_prefix` -- Prop. 1: the shared prefix's parameter gradient, measured against predicted
  (or, where W cancels, their difference against the tolerance), and W_t in units of what the prefix
  would get without cancellation, with the tolerance band;
* :func:`plot_scale` -- Props. 5, 6, 2: the step change per phi (predicted and measured), the
  per-coordinate step ratio against R(k, eps, v_hat), its deviation from the prediction;
* :func:`plot_trajectories` -- Props. 3, 7: the excursion past the clip bound of a batch whose tokens
  are all clipped from step T (predicted and measured) and a sampled group's ratios (illustration).
"""

from __future__ import annotations

import numpy as np

from ..runtime.adam import adam_step_ratio

__all__ = ["plot_prefix", "plot_scale", "plot_trajectories"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks(ax, axis: str = "x") -> None:
    from matplotlib.ticker import MaxNLocator

    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))


def plot_prefix(c, path: str) -> None:
    """Left: the prefix's parameter gradient, measured against predicted (or, where W cancels, their
    difference against the tolerance); right: W_t relative to the sum without cancellation."""
    plt = _plt()
    p = c.plot
    tol = p.get("tolerance", 1e-10)
    gscale = p.get("gscale") or [1.0] * len(p["points"])
    scale_W = p.get("scale_W") or [[1.0] * len(m) for m in p["W_meas"]]
    cancels = p.get("cancels", False)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    if cancels:
        for step, ((pred, meas), gs) in enumerate(zip(p["points"], gscale)):
            dev = np.maximum(np.abs(meas - pred) / max(gs, 1e-300), 1e-18)
            a.scatter(np.arange(len(dev)), dev, s=4, alpha=0.6, label=f"inner step {step}")
        a.axhline(tol, color="k", ls="--", lw=0.9, label=f"tolerance {tol:.0e}")
        a.set_yscale("log")
        a.set(xlabel="parameter coordinate (sample)", ylabel="|measured - predicted| / ||g without cancellation||",
              title="prefix gradient: predicted 0 (cancels), measured")
    else:
        lo = hi = 0.0
        for step, ((pred, meas), gs) in enumerate(zip(p["points"], gscale)):
            x, y = pred / max(gs, 1e-300), meas / max(gs, 1e-300)
            a.scatter(x, y, s=4, alpha=0.6, label=f"inner step {step}")
            lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
        a.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="measured = predicted")
        a.set(xlabel="predicted: sum_t W_t grad log pi(y_t), one copy of the prefix",
              ylabel="measured: autograd through every completion",
              title="prefix gradient per parameter coordinate\n(units: the gradient without cancellation)")
    a.legend(fontsize=7)
    vals = []
    for step, (m, pr, sc) in enumerate(zip(p["W_meas"], p["W_pred"], scale_W)):
        sc = np.maximum(np.asarray(sc, dtype=float), 1e-300)
        pos = np.arange(1, len(m) + 1)
        rp, rm = np.asarray(pr) / sc, np.asarray(m) / sc
        line, = b.plot(pos, rp, "-", lw=1.2, label=f"predicted, step {step}")
        b.plot(pos, rm, "o", ms=6, mfc="none", color=line.get_color(), label=f"measured, step {step}")
        vals += list(rp) + list(rm)
    top = max(max(abs(x) for x in vals) if vals else 0.0, 2 * tol) * 1.3
    b.axhspan(-tol, tol, color="0.85", label=f"within tolerance (+-{tol:.0e})")
    b.axhline(0.0, color="k", lw=0.6)
    b.set_ylim(-top, top)
    _integer_ticks(b)
    b.set(xlabel="prefix position t", ylabel="W_t / sum_i |dJ/dlog pi_(i,t)|",
          title="net coefficient on the shared prefix" + (": cancels (0)" if cancels else ""))
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scale(c, path: str) -> None:
    """Left: the step change per phi, predicted and measured; middle: per-coordinate step ratio against
    R(k, eps, v_hat); right: its deviation from the prediction."""
    plt = _plt()
    fig, (z, a, b) = plt.subplots(1, 3, figsize=(15, 4.2))
    rows = c.plot.get("rows", [])
    floor = 1e-17
    if rows:
        ph = [r["phi"] for r in rows]
        z.scatter(ph, [max(r["predicted_change"], floor) for r in rows], marker="x", s=60, label="predicted")
        z.scatter(ph, [max(r["measured_change"], floor) for r in rows], marker="o", s=40, facecolors="none",
                  edgecolors="tab:red", label="measured")
        z.set_xscale("log")
        z.set_yscale("log")
        z.set(xlabel="reward scale phi", ylabel="||step(phi r) - step(r)|| / ||step(r)||",
              title=f"step change under r -> phi r (0 drawn at {floor:g})")
        z.legend(fontsize=7)
    curves = c.plot.get("curves", [])
    eps = c.plot.get("eps", 0.0)
    for cv in curves:
        x, y = np.asarray(cv["sqrt_vhat"]), np.asarray(cv["ratio"])
        R = adam_step_ratio(cv["k"], eps, x ** 2)
        pts = a.scatter(x, y, s=5, alpha=0.5, label=f"measured, phi = {cv['phi']:g}")
        grid = np.geomspace(max(min(x.min(), eps / 100 if eps > 0 else x.min()), 1e-300), x.max(), 300)
        a.plot(grid, adam_step_ratio(cv["k"], eps, grid ** 2), color=pts.get_facecolor()[0], lw=1.2,
               label=f"predicted R(k = {cv['k']:.6g}, eps, v_hat)")
        b.scatter(x, np.maximum(np.abs(y / R - 1), 1e-17), s=5, alpha=0.5, label=f"phi = {cv['phi']:g}")
    if curves:
        ref = "the reference run (beta/k)" if any(cv.get("kl") for cv in curves) else "the unscaled run"
        a.set_xscale("log")
        a.ticklabel_format(axis="y", useOffset=False)
        a.set(xlabel=f"sqrt(v_hat) of {ref}", ylabel=f"scaled step / step of {ref}",
              title=f"AdamW step ratio per coordinate (eps = {eps:g})")
        a.legend(fontsize=7)
        b.set_xscale("log")
        b.set_yscale("log")
        b.axhline(1e-10, color="k", ls="--", lw=0.8, label="tolerance 1e-10")
        b.set(xlabel=f"sqrt(v_hat) of {ref}", ylabel="|measured / predicted - 1|",
              title="per-coordinate deviation from the prediction")
        b.legend(fontsize=7)
    else:
        for ax in (a, b):
            ax.set_axis_off()
        a.text(0.5, 0.5, "no single scale factor k for this variant:\nthe scaled step is predicted from the "
               "derived\nper-token coefficients (left panel)", ha="center", va="center", transform=a.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_trajectories(c, path: str) -> None:
    """The fixed batch whose tokens are all clipped from step T (excursion predicted and measured), and
    the sampled group's token ratios (an illustration)."""
    plt = _plt()
    runs, prem = c.plot["runs"], c.plot.get("premise")
    n = len(runs) + (1 if prem else 0)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    axes = list(axes[0])
    if prem:
        ax = axes.pop(0)
        E = np.asarray(prem["excursion"])              # (mu, tokens): after steps 1..mu
        steps = np.arange(1, E.shape[0] + 1)
        for j in range(E.shape[1]):
            ax.plot(steps, E[:, j], color="0.5", lw=0.8, label="measured (one line per token)" if j == 0 else None)
        P = np.asarray(prem["predicted"])
        for i, st in enumerate(prem["steps"]):
            ax.scatter([st] * P.shape[1], P[i], marker="x", color="tab:red", s=30,
                       label="predicted from C_(T,k)" if i == 0 else None)
        ax.axhline(0.0, color="k", ls="--", lw=0.9, label="clip bound (excursion 0)")
        ax.axvline(prem["T"] - 0.5, color="tab:blue", ls=":", lw=0.9, label=f"gradient zero from step T = {prem['T']}")
        _integer_ticks(ax)
        ax.set(xlabel="inner step", ylabel="log-ratio past the clip bound (> 0: forbidden side)",
               title="fixed batch, every token clipped from step T")
        ax.legend(fontsize=7)
    for ax, (name, lr, R, side) in zip(axes, runs):
        x = np.arange(R.shape[0])
        for j in range(R.shape[1]):
            ax.plot(x, R[:, j], color="tab:red" if side[j] > 0 else "tab:blue", lw=0.7, alpha=0.6)
        bounds = c.plot["bounds"]
        items = bounds.items() if isinstance(bounds, dict) else ((f"clip bound {y:g}", y) for y in bounds)
        for label, y in items:
            ax.axhline(y, color="k", ls="--", lw=0.9)
            ax.annotate(label, xy=(0, y), xytext=(2, 2), textcoords="offset points", fontsize=7)
        _integer_ticks(ax)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set(xlabel="inner step", ylabel="token ratio s (A > 0 red, A < 0 blue)",
               title=f"sampled group, {name} (lr {lr:.2g}): illustration")
    fig.suptitle(f"token ratios over the mu = {runs[0][2].shape[0] - 1} inner steps of one batch", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
