"""The measurements behind `docs/findings.md`: every method, EAPO's alpha sweep and the four single-quadrant runs,
in the tiny world's default setting and in its stress setting, over seeds, paired against grpo.

Settings (both: the tiny world's `eapo train` defaults otherwise: countdown, 8 prompts x 8 completions a step):
- `default`: the `eapo train` defaults, learning rate 5e-5, 600 steps;
- `stress`: `recipes/tiny-stress.yaml`, learning rate 2e-4 and 900 steps; in the pilot runs of docs/findings.md
  grpo's sampling entropy falls by more than half there and pass@16 / pass@64 end below the starting policy's.

Experiments (variants; every run of a seed starts from the same policy, prompt order and problems):
- `methods`: grpo, dapo, forking, entropy_bonus, entroadv, clip_cov, kl_cov, eapo, each with its own preset;
- `alpha`: eapo with eapo_alpha 0, 0.1, 0.4 and 1.0 (0.2, the default, is `eapo` of `methods`);
- `quadrants`: grpo with only one quadrant's tokens trained (`--quadrants PHR`, ...), against grpo (all four).

Every run is an `eapo train` run folder `runs/findings/<setting>/<variant>-seed<seed>`, trained by `eapo ablate`'s
machinery (`--jobs` subprocesses of `--threads` torch threads; a finished run is kept, so the command resumes).
Final evaluation: 200 held-out problems x 64 samples (avg@64, pass@1/4/16/64); periodic: every 100 steps, 100 x 8.
After each seed, the tables are rewritten: `docs/findings/<setting>-<experiment>.md` and `.png` (the `eapo ablate`
table, with the paired differences to grpo) and `docs/findings/runs.csv` (one row per finished run).

Usage:
    python benchmarks/findings.py run --setting stress --experiment methods --seeds 5 --jobs 2
    python benchmarks/findings.py tables          # only rewrite the tables from the finished run folders
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

from eapo.cli.ablate import Variant, plot_curves, run_all, summarise_run, write_tables

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "findings"
# setting -> (steps, more `eapo train` flags)
SETTINGS: dict[str, tuple[int, tuple[str, ...]]] = {
    "default": (600, ()),
    "stress": (900, ("--config", str(ROOT / "recipes" / "tiny-stress.yaml"))),
}
METHODS = ("grpo", "dapo", "forking", "entropy_bonus", "entroadv", "clip_cov", "kl_cov", "eapo")
ALPHAS = ("0", "0.1", "0.4", "1.0")
QUADRANTS = ("PHR", "PLR", "NLR", "NHR")
BASELINE = "grpo"


def experiment_variants(experiment: str) -> list[Variant]:
    """The variants of one experiment, the first one evaluating the starting policy."""
    if experiment == "methods":
        return [Variant(m, ("--method", m)) for m in METHODS]
    if experiment == "alpha":
        return [Variant(f"eapo-alpha{a}", ("--method", "eapo", "--eapo_alpha", a)) for a in ALPHAS]
    if experiment == "quadrants":
        return [Variant(f"grpo-{q}", ("--method", "grpo", "--quadrants", q)) for q in QUADRANTS]
    raise ValueError(f"unknown experiment {experiment!r}")


# the variants each experiment's table shows (the shared grpo, eapo runs come from `methods`)
TABLE_VARIANTS = {
    "methods": list(METHODS),
    "alpha": ["grpo", *(f"eapo-alpha{a}" for a in ALPHAS[:2]), "eapo", *(f"eapo-alpha{a}" for a in ALPHAS[2:])],
    "quadrants": ["grpo", *(f"grpo-{q}" for q in QUADRANTS)],
}


def ablate_args(setting: str, seeds: int, jobs: int, threads: int) -> argparse.Namespace:
    """The options `eapo ablate`'s functions read, for this setting."""
    return argparse.Namespace(
        seeds=seeds, steps=SETTINGS[setting][0], target=0.35, eval_k=64, eval_problems=200, heldout_eval_steps=100,
        heldout_eval_problems=100, heldout_eval_k=8, jobs=jobs, threads=threads, baseline=BASELINE,
        base_method="grpo", train_flags=list(SETTINGS[setting][1]),
    )  # fmt: skip


