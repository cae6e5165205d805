"""`eapo compare`: every method on the same task, budget and seeds; a table with 95% intervals and the
paired difference of every method to a baseline (`--baseline`, default grpo).

Each (method, seed) run is an ordinary `eapo train` run folder under `--output_dir`. A finished run (its
`eval.json` exists) trained with exactly the requested options (method, seed, steps and every flag after
`--`) is kept, so an interrupted comparison resumes where it stopped; an unfinished one with those options is
trained again; a folder holding a run with other options is refused with one line (`eapo.cli.runs`).
Runs with the same seed share the starting policy, the prompt order and the evaluation problems, so each
method is paired with the baseline seed by seed (`eapo.evaluation.stats`: paired t over seeds, seeds needed,
and the evaluation's own standard error of avg@k). `compare.png` draws reward and entropy over steps,
`compare-paired.png` the paired differences to the baseline with their 95% intervals.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import statistics
from pathlib import Path
from typing import Any

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
from eapo.pipeline.checks import check_output_folder
from eapo.trainer.checkpoint import METRICS_FILE

DEFAULT_METHODS = "grpo,dapo,forking,entroadv,kl_cov,eapo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="comma-separated method names")
    parser.add_argument("--baseline", default="grpo", help="the method every other is paired with (one of --methods)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per method")
    parser.add_argument("--max_steps", "--steps", dest="steps", type=int, default=600, help="max_steps of every run")
    parser.add_argument("--output_dir", default="runs/compare", help="one run folder per (method, seed) in here")
    parser.add_argument("--eval_k", type=int, default=8, help="samples per held-out problem")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more `eapo train` flags")


def train_flags(method: str, seed: int, args: argparse.Namespace) -> list[str]:
    """The `eapo train` flags of one (method, seed) run (its output_dir apart)."""
    extra = [f for f in args.train_flags if f != "--"]
    flags = ["--method", method, "--seed", str(seed), "--max_steps", str(args.steps)]
    return [*flags, "--eval_k", str(args.eval_k), "--save_strategy", "no", *extra]


def _run_one(method: str, seed: int, args: argparse.Namespace, run_dir: Path, state: str) -> None:
    from eapo.cli.runs import train_or_resume

    if state == "finished":
        print(f"[compare] {run_dir.name}: finished earlier with the same options, kept")
        return
    print(f"[compare] {run_dir.name}: training", flush=True)
    train_or_resume(run_dir, train_flags(method, seed, args), state)


def _summarise(run_dir: Path, k: int) -> dict[str, Any]:
    """One finished run: the table's metrics, and `eval_se` (evaluation SE of its avg@k, `eapo.evaluation.stats`),
    `_se_kind` (how that SE was obtained) and `_problems` (digest of the problems it was evaluated on). Its files are
    read by `eapo.cli.runs.read_finished_run`: a damaged one is one line naming it (exit code 2)."""
    run = read_finished_run(run_dir, k=k, summary_keys=("train_seconds", "steps"))
    summary, config, lines = run.summary, run.config, run.metrics
    after = summary["after"]
    tail = lines[-10:]
    eval_se, kind = evaluation_se(after, k, config.get("eval_problems"))
    return {
        f"avg@{k}": after[f"avg@{k}"],
        f"pass@{k}": after[f"pass@{k}"],
        **answer_columns(after),
        "entropy": statistics.fmean(line["entropy/sampling_mean"] for line in tail),
        "seconds_per_step": summary["train_seconds"] / max(summary["steps"], 1),
        "eval_se": eval_se,
        "_se_kind": kind,
        "_problems": after.get("problems_sha256"),
        "_task": config.get("task") or "countdown",
    }


def unpaired_seeds(results: dict[str, dict[int, dict[str, Any]]]) -> list[int]:
    """Seeds whose runs were evaluated on different problems (by their recorded digests): not comparable."""
    digests: dict[int, set[str]] = {}
    for runs in results.values():
        for seed, run in runs.items():
            if run.get("_problems") is not None:
                digests.setdefault(seed, set()).add(run["_problems"])
    return sorted(seed for seed, found in digests.items() if len(found) > 1)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows with possibly different columns (the baseline has no paired ones): their union, in order of first
    appearance; a missing or None value is an empty cell."""
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def task_names(results: dict[str, dict[int, dict[str, Any]]]) -> str:
    """The task(s) the runs were trained and evaluated on (their config.json), for the table's note."""
    return ", ".join(sorted({run.get("_task", "countdown") for runs in results.values() for run in runs.values()}))


def evaluation_notes(results: dict[str, dict[int, dict[str, Any]]]) -> str:
    """How the evaluation SEs were obtained, and a warning for seeds that do not pair."""
    notes = ""
    kinds = {run["_se_kind"] for runs in results.values() for run in runs.values()}
    if "binomial bound" in kinds:
        notes += (
            "Some runs recorded no per-problem counts (written by an older eapo): their eval SE is the "
            "upper bound sqrt(p (1 - p) / (N k)).\n"
        )
    bad = unpaired_seeds(results)
    if bad:
        notes += f"WARNING: seeds {bad} were evaluated on different problems by different methods: not paired.\n"
    return notes


