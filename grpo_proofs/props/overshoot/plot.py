"""Plots of the overshoot runs (:mod:`grpo_proofs.props.overshoot.model`) and what they need.

:func:`plot` draws every token's ratio over the inner steps of one or more runs, clip bounds dashed
and labelled; side by side (``grpo-proofs overshoot --compare``) it carries :data:`MITIGATION_NOTE`,
why a mitigation can increase the excursion. :func:`clip_bounds` names a variant's ratio bounds.
"""

from __future__ import annotations

import numpy as np

from ...variants import get_variant

__all__ = ["plot", "clip_bounds", "MITIGATION_NOTE"]

#: why a mitigation can increase the excursion (printed with the comparison and drawn on its plot)
MITIGATION_NOTE = (
    "why a mitigation can increase the excursion: 'reset' and 'adam-rel' only remove the momentum carried "
    "from one batch to the next, not the momentum within a batch (a token that passes its bound early in a "
    "batch still drifts on), and they change the step size at the start of every batch: a fresh Adam's first "
    "step is sign-like, lr on every coordinate with a gradient, larger than a step whose v_hat remembers "
    "earlier, larger gradients; 'adam-rel' restarts the bias corrections 1/(1 - beta^t), which rescale the "
    "carried moments. 'mu1' takes one step per batch: nothing is clipped, but that step alone can carry a "
    "token past the bound (measured after the step).")


def clip_bounds(variant) -> dict[str, float]:
    """{label: value} of the ratio bounds a variant clips at (for plots).

    >>> clip_bounds("dapo")
    {'1 - eps_low = 0.8': 0.8, '1 + eps_up = 1.28': 1.28}
    """
    v = get_variant(variant)
    out = {}
    if v.eps_low is not None:
        out[f"1 - eps_low = {1 - v.eps_low:g}"] = 1 - v.eps_low
    if v.eps_up is not None:
        out[f"1 + eps_up = {1 + v.eps_up:g}"] = 1 + v.eps_up
    return out


def plot(runs: list, outdir, name: str = "overshoot_ratios.png", bounds=None) -> str:
    """One panel per run: every token's ratio against the inner step (A > 0 red, A < 0 blue),
    batches laid end to end, clip bounds dashed and labelled. Saves a PNG into ``outdir``; returns its path.

    ``bounds``: {label: value}; default the 0.8 / 1.2 band of a symmetric 0.2 clip.
    """
    import os
    import textwrap

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    bounds = bounds or {"1 - eps_low = 0.8": 0.8, "1 + eps_up = 1.2": 1.2}
    os.makedirs(outdir, exist_ok=True)
    ncol = min(3, len(runs))
    nrow = -(-len(runs) // ncol)
    compare = len(runs) > 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow + (0.9 if compare else 0.3)),
                             sharey=True, squeeze=False)
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    for ax, rn in zip(axes.flat, runs):
        x0 = 0
        for R, side in zip(rn.ratios, rn.sides):
            xs = np.arange(x0, x0 + R.shape[0])
            for j in range(R.shape[1]):
                ax.plot(xs, R[:, j], color="tab:red" if side[j] > 0 else "tab:blue", lw=0.6, alpha=0.5)
            x0 += R.shape[0]
            ax.axvline(x0 - 0.5, color="grey", lw=0.5)
        for label, y in bounds.items():
            ax.axhline(y, color="k", ls="--", lw=0.8)
            ax.annotate(label, xy=(0, y), xytext=(2, 2), textcoords="offset points", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(f"{rn.optimizer} / {rn.mitigation} (lr {rn.lr:.2g})", fontsize=9)
        ax.set_xlabel("inner step (batches end to end, grey lines between)", fontsize=8)
    for row in axes:
        row[0].set_ylabel("token ratio s", fontsize=8)
    title = "token ratios after each inner step: A > 0 red, A < 0 blue, clip bounds dashed"
    if compare:
        title += "\n" + "\n".join(textwrap.wrap(MITIGATION_NOTE, 150))
    fig.suptitle(title, fontsize=8 if compare else 9)
    fig.tight_layout()
    path = os.path.join(outdir, name)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
