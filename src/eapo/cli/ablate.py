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
reach a target held-out accuracy (first periodic evaluation in `heldout.jsonl` with avg@k >= target),
and for every variant its paired difference to a baseline variant (`--baseline`, default the full update
`<base_method>-full`) seed by seed: paired t-interval, seeds needed and the evaluation's own standard error
of avg@k (`eapo.evaluation.stats`); every variant of a seed starts from the same policy, prompt order and problems.
`ablate.png` draws the held-out curves and the entropy per variant, mean over seeds; `ablate-paired.png` the
paired differences to the baseline with their 95% intervals.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eapo.cli.compare import write_csv
from eapo.cli.options import check_counts
from eapo.cli.runs import check_seeds, read_finished_run
from eapo.cli.validate import ValidationError
from eapo.evaluation.metrics import answer_columns
from eapo.evaluation.stats import (
    comparison_row,
    evaluation_se,
    format_interval,
    format_value,
    paired_markdown,
    paired_note,
)
from eapo.io import read_jsonl
from eapo.pipeline.checks import check_output_folder
from eapo.trainer.checkpoint import HELDOUT_FILE, METRICS_FILE

PASS_KS = (1, 4, 16, 64)
ENTROPY_KEY = "entropy/sampling_mean"


@dataclass(frozen=True)
class Variant:
    """One ablation arm: a name (its run folders' prefix) and the `eapo train` flags that make it."""

    name: str
    flags: tuple[str, ...]


def ablation_variants(base_method: str = "grpo", without: bool = False) -> list[Variant]:
    """Single quadrants and the full update with `base_method`; with `without`, full EAPO and EAPO w/o X."""
    from eapo.core.quadrants import QUADRANTS  # the quadrant names, from the core (imported here: it loads torch)

    names = [q.name for q in QUADRANTS]
    out = [Variant(f"{base_method}-{q}", ("--method", base_method, "--quadrants", q)) for q in names]
    out.append(Variant(f"{base_method}-full", ("--method", base_method)))
    if without:
        if base_method != "eapo":
            out.append(Variant("eapo-full", ("--method", "eapo")))
        for q in names:
            shaped = ",".join(x for x in names if x != q)
            out.append(Variant(f"eapo-wo-{q}", ("--method", "eapo", "--eapo_shaped_quadrants", shaped)))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base_method", default="grpo", help="method of the single-quadrant and full runs")
    parser.add_argument("--without", action="store_true", help="also run full EAPO and 'EAPO without X'")
    parser.add_argument(
        "--baseline", default=None, help="variant every other is paired with (default: <base_method>-full)"
    )
    parser.add_argument("--variants", default="all", help="comma-separated subset of the variant names, or 'all'")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per variant")
    parser.add_argument("--max_steps", "--steps", dest="steps", type=int, default=200, help="max_steps of every run")
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


def train_flags(variant: Variant, seed: int, args: argparse.Namespace, eval_before: bool = True) -> list[str]:
    """The `eapo train` flags of one run, its output_dir apart (`eval_before`: also evaluate the starting policy)."""
    extra = [f for f in args.train_flags if f != "--"]
    return [
        *variant.flags, "--seed", str(seed), "--max_steps", str(args.steps),
        "--save_strategy", "no", "--disable_tqdm", "true",
        "--eval_k", str(args.eval_k), "--eval_problems", str(args.eval_problems),
        "--heldout_eval_steps", str(args.heldout_eval_steps), "--heldout_eval_problems",
        str(args.heldout_eval_problems), "--heldout_eval_k", str(args.heldout_eval_k),
        "--eval_before", str(eval_before).lower(), *extra,
    ]  # fmt: skip


def train_command(
    variant: Variant, seed: int, args: argparse.Namespace, run_dir: Path, eval_before: bool = True
) -> list[str]:
    """The `eapo train` command line of one fresh run (an unfinished one in `run_dir` is replaced)."""
    flags = train_flags(variant, seed, args, eval_before)
    fresh = ["--output_dir", str(run_dir), "--overwrite_output_dir", "true"]
    return [sys.executable, "-m", "eapo", "train", *flags, *fresh]