def comparison_rows(
    results: dict[str, dict[int, dict[str, Any]]], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per method (`comparison_row`, paired with `--baseline` seed by seed) and the value keys."""
    first = next(iter(next(iter(results.values())).values()))
    keys = [key for key in first if not key.startswith("_") and key != "eval_se"]
    rows = []
    for method, runs in results.items():
        paired_with = results[args.baseline] if method != args.baseline and args.baseline in results else None
        row = {"method": method, **comparison_row(runs, paired_with, keys, eval_key=f"avg@{args.eval_k}")}
        rows.append(row | {"baseline": args.baseline, "paired_test": "paired t"})
    return rows, keys


def write_outputs(results: dict[str, dict[int, dict[str, Any]]], out: Path, args: argparse.Namespace) -> str:
    """compare.csv and compare.md (`results[method][seed]`: `_summarise` of each run); returns the markdown."""
    rows, keys = comparison_rows(results, args)
    avg = f"avg@{args.eval_k}"
    write_csv(out / "compare.csv", rows)
    lines = ["| method | seeds | " + " | ".join(keys) + f" | eval SE of {avg} |", "|" + "---|" * (len(keys) + 3)]
    for row in rows:
        cells = [format_interval(row[k], row[f"{k}_ci95"]) for k in keys] + [format_value(row[f"{avg}_eval_se"])]
        lines.append(f"| {row['method']} | {row['seeds']} | " + " | ".join(cells) + " |")
    paired = paired_markdown(rows, "method", keys, args.baseline, avg)
    table = "\n".join(lines) + "\n\n" + paired
    note = (
        f"Held-out {task_names(results)}, {args.eval_k} samples per problem, temperature 1; {args.steps} steps "
        "per run; "
        "mean ± half-width of the 95% t-interval over seeds; entropy: mean sampling entropy of the last 10 "
        "steps; format_rate: share of completions with an answer that could be read, accuracy_formatted: "
        f"accuracy among them (avg@{args.eval_k} is the accuracy over all; for a task that reads answers); "
        "seconds_per_step: training wall time / steps; eval SE: the standard error of one run's "
        f"avg@{args.eval_k} from sampling k completions per problem (root mean square over seeds).\n"
    )
    (out / "compare.md").write_text(
        f"# eapo compare\n\n{note}{evaluation_notes(results)}\n" + "\n".join(lines) + "\n\n"
        f"## Paired differences to {args.baseline}\n\n{paired_note(args.baseline)}\n{paired}\n"
    )
    return table


def plot_curves(out: Path, run_dirs: dict[str, list[Path]]) -> None:
    """compare.png: training reward and sampling entropy per step, mean over seeds, lightly smoothed."""
    from eapo.analysis.curves import Panel, mean_curve, plot_panels, seed_curves

    def curves(key: str) -> dict[str, tuple[list[int], list[float]]]:
        return {m: mean_curve(seed_curves(dirs, METRICS_FILE, key)) for m, dirs in run_dirs.items()}

    plot_panels(out / "compare.png", [
        Panel("Reward", "training reward (mean over seeds)", curves("reward"), smooth=True),
        Panel("Sampling entropy", "mean token entropy (nats)", curves("entropy/sampling_mean"), smooth=True),
    ])  # fmt: skip


def _check_args(args: argparse.Namespace) -> list[str]:
    """The methods to compare; bad flags are one-line errors (exit code 2)."""
    from eapo.core.methods import get_method

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        for method in methods:
            get_method(method)
    except ValueError as err:
        raise ValidationError(str(err)) from None
    check_counts(args, {"seeds": 1, "steps": 1, "eval_k": 1})
    check_seeds(args.seeds)
    if args.baseline not in methods:
        raise ValidationError(
            f"--baseline {args.baseline} is not one of --methods {','.join(methods)}: "
            "add it to --methods or pass one of them"
        )
    return methods


def run(args: argparse.Namespace) -> int:
    methods = _check_args(args)
    out = check_output_folder(args.output_dir, "output_dir")
    from eapo.cli.runs import check_extra_flags, run_state

    owned = {"max_steps": args.steps, "eval_k": args.eval_k, "method": None, "seed": None, "output_dir": None}
    check_extra_flags("compare", args.train_flags, owned)

    results: dict[str, dict[int, dict[str, Any]]] = {}

    runs = [(m, seed, out / f"{m}-seed{seed}") for m in methods for seed in range(args.seeds)]
    # all checked before any training (every run's flags, the options of the folders there, the finished runs'
    # files); nothing is made before: `eapo train` makes each run folder (and --output_dir) as it starts
    states = [run_state(run_dir, train_flags(m, seed, args)) for m, seed, run_dir in runs]
    for (_, _, run_dir), state in zip(runs, states, strict=True):
        if state == "finished":
            _summarise(run_dir, args.eval_k)
    for (method, seed, run_dir), state in zip(runs, states, strict=True):
        _run_one(method, seed, args, run_dir, state)
    for method, seed, run_dir in runs:
        results.setdefault(method, {})[seed] = _summarise(run_dir, args.eval_k)
    out.mkdir(parents=True, exist_ok=True)
    table = write_outputs(results, out, args)
    written = [out / "compare.md", out / "compare.csv"]
    if importlib.util.find_spec("matplotlib") is None:
        print("compare.png skipped: matplotlib is not installed (pip install matplotlib)")
    else:
        run_dirs: dict[str, list[Path]] = {}
        for method, _, run_dir in runs:
            run_dirs.setdefault(method, []).append(run_dir)
        plot_curves(out, run_dirs)
        written.append(out / "compare.png")
        from eapo.analysis.paired import plot_paired

        rows, keys = comparison_rows(results, args)
        shown = [key for key in keys if key not in ("pass@1", "seconds_per_step")]
        if plot_paired(out / "compare-paired.png", rows, "method", shown, args.baseline):
            written.append(out / "compare-paired.png")
    print(table)
    print("written: " + ", ".join(str(p) for p in written))
    return 0
