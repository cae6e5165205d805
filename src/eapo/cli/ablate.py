"""`eapo ablate`: the paper's quadrant ablations on one task and budget, over seeds.

Variants (section 4 of the method): each single quadrant (`--quadrants PHR`, ...: only that quadrant's
tokens get gradient, the others get advantage 0), the full update (all quadrants), and with `--without`
"EAPO without quadrant X" (`--method eapo --eapo_shaped_quadrants <all but X>`: X keeps the plain
advantage) next to full EAPO. The single-quadrant and full runs use `--base_method` (default grpo, so
quadrant effects are not mixed with shaping).

Each (variant, seed) run is an ordinary `eapo train` run folder `<output_dir>/<variant>-seed<seed>`,
trained in a subprocess (`--jobs` at a time, `--threads` torch threads each, its log in `train.log`);
a run whose `eval.json` exists is finished and is not redone, so an interrupted ablation resumes.
The table (`ablate.md`, `ablate.csv`: mean and 95% t-interval over seeds) gives the final held-out
avg@k and pass@j (j = 1, 4, 16, 64 up to k), the sampling entropy of the last 10 steps and the steps to
reach a target held-out accuracy (first periodic evaluation in `heldout.jsonl` with avg@k >= target);
`ablate.png` draws the held-out curves and the entropy per variant, mean over seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eapo.cli.compare import mean_ci95
from eapo.evaluation.heldout import HELDOUT_FILE, read_jsonl

QUADRANT_NAMES = ("PHR", "PLR", "NLR", "NHR")
PASS_KS = (1, 4, 16, 64)
ENTROPY_KEY = "entropy/sampling_mean"


@dataclass(frozen=True)
class Variant:
    """One ablation arm: a name (its run folders' prefix) and the `eapo train` flags that make it."""

    name: str
    flags: tuple[str, ...]


def ablation_variants(base_method: str = "grpo", without: bool = False) -> list[Variant]:
    """Single quadrants and the full update with `base_method`; with `without`, full EAPO and EAPO w/o X."""
    out = [Variant(f"{base_method}-{q}", ("--method", base_method, "--quadrants", q)) for q in QUADRANT_NAMES]
    out.append(Variant(f"{base_method}-full", ("--method", base_method)))
    if without:
        if base_method != "eapo":
            out.append(Variant("eapo-full", ("--method", "eapo")))
        for q in QUADRANT_NAMES:
            shaped = ",".join(x for x in QUADRANT_NAMES if x != q)
            out.append(Variant(f"eapo-wo-{q}", ("--method", "eapo", "--eapo_shaped_quadrants", shaped)))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base_method", default="grpo", help="method of the single-quadrant and full runs")
    parser.add_argument("--without", action="store_true", help="also run full EAPO and 'EAPO without X'")
    parser.add_argument("--variants", default="all", help="comma-separated subset of the variant names, or 'all'")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per variant")
    parser.add_argument("--steps", type=int, default=200, help="max_steps of every run")
    parser.add_argument("--target", type=float, default=0.35, help="held-out avg@k for 'steps to target'")
    parser.add_argument("--eval_k", type=int, default=64, help="samples per problem of the final evaluation")
    parser.add_argument("--eval_problems", type=int, default=200, help="held-out problems of the final evaluation")
    parser.add_argument("--heldout_eval_steps", type=int, default=25, help="periodic held-out evaluation period")
    parser.add_argument("--heldout_eval_problems", type=int, default=100, help="problems per periodic evaluation")
    parser.add_argument("--heldout_eval_k", type=int, default=8, help="samples per problem, periodic evaluation")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at the same time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (OMP_NUM_THREADS)")
    parser.add_argument("--output_dir", default="runs/ablate", help="one run folder per (variant, seed) in here")
    parser.add_argument("--table_only", action="store_true", help="only tabulate the finished run folders")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more `eapo train` flags")


def train_command(
    variant: Variant, seed: int, args: argparse.Namespace, run_dir: Path, eval_before: bool = True
) -> list[str]:
    """The `eapo train` command line of one run (`eval_before`: also evaluate the starting policy)."""
    extra = [f for f in args.train_flags if f != "--"]
    return [
        sys.executable, "-m", "eapo", "train", *variant.flags, "--seed", str(seed), "--max_steps", str(args.steps),
        "--output_dir", str(run_dir), "--save_strategy", "no", "--disable_tqdm", "true",
        "--eval_k", str(args.eval_k), "--eval_problems", str(args.eval_problems),
        "--heldout_eval_steps", str(args.heldout_eval_steps), "--heldout_eval_problems",
        str(args.heldout_eval_problems), "--heldout_eval_k", str(args.heldout_eval_k),
        "--eval_before", str(eval_before).lower(), *extra,
    ]  # fmt: skip


def _train_one(variant: Variant, seed: int, args: argparse.Namespace, run_dir: Path, eval_before: bool) -> str:
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.jsonl", HELDOUT_FILE):  # an interrupted run restarts from scratch
        (run_dir / stale).unlink(missing_ok=True)
    print(f"[ablate] {run_dir.name}: training", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    start = time.time()
    with (run_dir / "train.log").open("w") as log:
        proc = subprocess.run(
            train_command(variant, seed, args, run_dir, eval_before), stdout=log, stderr=subprocess.STDOUT, env=env
        )
    if proc.returncode != 0:
        return f"{run_dir.name}: FAILED (exit {proc.returncode}), see {run_dir / 'train.log'}"
    return f"{run_dir.name}: done in {time.time() - start:.0f} s"


def run_all(variants: list[Variant], args: argparse.Namespace, out: Path) -> list[str]:
    """Train every unfinished (variant, seed) run, `args.jobs` at a time; returns the failures."""
    todo = []
    for seed in range(args.seeds):  # seed-major: an early stop still leaves whole seeds of every variant
        for variant in variants:
            run_dir = out / f"{variant.name}-seed{seed}"
            if (run_dir / "eval.json").exists():
                print(f"[ablate] {run_dir.name}: finished earlier, kept", flush=True)
            else:
                todo.append((variant, seed, run_dir))
    failures = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # every variant of a seed starts from the same policy: only the first one evaluates it
        futures = [pool.submit(_train_one, v, s, args, d, v == variants[0]) for v, s, d in todo]
        for i, future in enumerate(as_completed(futures), 1):
            message = future.result()
            print(f"[ablate] {i}/{len(todo)} {message}", flush=True)
            if "FAILED" in message:
                failures.append(message)
    return failures


def steps_to_target(heldout: list[dict[str, Any]], target: float) -> int | None:
    """First evaluated step whose held-out avg@k reaches `target` (None: not reached)."""
    for line in sorted(heldout, key=lambda line: line["step"]):
        if line[f"avg@{line['k']}"] >= target:
            return int(line["step"])
    return None


def _final_k(result: dict[str, float]) -> int:
    return int(next(key for key in result if key.startswith("avg@"))[len("avg@") :])


def _columns(result: dict[str, float], lines: list[dict[str, Any]]) -> dict[str, float]:
    k = _final_k(result)
    out = {f"avg@{k}": result[f"avg@{k}"], **{f"pass@{j}": result[f"pass@{j}"] for j in PASS_KS if j <= k}}
    return out | {"entropy": statistics.fmean(line[ENTROPY_KEY] for line in lines)}


def summarise_run(run_dir: Path, target: float) -> dict[str, Any]:
    """One finished run folder -> the table's columns: final avg@k, pass@j (j in 1, 4, 16, 64 up to k),
    entropy of the last 10 steps, steps to target; and `_base` (the same columns before training, entropy
    of the first 10 steps; None when the run did not evaluate its start), `_seed`, `_config` (config.json)."""
    summary = json.loads((run_dir / "eval.json").read_text())
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    heldout = read_jsonl(run_dir / HELDOUT_FILE) if (run_dir / HELDOUT_FILE).exists() else []
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
    out = _columns(summary["after"], metrics[-10:]) | {"steps_to_target": steps_to_target(heldout, target)}
    before = summary.get("before")
    out["_base"] = _columns(before, metrics[:10]) | {"steps_to_target": None} if before else None
    return out | {"_seed": int(run_dir.name.rsplit("-seed", 1)[1]), "_config": config}


def aggregate(runs: list[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    """Mean and 95% half-width over seeds of each key; steps to target over the seeds that reached it."""
    row: dict[str, Any] = {"seeds": len(runs)}
    for key in keys:
        row[key], row[f"{key}_ci95"] = mean_ci95([r[key] for r in runs])
    reached = [r["steps_to_target"] for r in runs if r["steps_to_target"] is not None]
    row["steps_to_target"], row["steps_to_target_ci95"] = mean_ci95(reached) if reached else (None, None)
    row["reached"] = len(reached)
    return row


def _steps_cell(row: dict[str, Any]) -> str:
    if row["steps_to_target"] is None:
        return f"not reached (0/{row['seeds']})"
    interval = f" ± {row['steps_to_target_ci95']:.0f}" if row["reached"] > 1 else ""  # none from one seed
    return f"{row['steps_to_target']:.0f}{interval} ({row['reached']}/{row['seeds']})"


def table_rows(results: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per variant, and first a `base` row (the policy before training: one run per seed that
    evaluated its start; every variant of a seed starts from the same policy); the value keys."""
    first = next(iter(results.values()))
    keys = [key for key in first[0] if not key.startswith("_") and key != "steps_to_target"]
    base: dict[int, dict[str, Any]] = {}
    for runs in results.values():
        for r in runs:
            if r["_base"] is not None:
                base.setdefault(r["_seed"], r["_base"])
    rows = [{"variant": "base (before RL)", **aggregate(list(base.values()), keys)}] if base else []
    rows += [{"variant": name, **aggregate(runs, keys)} for name, runs in results.items()]
    return rows, keys


SETTINGS = ("max_steps", "eval_problems", "eval_k", "heldout_eval_steps", "heldout_eval_problems", "heldout_eval_k")


def _run_settings(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    """The budget and evaluation settings the runs used (their config.json; the flags when it is absent)."""
    flags = {**vars(args), "max_steps": args.steps}
    used = next((r["_config"] for runs in results.values() for r in runs if r["_config"]), {})
    return {key: used.get(key, flags[key]) for key in SETTINGS}


def _table_note(s: dict[str, Any], target: float) -> str:
    return (
        f"Held-out countdown, final evaluation: {s['eval_problems']} problems x {s['eval_k']} samples, "
        f"temperature 1, pass@j unbiased; {s['max_steps']} steps per run; mean ± half-width of the 95% "
        "t-interval over seeds; entropy: mean sampling entropy of the last 10 steps (base: the first 10); steps "
        f"to target: first periodic held-out evaluation (every {s['heldout_eval_steps']} steps, "
        f"{s['heldout_eval_problems']} problems x {s['heldout_eval_k']} samples) with avg@{s['heldout_eval_k']} "
        f">= {target}, mean over the seeds that reached it (reached/seeds).\n"
    )


def write_tables(results: dict[str, list[dict[str, Any]]], out: Path, args: argparse.Namespace) -> str:
    """ablate.csv and ablate.md; returns the markdown table."""
    rows, keys = table_rows(results)
    with (out / "ablate.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| variant | seeds | " + " | ".join(keys) + f" | steps to avg@k >= {args.target} |"]
    lines.append("|" + "---|" * (len(keys) + 3))
    for row in rows:
        cells = [f"{row[k]:.3f} ± {row[f'{k}_ci95']:.3f}" for k in keys]
        steps = "-" if row["variant"].startswith("base") else _steps_cell(row)
        lines.append(f"| {row['variant']} | {row['seeds']} | " + " | ".join(cells) + f" | {steps} |")
    table = "\n".join(lines)
    note = _table_note(_run_settings(results, args), args.target)
    (out / "ablate.md").write_text(f"# eapo ablate\n\n{note}\n{table}\n")
    return table


def mean_curve(curves: list[dict[int, float]]) -> tuple[list[int], list[float]]:
    """Steps present in every seed's curve and the mean value over seeds at each."""
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return steps, [statistics.fmean(c[s] for c in curves) for s in steps]


def seed_curves(dirs: list[Path], file: str, key: str) -> list[dict[int, float]]:
    """Per seed, {step: value of `key`} from the JSON-lines `file` of each run folder that has it."""
    return [{line["step"]: line[key] for line in read_jsonl(d / file)} for d in dirs if (d / file).exists()]


def heldout_k(run_dirs: dict[str, list[Path]], default: int) -> int:
    """The `k` of the periodic held-out evaluations in these run folders (`default` when there are none)."""
    for dirs in run_dirs.values():
        for d in dirs:
            lines = read_jsonl(d / HELDOUT_FILE) if (d / HELDOUT_FILE).exists() else []
            if lines:
                return int(lines[0]["k"])
    return default


def plot_curves(out: Path, run_dirs: dict[str, list[Path]], k: int) -> None:
    """ablate.png: held-out avg@k and pass@k over steps (periodic evaluations, k samples per problem) and
    the sampling entropy (lightly smoothed), mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for name, dirs in run_dirs.items():
        for ax, key in zip(axes[:2], (f"avg@{k}", f"pass@{k}"), strict=True):
            ax.plot(*mean_curve(seed_curves(dirs, HELDOUT_FILE, key)), marker=".", label=name)
        steps, entropy = mean_curve(seed_curves(dirs, "metrics.jsonl", ENTROPY_KEY))
        window = max(1, len(steps) // 30)
        smooth = [statistics.fmean(entropy[max(0, i - window + 1) : i + 1]) for i in range(len(entropy))]
        axes[2].plot(steps, smooth, label=name)
    axes[0].set(xlabel="step", ylabel=f"held-out avg@{k} (mean over seeds)", title="Held-out accuracy")
    axes[1].set(xlabel="step", ylabel=f"held-out pass@{k} (mean over seeds)", title="Held-out pass@k")
    axes[2].set(xlabel="step", ylabel="mean token entropy (nats)", title="Sampling entropy")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ablate.png", dpi=120)
    plt.close(fig)


def select_variants(variants: list[Variant], spec: str) -> list[Variant]:
    """The variants named in `spec` (comma-separated, 'all' for every one), in their usual order."""
    if spec.strip().lower() == "all":
        return variants
    names = {v.name: v for v in variants}
    wanted = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in names]
    if unknown or not wanted:
        bad = ",".join(unknown) or repr(spec)
        raise SystemExit(f"eapo ablate: unknown --variants {bad}: choose from {', '.join(names)} (or 'all')")
    return [v for v in variants if v.name in wanted]


def _check_args(args: argparse.Namespace) -> None:
    from eapo.core.methods import get_method

    try:
        get_method(args.base_method)
    except ValueError as err:
        raise SystemExit(f"eapo ablate: --base_method: {err}") from None
    if min(args.seeds, args.steps, args.jobs, args.threads, args.eval_k, args.eval_problems) < 1:
        raise SystemExit("eapo ablate: --seeds, --steps, --jobs, --threads, --eval_k and --eval_problems must be >= 1")
    if args.heldout_eval_steps < 1:
        raise SystemExit("eapo ablate: --heldout_eval_steps must be >= 1 (steps to target need the held-out curve)")


def main(args: argparse.Namespace) -> int:
    _check_args(args)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    variants = select_variants(ablation_variants(args.base_method, args.without), args.variants)
    failures = [] if args.table_only else run_all(variants, args, out)
    run_dirs: dict[str, list[Path]] = {}
    for variant in variants:
        dirs = [out / f"{variant.name}-seed{s}" for s in range(args.seeds)]
        finished = [d for d in dirs if (d / "eval.json").exists()]
        if finished:
            run_dirs[variant.name] = finished
    if not run_dirs:
        raise SystemExit(f"eapo ablate: no finished run in {out}: run it without --table_only first")
    results = {name: [summarise_run(d, args.target) for d in dirs] for name, dirs in run_dirs.items()}
    table = write_tables(results, out, args)
    plot_curves(out, run_dirs, heldout_k(run_dirs, args.heldout_eval_k))
    print(table)
    print(f"written: {out / 'ablate.md'}, {out / 'ablate.csv'}, {out / 'ablate.png'}")
    if failures:
        raise SystemExit("eapo ablate: some runs failed:\n" + "\n".join(failures))
    return 0
