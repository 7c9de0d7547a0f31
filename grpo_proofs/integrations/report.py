"""The audit report: a Markdown summary and PNG plots of an audited run (matplotlib, Agg).

* ``prefix.png`` -- Prop. 1: W per step (the trainer's gradient), its covariance form (mapped) and
  its length part; the share of groups pushed by length;
* ``clip.png`` -- Props. 3, 7 (runs with inner steps only): the clipped share and the mean excursion
  per inner step, and the measured move after clipping against C_{T,0};
* ``scale_loss.png`` -- Prop. 2's share of Adam coordinates a reward scale would move, and Prop. 4's
  split of the loss per step;
* ``report.md`` -- the run, the summary sentences, the per-step table, the plots, the metrics' meaning.
"""

from __future__ import annotations

import os

import numpy as np

from .summary import METRIC_DOCS

__all__ = ["write_report", "TABLE_COLUMNS", "cell", "no_clip_note"]

#: (metric, column title) of the per-step table (text and Markdown)
TABLE_COLUMNS = [("clip_inner_step", "inner"), ("weight_max_rel", "w rel.diff"), ("prefix_groups", "groups"),
                 ("prefix_W_mean", "W"), ("prefix_length_share", "by length"), ("clip_share", "clipped"),
                 ("clip_excursion", "excursion"), ("overshoot_share", "moved out"), ("overshoot_ratio", "move ratio"),
                 ("overshoot_pred", "predicted"), ("scale_share", "scale"), ("loss", "loss"), ("loss_length", "length"),
                 ("loss_ratio", "ratio"), ("loss_kl", "KL")]


def cell(value) -> str:
    """A table cell: '-' when the metric was not measured at that step."""
    if value is None:
        return "-"
    if isinstance(value, float) and value == 0:
        return "0"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6 and value != 0):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"
    return str(value)