def finished(out: Path) -> dict[str, list[Path]]:
    """Finished run folders (eval.json written) by variant name."""
    runs: dict[str, list[Path]] = {}
    for run_dir in sorted(out.glob("*-seed*")):
        if (run_dir / "eval.json").is_file():
            runs.setdefault(run_dir.name.rsplit("-seed", 1)[0], []).append(run_dir)
    return runs


def write_findings_tables(runs_root: Path, docs: Path = DOCS) -> list[Path]:
    """Each (setting, experiment) table and figure with at least the baseline finished, and runs.csv."""
    docs.mkdir(parents=True, exist_ok=True)
    written, rows = [], []
    for setting in SETTINGS:
        done = finished(runs_root / setting)
        summaries = {name: [summarise_run(d, 0.35) for d in dirs] for name, dirs in done.items()}
        for name, runs in summaries.items():
            for run in runs:
                flat = {k: v for k, v in run.items() if not k.startswith("_")}
                base = {f"before_{k}": v for k, v in (run["_base"] or {}).items() if not k.startswith("_")}
                rows.append({"setting": setting, "variant": name, "seed": run["_seed"], **flat, **base})
        for experiment, names in TABLE_VARIANTS.items():
            results = {n: summaries[n] for n in names if n in summaries}
            if BASELINE not in results or len(results) < 2:
                continue
            scratch = runs_root / setting / f".tables-{experiment}"
            scratch.mkdir(parents=True, exist_ok=True)
            args = ablate_args(setting, max(len(r) for r in results.values()), 1, 1)
            write_tables(results, scratch, args)
            stem = docs / f"{setting}-{experiment}"
            table = (scratch / "ablate.md").read_text()
            stem.with_suffix(".md").write_text(table.replace("# eapo ablate", f"# {setting} setting: {experiment}", 1))
            written.append(stem.with_suffix(".md"))
            plot_curves(scratch, {n: done[n] for n in results}, 8)
            shutil.copy(scratch / "ablate.png", stem.with_suffix(".png"))
            written.append(stem.with_suffix(".png"))
    if rows:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        with (docs / "runs.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(sorted(rows, key=lambda r: (r["setting"], r["variant"], r["seed"])))
        written.append(docs / "runs.csv")
    return written


def run(args: argparse.Namespace) -> int:
    out = args.runs / args.setting
    out.mkdir(parents=True, exist_ok=True)
    variants = experiment_variants(args.experiment)
    failures: list[str] = []
    for seeds in range(1, args.seeds + 1):  # seed by seed: the tables grow a whole seed at a time
        failures += run_all(variants, ablate_args(args.setting, seeds, args.jobs, args.threads), out)
        for path in write_findings_tables(args.runs):
            print(f"[findings] wrote {path.relative_to(ROOT)}", flush=True)
    for failure in failures:
        print(f"[findings] {failure}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="train what is missing, then rewrite the tables")
    go.add_argument("--setting", choices=list(SETTINGS), required=True)
    go.add_argument("--experiment", choices=list(TABLE_VARIANTS), required=True)
    go.add_argument("--seeds", type=int, default=5)
    go.add_argument("--jobs", type=int, default=2, help="runs trained at the same time")
    go.add_argument("--threads", type=int, default=1, help="torch threads per run")
    go.add_argument("--runs", type=Path, default=ROOT / "runs" / "findings", help="run folders")
    tables = sub.add_parser("tables", help="only rewrite the tables from the finished run folders")
    tables.add_argument("--runs", type=Path, default=ROOT / "runs" / "findings")
    args = parser.parse_args(argv)
    if args.command == "tables":
        for path in write_findings_tables(args.runs):
            print(f"[findings] wrote {path.relative_to(ROOT)}")
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