def _train_one(
    variant: Variant, seed: int, args: argparse.Namespace, run_dir: Path, eval_before: bool, state: str = "new"
) -> str:
    from eapo.trainer.checkpoint import last_checkpoint

    run_dir.mkdir(parents=True, exist_ok=True)
    resume = state == "unfinished" and last_checkpoint(run_dir) is not None
    cmd = [sys.executable, "-m", "eapo", "train", "--resume", str(run_dir)] if resume else None
    print(f"[ablate] {run_dir.name}: {'resuming' if resume else 'training'}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    start = time.time()
    # a fresh start empties the run folder (its log waits beside it); a resumed session adds to the run's log
    log_path = run_dir / "train.log" if resume else run_dir.parent / f".{run_dir.name}.train.log"
    with log_path.open("a" if resume else "w") as log:
        cmd = cmd or train_command(variant, seed, args, run_dir, eval_before)
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if run_dir.is_dir() and not resume:
        os.replace(log_path, run_dir / "train.log")
        log_path = run_dir / "train.log"
    if proc.returncode == 130:
        return f"{run_dir.name}: INTERRUPTED (Ctrl-C), see {log_path}"
    if proc.returncode != 0:
        return f"{run_dir.name}: FAILED (exit {proc.returncode}), see {log_path}"
    return f"{run_dir.name}: done in {time.time() - start:.0f} s"


def run_states(variants: list[Variant], args: argparse.Namespace, out: Path) -> dict[tuple[str, int], str]:
    """The state of every (variant, seed) run folder (see `eapo.cli.runs.run_state`), all checked before any
    training: a folder holding a run with other options stops the ablation here, with one line."""
    from eapo.cli.runs import run_state

    return {
        (v.name, seed): run_state(out / f"{v.name}-seed{seed}", train_flags(v, seed, args, v == variants[0]))
        for seed in range(args.seeds)
        for v in variants
    }


def run_all(
    variants: list[Variant],
    args: argparse.Namespace,
    out: Path,
    on_done: Callable[[str], None] | None = None,
    states: dict[tuple[str, int], str] | None = None,
) -> list[str]:
    """Train every unfinished (variant, seed) run, seed by seed, `args.jobs` at a time (a job starts as soon as
    one ends, whatever its seed); returns the failures. `on_done(message)` is called after each run ends;
    `states`: the `run_states` already found (else found here)."""
    states = run_states(variants, args, out) if states is None else states
    todo = []
    for seed in range(args.seeds):  # seed-major: an early stop still leaves whole seeds of every variant
        for variant in variants:
            run_dir = out / f"{variant.name}-seed{seed}"
            state = states[(variant.name, seed)]
            if state == "finished":
                print(f"[ablate] {run_dir.name}: finished earlier with the same options, kept", flush=True)
            else:
                todo.append((variant, seed, run_dir, state))
    failures = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # every variant of a seed starts from the same policy: only the first one evaluates it
        futures = [pool.submit(_train_one, v, s, args, d, v == variants[0], st) for v, s, d, st in todo]
        for i, future in enumerate(as_completed(futures), 1):
            message = future.result()
            print(f"[ablate] {i}/{len(todo)} {message}", flush=True)
            if on_done is not None:
                on_done(message)
            if "INTERRUPTED" in message:
                raise KeyboardInterrupt
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
    out |= answer_columns(result)  # a task that reads answers: format rate and accuracy among well-formatted
    return out | {"entropy": statistics.fmean(line[ENTROPY_KEY] for line in lines)}


def summarise_run(run_dir: Path, target: float) -> dict[str, Any]:
    """One finished run folder -> the table's columns: final avg@k, pass@j (j in 1, 4, 16, 64 up to k),
    entropy of the last 10 steps, steps to target, `eval_se` (evaluation SE of avg@k) and `_se_kind`; and
    `_base` (the same columns before training, entropy of the first 10 steps; None when the run did not
    evaluate its start), `_seed`, `_config` (config.json). Its files are read by
    `eapo.cli.runs.read_finished_run`: a damaged one is one line naming it (exit code 2)."""
    run = read_finished_run(run_dir, passes=lambda k: [j for j in PASS_KS if j <= k], before=True, heldout=True)
    summary, metrics, heldout, config = run.summary, run.metrics, run.heldout, run.config
    out = _columns(summary["after"], metrics[-10:]) | {"steps_to_target": steps_to_target(heldout, target)}
    k, problems = _final_k(summary["after"]), config.get("eval_problems")
    out["eval_se"], out["_se_kind"] = evaluation_se(summary["after"], k, problems)
    before = summary.get("before")
    out["_base"] = None
    if before:
        out["_base"] = _columns(before, metrics[:10]) | {"steps_to_target": None}
        out["_base"]["eval_se"], out["_base"]["_se_kind"] = evaluation_se(before, k, problems)
    return out | {"_seed": int(run_dir.name.rsplit("-seed", 1)[1]), "_config": config}


def aggregate(
    runs: dict[int, dict[str, Any]], keys: list[str], baseline: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Mean and 95% half-width over seeds of each key (steps to target over the seeds that reached it), the
    evaluation SE of avg@k and, with `baseline` (its runs by seed), the paired differences (`eapo.evaluation.stats`)."""
    avg = next(key for key in keys if key.startswith("avg@"))
    row = comparison_row(runs, baseline, [*keys, "steps_to_target"], eval_key=avg)
    return row | {"reached": sum(r["steps_to_target"] is not None for r in runs.values())}


def _steps_cell(row: dict[str, Any]) -> str:
    if row["steps_to_target"] is None:
        return f"not reached (0/{row['seeds']})"
    interval = f" ± {row['steps_to_target_ci95']:.0f}" if row["reached"] > 1 else ""  # none from one seed
    return f"{row['steps_to_target']:.0f}{interval} ({row['reached']}/{row['seeds']})"


def table_rows(
    results: dict[str, list[dict[str, Any]]], baseline: str | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per variant, paired with the `baseline` variant seed by seed (when it has runs), and first a
    `base` row (the policy before training: one run per seed that evaluated its start; every variant of a
    seed starts from the same policy; not paired); the value keys."""
    first = next(iter(results.values()))
    keys = [key for key in first[0] if not key.startswith("_") and key not in ("steps_to_target", "eval_se")]
    by_seed = {name: {r["_seed"]: r for r in runs} for name, runs in results.items()}
    base: dict[int, dict[str, Any]] = {}
    for runs in results.values():
        for r in runs:
            if r["_base"] is not None:
                base.setdefault(r["_seed"], r["_base"])
    rows = [{"variant": "base (before RL)", **aggregate(base, keys)}] if base else []
    reference = by_seed.get(baseline) if baseline else None
    for name, runs in by_seed.items():
        rows.append({"variant": name, **aggregate(runs, keys, reference if name != baseline else None)})
    return rows, keys


SETTINGS = ("max_steps", "eval_problems", "eval_k", "heldout_eval_steps", "heldout_eval_problems", "heldout_eval_k")


def _run_settings(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    """The budget and evaluation settings the runs used (their config.json; the flags when it is absent)."""
    flags = {**vars(args), "max_steps": args.steps}
    used = next((r["_config"] for runs in results.values() for r in runs if r["_config"]), {})
    return {key: used.get(key, flags[key]) for key in SETTINGS} | {"task": used.get("task") or "countdown"}


def _table_note(s: dict[str, Any], target: float) -> str:
    return (
        f"Held-out {s['task']}, final evaluation: {s['eval_problems']} problems x {s['eval_k']} samples, "
        f"temperature 1, pass@j unbiased; {s['max_steps']} steps per run; mean ± half-width of the 95% "
        "t-interval over seeds; entropy: mean sampling entropy of the last 10 steps (base: the first 10); steps "
        f"to target: first periodic held-out evaluation (every {s['heldout_eval_steps']} steps, "
        f"{s['heldout_eval_problems']} problems x {s['heldout_eval_k']} samples) with avg@{s['heldout_eval_k']} "
        f">= {target}, mean over the seeds that reached it (reached/seeds); eval SE: the standard error of one "
        "run's final avg@k from sampling k completions per problem (root mean square over seeds).\n"
    )


def table_baseline(args: argparse.Namespace) -> str:
    """The variant the paired differences are taken against: `--baseline`, else the full base method."""
    return args.baseline or f"{args.base_method}-full"


def write_tables(results: dict[str, list[dict[str, Any]]], out: Path, args: argparse.Namespace) -> str:
    """ablate.csv and ablate.md; returns the markdown table."""
    baseline = table_baseline(args)
    rows, keys = table_rows(results, baseline)
    avg = next(key for key in keys if key.startswith("avg@"))
    write_csv(out / "ablate.csv", [row | {"baseline": baseline, "paired_test": "paired t"} for row in rows])
    lines = ["| variant | seeds | " + " | ".join(keys) + f" | steps to avg@k >= {args.target} | eval SE of {avg} |"]
    lines.append("|" + "---|" * (len(keys) + 4))
    for row in rows:
        cells = [format_interval(row[k], row[f"{k}_ci95"]) for k in keys]
        steps = "-" if row["variant"].startswith("base") else _steps_cell(row)
        eval_se = format_value(row[f"{avg}_eval_se"])
        lines.append(f"| {row['variant']} | {row['seeds']} | " + " | ".join(cells) + f" | {steps} | {eval_se} |")
    table = "\n".join(lines)
    note = _table_note(_run_settings(results, args), args.target)
    if baseline in results:
        paired = paired_markdown(rows, "variant", [*keys, "steps_to_target"], baseline, avg, {"steps_to_target": 1})
        section = f"## Paired differences to {baseline}\n\n{paired_note(baseline)}\n{paired}\n"
    else:
        paired, section = "", f"No paired differences: the baseline {baseline} has no finished run.\n"
    (out / "ablate.md").write_text(f"# eapo ablate\n\n{note}\n{table}\n\n{section}")
    return f"{table}\n\n{paired}"


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
    from eapo.analysis.curves import Panel, mean_curve, plot_panels, seed_curves

    def curves(file: str, key: str) -> dict[str, tuple[list[int], list[float]]]:
        return {name: mean_curve(seed_curves(dirs, file, key)) for name, dirs in run_dirs.items()}

    avg, pas = curves(HELDOUT_FILE, f"avg@{k}"), curves(HELDOUT_FILE, f"pass@{k}")
    plot_panels(out / "ablate.png", [
        Panel("Held-out accuracy", f"held-out avg@{k} (mean over seeds)", avg, markers=True),
        Panel("Held-out pass@k", f"held-out pass@{k} (mean over seeds)", pas, markers=True),
        Panel("Sampling entropy", "mean token entropy (nats)", curves(METRICS_FILE, ENTROPY_KEY), smooth=True),
    ])  # fmt: skip


def plot_paired_differences(path: Path, results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> bool:
    """The paired differences to the baseline as a figure (`eapo.analysis.paired`): avg@k, pass@j for j > 1 and
    entropy; False (nothing written) when no variant is paired with the baseline."""
    from eapo.analysis.paired import plot_paired

    rows, keys = table_rows(results, table_baseline(args))
    shown = [key for key in keys if key not in ("pass@1", "steps_to_target")]
    return plot_paired(path, rows, "variant", shown, table_baseline(args)) is not None


def select_variants(variants: list[Variant], spec: str) -> list[Variant]:
    """The variants named in `spec` (comma-separated, 'all' for every one), in their usual order."""
    if spec.strip().lower() == "all":
        return variants
    names = {v.name: v for v in variants}
    wanted = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in names]
    if unknown or not wanted:
        bad = ",".join(unknown) or repr(spec)
        raise ValidationError(f"unknown --variants {bad}: choose from {', '.join(names)} (or 'all')")
    return [v for v in variants if v.name in wanted]


def _check_args(args: argparse.Namespace) -> None:
    from eapo.core.methods import get_method

    try:
        get_method(args.base_method)
    except ValueError as err:
        raise ValidationError(f"--base_method: {err}") from None
    if min(args.seeds, args.steps, args.jobs, args.threads, args.eval_k, args.eval_problems) < 1:
        raise ValidationError("--seeds, --max_steps, --jobs, --threads, --eval_k and --eval_problems must be >= 1")
    check_seeds(args.seeds)
    if args.heldout_eval_steps < 1:
        raise ValidationError("--heldout_eval_steps must be >= 1 (steps to target need the held-out curve)")
    check_counts(args, {"heldout_eval_problems": 1, "heldout_eval_k": 1})  # the periodic evaluation, always on
    if not (math.isfinite(args.target) and 0 <= args.target <= 1):
        raise ValidationError(f"--target {args.target}: give a held-out accuracy from 0 to 1 (e.g. 0.35)")


def _check_baseline(args: argparse.Namespace, variants: list[Variant]) -> None:
    names = [v.name for v in variants]
    if args.baseline is not None and args.baseline not in names:
        listed = ", ".join(names)
        raise ValidationError(f"--baseline {args.baseline} is not one of the variants {listed}: pass one of them")


def _check_table_only_flags(variants: list[Variant], args: argparse.Namespace, out: Path) -> None:
    """The `eapo train` flags after `--` with --table_only: nothing is trained, but they are checked as a training
    session checks them (each variant's flags parsed by `eapo train`), not dropped without a word."""
    from eapo.cli.runs import check_train_flags

    if [f for f in args.train_flags if f != "--"]:
        for variant in variants:
            check_train_flags(out / f"{variant.name}-seed0", train_flags(variant, 0, args, variant == variants[0]))


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    out = check_output_folder(args.output_dir, "output_dir")
    variants = select_variants(ablation_variants(args.base_method, args.without), args.variants)
    _check_baseline(args, variants)
    from eapo.cli.runs import check_extra_flags

    owned: dict[str, Any] = {
        "max_steps": args.steps, "eval_k": args.eval_k, "eval_problems": args.eval_problems,
        "heldout_eval_steps": args.heldout_eval_steps, "heldout_eval_problems": args.heldout_eval_problems,
        "heldout_eval_k": args.heldout_eval_k, "seed": None, "output_dir": None, "eval_before": None,
    }  # fmt: skip
    for variant in variants:  # what the variants set differs by run (the method and its options)
        owned.update({f[2:]: None for f in variant.flags if f.startswith("--")})
    check_extra_flags("ablate", args.train_flags, owned)
    failures: list[str] = []
    if args.table_only:
        _check_table_only_flags(variants, args, out)
    else:
        # all checked before any training (every run's flags, the options of the folders there, the finished
        # runs' files); nothing is made before: each run makes its folder (and --output_dir) as it starts
        states = run_states(variants, args, out)
        for (name, seed), state in states.items():
            if state == "finished":
                summarise_run(out / f"{name}-seed{seed}", args.target)
        failures = run_all(variants, args, out, states=states)
    run_dirs: dict[str, list[Path]] = {}
    for variant in variants:
        dirs = [out / f"{variant.name}-seed{s}" for s in range(args.seeds)]
        finished = [d for d in dirs if (d / "eval.json").exists()]
        if finished:
            run_dirs[variant.name] = finished
    if not run_dirs:
        raise ValidationError(f"no finished run in {out}: run it without --table_only first")
    results = {name: [summarise_run(d, args.target) for d in dirs] for name, dirs in run_dirs.items()}
    out.mkdir(parents=True, exist_ok=True)
    table = write_tables(results, out, args)
    written = [out / "ablate.md", out / "ablate.csv"]
    if importlib.util.find_spec("matplotlib") is None:
        print("ablate.png skipped: matplotlib is not installed (pip install matplotlib)")
    else:
        plot_curves(out, run_dirs, heldout_k(run_dirs, args.heldout_eval_k))
        written.append(out / "ablate.png")
        if plot_paired_differences(out / "ablate-paired.png", results, args):
            written.append(out / "ablate-paired.png")
    print(table)
    print("written: " + ", ".join(str(p) for p in written))
    if failures:
        print("some runs failed:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    return 0
