"""The report's matplotlib figures (Agg backend), each written as a PNG; a figure without data is skipped.

Every function takes plain Python data (metric rows, held-out points, token arrays) and a path, and
returns the path it wrote or None when there was nothing to plot.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eapo.analysis.report.runfolder import series

QUADRANT_NAMES = ("PHR", "PLR", "NLR", "NHR")
# Positive polarity green, negative red; high entropy dark, low entropy light (the token view uses the same).
QUADRANT_COLORS = {"PHR": "#1a7f37", "PLR": "#8fd19e", "NLR": "#f4a6a6", "NHR": "#c62828", "NONE": "#bdbdbd"}
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average: element i is the mean of `values[max(0, i - window + 1) : i + 1]`."""
    window = max(1, window)
    return [statistics.fmean(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def _plot_curve(ax: Any, steps: list[int], values: list[float], label: str, color: str) -> None:
    ax.plot(steps, values, color=color, alpha=0.25, linewidth=1)
    ax.plot(steps, smooth(values, len(values) // 30), color=color, linewidth=2, label=f"{label} (smoothed)")


def reward_accuracy_figure(metrics: list[dict[str, Any]], heldout: list[dict[str, float]], path: Path) -> Path | None:
    """Training reward per step (left) and held-out avg@k / pass@k over steps (right)."""
    steps, reward = series(metrics, "reward")
    if not steps and not heldout:
        return None
    fig, (ax_r, ax_h) = _pyplot().subplots(1, 2, figsize=(11, 3.8))
    if steps:
        _plot_curve(ax_r, steps, reward, "reward", "#1f77b4")
        ax_r.legend(loc="lower right")
    else:
        ax_r.text(0.5, 0.5, "no reward in metrics.jsonl", ha="center", va="center", transform=ax_r.transAxes)
    ax_r.set(xlabel="step", ylabel="mean training reward", title="Training reward", ylim=(-0.02, 1.02))
    if heldout:
        k = int(heldout[-1]["k"])
        xs = [p["step"] for p in heldout]
        ax_h.plot(xs, [p["avg"] for p in heldout], "o-", color="#1f77b4", label=f"avg@{k}")
        ax_h.plot(xs, [p["pass"] for p in heldout], "s--", color="#ff7f0e", label=f"pass@{k}")
        ax_h.legend(loc="lower right")
    else:
        ax_h.text(0.5, 0.5, "no held-out evaluation", ha="center", va="center", transform=ax_h.transAxes)
    ax_h.set(xlabel="step", ylabel="held-out accuracy", title="Held-out accuracy", ylim=(-0.02, 1.02))
    return _save(fig, path)


def entropy_figure(metrics: list[dict[str, Any]], path: Path) -> Path | None:
    """Mean token entropy of the sampling distribution per step."""
    steps, values = series(metrics, "entropy/sampling_mean")
    if not steps:
        steps, values = series(metrics, "entropy")
    if not steps:
        return None
    fig, ax = _pyplot().subplots(figsize=(11, 3.2))
    _plot_curve(ax, steps, values, "mean token entropy", "#6a3d9a")
    ax.set(xlabel="step", ylabel="nats", title="Mean token entropy of the sampled completions")
    ax.legend(loc="upper right")
    return _save(fig, path)


def quadrant_figure(metrics: list[dict[str, Any]], path: Path) -> Path | None:
    """Per-quadrant token share (NONE included), gradient-signal share and mean entropy over steps."""
    shares = {q: series(metrics, f"quadrant/{q}/token_share") for q in (*QUADRANT_NAMES, "NONE")}
    steps = shares["PHR"][0]
    if not steps or any(len(s[0]) != len(steps) for s in shares.values()):
        return None
    window = len(steps) // 30
    fig, axes = _pyplot().subplots(1, 3, figsize=(13, 3.8))
    panels = (("token_share", "token share"), ("grad_share", "gradient-signal share |A|(1-p)"))
    for ax, (key, title) in zip(axes[:2], panels, strict=True):
        names = (*QUADRANT_NAMES, "NONE") if key == "token_share" else QUADRANT_NAMES
        curves = [smooth(series(metrics, f"quadrant/{q}/{key}")[1], window) for q in names]
        if any(len(c) != len(steps) for c in curves):
            ax.text(0.5, 0.5, f"no {key} in metrics.jsonl", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.stackplot(steps, curves, labels=names, colors=[QUADRANT_COLORS[q] for q in names])
        ax.set(xlabel="step", ylabel="share (smoothed)", title=title, ylim=(0, 1))
        ax.margins(x=0)
    for q in QUADRANT_NAMES:
        q_steps, values = series(metrics, f"quadrant/{q}/entropy_mean", present=f"quadrant/{q}/token_share")
        if q_steps:
            axes[2].plot(q_steps, smooth(values, window), color=QUADRANT_COLORS[q], linewidth=2, label=q)
    axes[2].set(xlabel="step", ylabel="nats (smoothed)", title="mean entropy per quadrant")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=5, bbox_to_anchor=(0.5, 1.02), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def entropy_histogram_figure(entropy: Sequence[float], polarity: Sequence[int], path: Path) -> Path | None:
    """Histograms of token entropy for tokens of correct-side (A > 0) and wrong-side (A < 0) completions.

    `polarity[i]` is the sign of token i's advantage (+1, -1, or 0 for groups whose rewards are all equal).
    """
    if not entropy:
        return None
    plt = _pyplot()
    top = max(max(entropy), 1e-3)
    bins = [top * i / 40 for i in range(41)]
    fig, ax = plt.subplots(figsize=(11, 3.6))
    groups = ((1, "positive (A > 0)", QUADRANT_COLORS["PHR"]), (-1, "negative (A < 0)", QUADRANT_COLORS["NHR"]),
              (0, "zero advantage (all-equal group)", QUADRANT_COLORS["NONE"]))  # fmt: skip
    for sign, label, color in groups:
        values = [h for h, s in zip(entropy, polarity, strict=True) if s == sign]
        if values:
            mean = statistics.fmean(values)
            ax.hist(values, bins=bins, histtype="step", linewidth=2, color=color,
                    label=f"{label}: {len(values)} tokens, mean {mean:.3f}")  # fmt: skip
            ax.axvline(mean, color=color, linestyle=":", linewidth=1.5)
    ax.set_yscale("log")
    ax.set(xlabel="token entropy (nats)", ylabel="tokens (log scale)", title="Token entropy by polarity (sampled)")
    ax.legend(loc="upper right")
    return _save(fig, path)
