"""Curves over training steps, averaged over seeds, and the one plotter `eapo compare` and `eapo ablate` draw
them with (one row of panels, one line per method or variant)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from eapo.io import read_jsonl


def seed_curves(dirs: list[Path], file: str, key: str, present: str | None = None) -> list[dict[int, float]]:
    """Per seed, {step: value of `key`} from the JSON-lines `file` of each run folder that has it; with `present`,
    only the lines where that key is not 0 (a quadrant's `token_share`: a step without its tokens logs 0 for its
    means, which is no value)."""
    out = []
    for d in dirs:
        if (d / file).exists():
            lines = (line for line in read_jsonl(d / file) if key in line and "step" in line)
            out.append({line["step"]: line[key] for line in lines if present is None or line.get(present, 1) != 0})
    return out


def mean_curve(curves: list[dict[int, float]], every: bool = True) -> tuple[list[int], list[float]]:
    """Steps present in every seed's curve (`every=False`: in any) and the mean value at each over the seeds
    that have it."""
    if not curves:
        return [], []
    steps = sorted(set.intersection(*map(set, curves)) if every else set.union(*map(set, curves)))
    return steps, [statistics.fmean(c[s] for c in curves if s in c) for s in steps]


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
