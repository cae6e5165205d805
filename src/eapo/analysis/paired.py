"""The paired-difference figure of `eapo compare`, `eapo ablate` and the findings: per method (or variant), its
difference to the baseline on the same seeds, mean and 95% paired-t interval (`eapo.evaluation.stats`), one
panel per metric. A filled marker: the interval excludes 0; hollow: it does not; no bar: one seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def paired_points(
    rows: Sequence[Mapping[str, Any]], name_field: str, key: str, baseline: str
) -> list[tuple[str, float, float | None]]:
    """(name, mean difference, 95% half-width or None for one seed) of `key` for every row paired with
    `baseline` (rows built by `comparison_row`); the baseline's own row and rows without a difference are left out."""
    out = []
    for row in rows:
        mean = row.get(f"{key}_diff")
        if row[name_field] != baseline and mean is not None:
            out.append((str(row[name_field]), float(mean), row.get(f"{key}_diff_ci95")))
    return out


def plot_paired(
    path: Path, rows: Sequence[Mapping[str, Any]], name_field: str, keys: Sequence[str], baseline: str
) -> Path | None:
    """Draw one panel per metric in `keys` into the PNG `path`; None (nothing written) when no row is paired."""
    panels = [(key, paired_points(rows, name_field, key, baseline)) for key in keys]
    panels = [(key, points) for key, points in panels if points]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(name for _, points in panels for name, _, _ in points))  # every panel's, in order
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 1.2 + 0.42 * len(names)), squeeze=False, sharey=True
    )
    for ax, (key, points) in zip(axes[0], panels, strict=True):
        for name, mean, half in points:
            y = names.index(name)
            resolved = half is not None and abs(mean) > half
            ax.errorbar(
                mean, y, xerr=None if half is None else half, fmt="o", color="C0" if mean >= 0 else "C3",
                mfc="C0" if resolved and mean >= 0 else "C3" if resolved else "white", capsize=3,
            )  # fmt: skip
        ax.axvline(0.0, color="0.5", lw=1, ls="--")
        ax.set(title=f"Δ {key} vs {baseline}", xlabel="difference (95% paired t)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(names)), names)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
