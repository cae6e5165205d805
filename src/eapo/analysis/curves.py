"""Curves over training steps, averaged over seeds, and the one plotter `eapo compare` and `eapo ablate` draw
them with (one row of panels, one line per method or variant)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from eapo.io import read_jsonl


def seed_curves(dirs: list[Path], file: str, key: str) -> list[dict[int, float]]:
    """Per seed, {step: value of `key`} from the JSON-lines `file` of each run folder that has it."""
    out = []
    for d in dirs:
        if (d / file).exists():
            out.append({line["step"]: line[key] for line in read_jsonl(d / file) if key in line and "step" in line})
    return out


def mean_curve(curves: list[dict[int, float]]) -> tuple[list[int], list[float]]:
    """Steps present in every seed's curve and the mean value over seeds at each."""
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return steps, [statistics.fmean(c[s] for c in curves) for s in steps]


@dataclass
class Panel:
    """One panel: a curve `(steps, values)` per name; `smooth` draws a trailing mean over 1/30 of the steps
    (per-step training logs), `markers` marks each point (sparse evaluations); `xlabel` names the x values."""

    title: str
    ylabel: str
    curves: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    smooth: bool = False
    markers: bool = False
    xlabel: str = "step"


def plot_panels(path: Path, panels: list[Panel]) -> Path:
    """Draw `panels` side by side into the PNG `path` (legend in the first panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eapo.analysis.report.figures import smooth

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for name, (steps, values) in panel.curves.items():
            shown = smooth(values, max(1, len(values) // 30)) if panel.smooth else values
            ax.plot(steps, shown, marker="." if panel.markers else None, label=name)
        ax.set(xlabel=panel.xlabel, ylabel=panel.ylabel, title=panel.title)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
