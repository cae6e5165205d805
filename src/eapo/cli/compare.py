"""`eapo compare`: every method on the same task, budget and seeds; a table with 95% intervals.

Each (method, seed) run is an ordinary `eapo train` run folder under `--output_dir`; a run whose
`eval.json` exists is finished and is not redone, so an interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from pathlib import Path
from typing import Any

# Two-sided 95% Student t quantiles t_{0.975, df}, df = 1..30 (beyond: 1.96).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]  # fmt: skip
DEFAULT_METHODS = "grpo,dapo,forking,entroadv,kl_cov,eapo"


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (half-width 0 for a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    df = len(values) - 1
    t = _T975[df - 1] if df <= len(_T975) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="comma-separated method names")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per method")
    parser.add_argument("--steps", type=int, default=600, help="max_steps of every run")
    parser.add_argument("--output_dir", default="runs/compare", help="one run folder per (method, seed) in here")
    parser.add_argument("--eval_k", type=int, default=8, help="samples per held-out problem")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more `eapo train` flags")


def _run_one(method: str, seed: int, args: argparse.Namespace, run_dir: Path) -> None:
    from eapo.cli.train import parse_args, train

    extra = [f for f in args.train_flags if f != "--"]
    flags = ["--method", method, "--seed", str(seed), "--max_steps", str(args.steps)]
    flags += ["--output_dir", str(run_dir), "--eval_k", str(args.eval_k), "--save_strategy", "no", *extra]
    train(*parse_args(flags))


def _read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _summarise(run_dir: Path, lines: list[dict[str, Any]], k: int) -> dict[str, float]:
    summary = json.loads((run_dir / "eval.json").read_text())
    tail = lines[-10:]
    return {
        f"avg@{k}": summary["after"][f"avg@{k}"],
        f"pass@{k}": summary["after"][f"pass@{k}"],
        "entropy": statistics.fmean(line["entropy/sampling_mean"] for line in tail),
        "seconds_per_step": summary["train_seconds"] / max(summary["steps"], 1),
    }


def write_outputs(results: dict[str, list[dict[str, float]]], out: Path, args: argparse.Namespace) -> str:
    """compare.csv and compare.md; returns the markdown table."""
    keys = list(next(iter(results.values()))[0])
    rows = []
    for method, runs in results.items():
        row: dict[str, Any] = {"method": method, "seeds": len(runs)}
        for key in keys:
            mean, half = mean_ci95([r[key] for r in runs])
            row[key], row[f"{key}_ci95"] = mean, half
        rows.append(row)
    with (out / "compare.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = "| method | seeds | " + " | ".join(keys) + " |"
    lines = [header, "|" + "---|" * (len(keys) + 2)]
    for row in rows:
        cells = [f"{row[k]:.3f} ± {row[f'{k}_ci95']:.3f}" for k in keys]
        lines.append(f"| {row['method']} | {row['seeds']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    note = (
        f"Held-out countdown, {args.eval_k} samples per problem, temperature 1; {args.steps} steps per run; "
        "mean ± half-width of the 95% t-interval over seeds; entropy: mean sampling entropy of the last 10 "
        "steps; seconds_per_step: training wall time / steps.\n"
    )
    (out / "compare.md").write_text(f"# eapo compare\n\n{note}\n{table}\n")
    return table


def plot_curves(out: Path, metrics: dict[str, list[list[dict[str, Any]]]]) -> None:
    """compare.png: training reward and sampling entropy per step, mean over seeds, lightly smoothed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_r, ax_h) = plt.subplots(1, 2, figsize=(11, 4))
    for method, runs in metrics.items():
        n = min(len(lines) for lines in runs)
        steps = [line["step"] for line in runs[0][:n]]
        for ax, key in ((ax_r, "reward"), (ax_h, "entropy/sampling_mean")):
            mean = [statistics.fmean(lines[i][key] for lines in runs) for i in range(n)]
            window = max(1, n // 30)
            smooth = [statistics.fmean(mean[max(0, i - window + 1) : i + 1]) for i in range(n)]
            ax.plot(steps, smooth, label=method)
    ax_r.set(xlabel="step", ylabel="training reward (mean over seeds)", title="Reward")
    ax_h.set(xlabel="step", ylabel="mean token entropy (nats)", title="Sampling entropy")
    ax_r.legend()
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=120)
    plt.close(fig)


def main(args: argparse.Namespace) -> int:
    from eapo.core.methods import get_method

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        for method in methods:
            get_method(method)
    except ValueError as err:
        raise SystemExit(f"eapo compare: {err}") from None
    if args.seeds < 1 or args.steps < 1:
        raise SystemExit("eapo compare: --seeds and --steps must be at least 1")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {}
    metrics: dict[str, list[list[dict[str, Any]]]] = {}
    for method in methods:
        for seed in range(args.seeds):
            run_dir = out / f"{method}-seed{seed}"
            if (run_dir / "eval.json").exists():
                print(f"[compare] {run_dir.name}: finished earlier, kept")
            else:
                print(f"[compare] {run_dir.name}: training", flush=True)
                _run_one(method, seed, args, run_dir)
            lines = _read_metrics(run_dir)
            results.setdefault(method, []).append(_summarise(run_dir, lines, args.eval_k))
            metrics.setdefault(method, []).append(lines)
    table = write_outputs(results, out, args)
    plot_curves(out, metrics)
    print(table)
    print(f"written: {out / 'compare.md'}, {out / 'compare.csv'}, {out / 'compare.png'}")
    return 0
