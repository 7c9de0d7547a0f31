"""The reward-scale figure: where the first step's gradient magnitudes fall against Adam's eps."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_gradient_scale"]


def plot_gradient_scale(result: dict, out_dir, name: str = "reward_scale_gradient_scale.png",
                        phis=(10.0, 1e-3)) -> str:
    """Histogram of log10 |g| (first-step gradient, nonzero coordinates) against Adam's eps and the
    thresholds below which a coordinate's step changes by more than ``tol`` (PNG, matplotlib Agg).
    ``phis``: the scales whose thresholds are drawn (None: every row's)."""
    import os

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    a = np.log10(result["abs_grad"])
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.hist(a, bins=120, color="0.7")
    ax.set_yscale("log")
    eps_styles = {e: st for e, st in zip(sorted({r["eps"] for r in result["rows"]}), ("-", "--", ":", "-."))}
    palette = iter(plt.get_cmap("tab10").colors)
    for row in result["rows"]:
        thr = row.get("threshold_abs_g", np.inf)
        if (phis is not None and row["phi"] not in phis) or not np.isfinite(thr) or thr <= 0:
            continue
        ax.axvline(np.log10(thr), color=next(palette), ls=eps_styles[row["eps"]],
                   label=f"eps={row['eps']:g}, phi={row['phi']:g}: |g| < {thr:.1e} change ({100 * row['predicted_fraction']:.1f}%)")
    for eps, st in eps_styles.items():
        ax.axvline(np.log10(eps), color="k", ls=st, lw=1.5, label=f"eps = {eps:g}")
    ax.set_xlabel("log10 |g| per coordinate (first step)")
    ax.set_ylabel("coordinates")
    ax.set_title(f"Adam steps that change by > {result['tol']:g} when rewards are scaled ({result['n_nonzero']} coords)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(os.fspath(out_dir), name)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