def _series(steps, key):
    pts = [(r["step"], r[f"proofs/{key}"]) for r in steps if isinstance(r.get(f"proofs/{key}"), (int, float))]
    return (np.array([p[0] for p in pts]), np.array([p[1] for p in pts], dtype=float)) if pts else (np.array([]), np.array([]))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_prefix(steps, path: str) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for key, style, label in (("prefix_W_mean", "o-", "W (trainer's gradient)"),
                              ("prefix_W_cov_mean", "x", "covariance form |S| Cov(A, omega) (mapped)"),
                              ("prefix_W_length_mean", "s--", "length part (weights at r = 1)")):
        x, y = _series(steps, key)
        if x.size:
            a.plot(x, y, style, label=label, ms=5)
    a.axhline(0, color="k", lw=0.6)
    _integer_ticks(a)
    _integer_ticks(b)
    a.set(xlabel="optimizer step", ylabel="W (mean over groups and prefix positions)",
          title="shared-prefix coefficient (Prop. 1)")
    if a.lines[1:]:
        a.legend(fontsize=8)
    else:
        a.text(0.5, 0.5, "no group shared a prefix", ha="center", transform=a.transAxes)
    x, y = _series(steps, "prefix_length_share")
    if x.size:
        b.bar(x, y, color="tab:orange", alpha=0.7, label="share of groups pushed by length")
    x, y = _series(steps, "prefix_W_rel")
    if x.size:
        b.plot(x, y, "ko-", ms=4, label="|W| / gross push")
    b.set(xlabel="optimizer step", ylim=(0, 1.05), title="how much of the push is left")
    if b.patches or b.lines:
        b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_clip(steps, path: str) -> bool:
    """False (nothing written) when the run had no inner steps."""
    js = [(int(r["proofs/clip_inner_step"]), r) for r in steps if "proofs/clip_inner_step" in r]
    if not js:
        return False
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    inner = sorted({j for j, _ in js})
    for key, style, label in (("clip_share", "o-", "clipped region"), ("clip_beyond_share", "s--", "beyond a bound")):
        mean = [np.mean([r[f"proofs/{key}"] for j, r in js if j == k and f"proofs/{key}" in r] or [np.nan]) for k in inner]
        a.plot(inner, mean, style, label=f"share: {label}")
    exc = [np.mean([r["proofs/clip_excursion"] for j, r in js if j == k and "proofs/clip_excursion" in r] or [np.nan])
           for k in inner]
    a2 = a.twinx()
    a2.plot(inner, exc, "^:", color="tab:red", label="mean excursion past the bound")
    a2.set_ylabel("excursion (ratio units)", color="tab:red")
    a.set(xlabel="inner step (optimizer steps into the generation batch)", ylabel="share of tokens",
          title="tokens past the clip bound, per inner step (mean over batches)")
    a.set_xticks(inner)
    a.legend(loc="upper left", fontsize=8)
    x, y = _series(steps, "overshoot_ratio")
    xp, yp = _series(steps, "overshoot_pred")
    if x.size:
        b.plot(x, y, "o", label="measured: move after clipping / last move before (median)")
        b.plot(xp, yp, "k_", ms=14, mew=2, label="predicted: C_T x lr ratio (momentum alone)")
    xs, ys = _series(steps, "overshoot_share")
    if xs.size:
        b.plot(xs, ys, "s", color="tab:green", label="share of clipped tokens that moved further out")
    b.axhline(0, color="k", lw=0.6)
    b.set(xlabel="optimizer step", title="after clipping (Props. 3, 7)")
    _integer_ticks(b)
    if b.lines[1:]:
        b.legend(fontsize=8)
    else:
        b.text(0.5, 0.5, "no row visited twice after clipping", ha="center", transform=b.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_scale_loss(steps, path: str) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    x, y = _series(steps, "scale_share")
    a.plot(x, y, "o-")
    a.set(xlabel="optimizer step", ylabel="share of coordinates", title="steps a reward scale would change (Prop. 2)")
    _integer_ticks(a)
    _integer_ticks(b)
    for key, style in (("loss", "ko-"), ("loss_length", "s--"), ("loss_ratio", "^:"), ("loss_kl", "d-.")):
        x, y = _series(steps, key)
        if x.size:
            b.plot(x, y, style, label=key)
    b.axhline(0, color="k", lw=0.6)
    b.set(xlabel="optimizer step", title="the loss, split (Prop. 4)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def no_clip_note(result: dict) -> str:
    """Why a run has no clip metrics (its loss type has no clip region, or every step was on-policy)."""
    from .measures import PPO_LOSSES

    lt = (result.get("config") or {}).get("loss_type")
    if lt is not None and lt not in PPO_LOSSES:
        return f"no clip metrics: loss_type {lt} has no zero-gradient clip region, so Props. 3 and 7 have nothing to measure"
    return ("no clip metrics: every step was on-policy (num_iterations = 1 and steps_per_generation = "
            "gradient_accumulation_steps), so no token was past a clip bound")


def _markdown(result: dict, pictures: list[str]) -> str:
    s = result["summary"]
    lines = ["# Audit of a GRPOTrainer run", ""]
    head = [("TRL", result.get("trl_version") or "not recorded"), ("model", s.get("model")),
            ("Table 1 match", ", ".join(s.get("method") or []) or None), ("per-token weight", s.get("weight")),
            ("steps", s.get("steps")), ("source", s.get("source"))]
    lines += [f"* {k}: {v}" for k, v in head if v is not None]
    cfg = result.get("config") or {}
    if cfg:
        lines += ["* config: " + ", ".join(f"{k}={v}" for k, v in sorted(cfg.items()) if v is not None)]
    notes = list(s.get("notes", [])) + ([] if "clip.png" in pictures else [no_clip_note(result)])
    lines += ["", "## Findings", ""] + [f"* {t}" for t in s.get("lines", [])] + [f"* note: {t}" for t in notes]
    cols = [(k, t) for k, t in TABLE_COLUMNS if any(f"proofs/{k}" in r for r in result["steps"])]
    lines += ["", "## Per step", "", "| step | " + " | ".join(t for _, t in cols) + " |",
              "|---" * (len(cols) + 1) + "|"]
    for r in result["steps"]:
        lines.append(f"| {r['step']} | " + " | ".join(cell(r.get(f"proofs/{k}")) for k, _ in cols) + " |")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in pictures]
    lines += ["", "## Metrics", ""] + [f"* `proofs/{k}`: {v}" for k, v in METRIC_DOCS.items()]
    return "\n".join(lines) + "\n"


def write_report(folder: str, result: dict) -> list[str]:
    """Write ``report.md`` and the PNGs of ``result`` into ``folder`` (which exists); the file names written."""
    steps = result["steps"]
    pictures = ["prefix.png"]
    plot_prefix(steps, os.path.join(folder, "prefix.png"))
    if plot_clip(steps, os.path.join(folder, "clip.png")):
        pictures.append("clip.png")
    plot_scale_loss(steps, os.path.join(folder, "scale_loss.png"))
    pictures.append("scale_loss.png")
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8") as fh:
        fh.write(_markdown(result, pictures))
    return ["report.md", *pictures]
