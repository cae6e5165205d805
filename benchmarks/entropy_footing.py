"""Entropy on equal footing (docs/findings.md section 6): does EAPO keep more entropy than GRPO when both are
measured over every completion they generate?

Section 3's entropy claims read `entropy/sampling_mean`, the entropy of the batch a step trains on. eapo (like dapo)
trains with dynamic sampling, which keeps the groups with mixed rewards and draws again for the others, so its
figure is that of the kept groups; grpo's is that of every group. Code from bdc67b1 on also logs
`entropy/generated_mean`, every completion generated (all rounds), for every method. This reruns grpo and eapo (each
with its preset) in both tiny-world settings with section 3's flags (`findings.ablate_args`), `--seeds` seeds, and
compares the final entropy (mean of the last 10 steps) on that footing.

Per setting (the rule is pre-registered in docs/findings.md section 6):
- primary: eapo's final generated entropy - grpo's, paired by seed (two-sided paired t, Holm over the two settings):
  holds when Holm p < 0.05 and the difference is above 0, fails when the 95% interval excludes 0 below, otherwise
  not resolved, stated with the smallest difference the seeds detect with 80% power;
- secondary (no decision): the selection within eapo's runs (its kept - its generated entropy, last 10 steps) and
  section 3's own measure again (eapo's kept entropy - grpo's), to set beside docs/findings/runs.csv's.

Every run is an `eapo train` run folder `runs/findings-footing/<setting>/<variant>-seed<seed>`, trained by `eapo
ablate`'s machinery (resumable: finished runs are kept). After every finished run `docs/findings/entropy-footing.md`
and `.csv` are rewritten.

Usage:
    python benchmarks/entropy_footing.py run --seeds 5 --jobs 1 --threads 1
    python benchmarks/entropy_footing.py tables
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from eapo.cli.ablate import ENTROPY_KEY, Variant, run_all
from eapo.cli.compare import write_csv
from eapo.evaluation.stats import (
    PairedDifference,
    format_interval,
    holm_adjusted,
    minimum_detectable_effect,
    paired_difference,
    paired_t_p_value,
)
from eapo.io import read_jsonl
from eapo.trainer.checkpoint import METRICS_FILE
from findings import BASELINE, DOCS, ROOT, ablate_args, finished

SETTINGS = ("default", "stress")
RUNS = ROOT / "runs" / "findings-footing"
VARIANTS = (Variant(BASELINE, ("--method", BASELINE)), Variant("eapo", ("--method", "eapo")))
GENERATED = "entropy/generated_mean"
LAST = 10  # steps of the final entropy, as section 3
LEVEL = 0.05

Results = dict[str, dict[str, dict[int, dict[str, float]]]]  # setting -> variant -> seed -> entropies


def run_entropies(run_dir: Path) -> dict[str, float]:
    """The mean over the last `LAST` logged steps of the generated entropy (`generated`) and of the trained batch's
    (`kept`), and the steps logged."""
    lines = [line for line in read_jsonl(run_dir / METRICS_FILE) if GENERATED in line and ENTROPY_KEY in line]
    if not lines:
        raise ValueError(f"{run_dir}: no step logs {GENERATED}: a run from code before bdc67b1")
    tail = lines[-LAST:]
    return {"generated": statistics.fmean(line[GENERATED] for line in tail),
            "kept": statistics.fmean(line[ENTROPY_KEY] for line in tail), "steps": float(len(lines))}  # fmt: skip


def collect(runs_root: Path) -> Results:
    results: Results = {}
    for setting in SETTINGS:
        for name, dirs in finished(runs_root / setting).items():
            for run_dir in dirs:
                seed = int(run_dir.name.rsplit("-seed", 1)[1])
                results.setdefault(setting, {}).setdefault(name, {})[seed] = run_entropies(run_dir)
    return results


def _diff(a: dict[int, dict[str, float]], b: dict[int, dict[str, float]], key_a: str, key_b: str) -> PairedDifference:
    return paired_difference({s: r[key_a] for s, r in a.items()}, {s: r[key_b] for s, r in b.items()})


def footing_rows(results: Results) -> list[dict[str, Any]]:
    """Per setting with both variants on 2 or more paired seeds: the primary difference (eapo's generated entropy -
    grpo's) with its raw and Holm-adjusted p (over the settings tested), verdict and MDE; the selection within eapo
    (kept - generated) and section 3's measure (eapo kept - grpo kept)."""
    rows = []
    for setting in SETTINGS:
        runs = results.get(setting, {})
        if BASELINE not in runs or "eapo" not in runs:
            continue
        d = _diff(runs["eapo"], runs[BASELINE], "generated", "generated")
        if d.seeds < 2 or d.sd is None:
            continue
        paired = set(runs["eapo"]) & set(runs[BASELINE])  # the means in the table: over the paired seeds
        rows.append({"setting": setting, "d": d, "p": paired_t_p_value(d.mean, d.sd, d.seeds),
                     "selection": _diff(runs["eapo"], runs["eapo"], "kept", "generated"),
                     "section3": _diff(runs["eapo"], runs[BASELINE], "kept", "kept"),
                     **{v: statistics.fmean(runs[v][s]["generated"] for s in paired)
                        for v in (BASELINE, "eapo")}})  # fmt: skip
    for row, holm in zip(rows, holm_adjusted([row["p"] for row in rows]), strict=True):
        d = row["d"]
        row["holm"] = holm
        row["verdict"] = "holds" if holm < LEVEL and d.mean > 0 else ("fails" if d.resolved and d.mean < 0 else
                                                                       "not resolved")  # fmt: skip
        row["mde80"] = minimum_detectable_effect(d.sd, d.seeds) if d.sd else 0.0
    return rows


def footing_markdown(results: Results) -> str:
    head = ["setting", "seeds", "grpo generated", "eapo generated", "Δ eapo - grpo ± 95%", "raw p", "Holm p",
            "verdict", "MDE (80% power)", "eapo: kept - generated ± 95%", "section 3's Δ (kept - kept) ± 95%"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in footing_rows(results):
        d, sel, s3 = row["d"], row["selection"], row["section3"]
        lines.append("| " + " | ".join([
            row["setting"], str(d.seeds), f"{row['grpo']:.4f}", f"{row['eapo']:.4f}",
            format_interval(d.mean, d.half, 4, sign=True), f"{row['p']:.3g}", f"{row['holm']:.3g}",
            f"**{row['verdict']}**", f"{row['mde80']:.4f}", format_interval(sel.mean, sel.half, 4, sign=True),
            format_interval(s3.mean, s3.half, 4, sign=True),
        ]) + " |")  # fmt: skip
    return (
        "# Entropy on equal footing: eapo and grpo over every completion generated\n\n"
        "Written by `python benchmarks/entropy_footing.py tables`; the rule is pre-registered in docs/findings.md "
        f"section 6. Final entropy: the mean over the last {LAST} steps of `entropy/generated_mean` (every "
        "completion generated for the step, dynamic sampling's dropped groups included; nats). Δ: paired by seed; "
        f"Holm p: over the settings in the table; holds: Holm p < {LEVEL} and Δ > 0; fails: the 95% interval "
        "excludes 0 below; MDE: the smallest true Δ the paired t-test over these seeds detects with 80% power. "
        "Secondary (no decision): within eapo's runs, the trained batch's entropy (`entropy/sampling_mean`, the "
        "kept groups) minus the generated one, and section 3's measure (eapo's kept - grpo's) from these runs.\n\n"
        + "\n".join(lines) + "\n"
    )


def write_tables(results: Results, docs: Path = DOCS) -> list[Path]:
    if not footing_rows(results):
        return []
    docs.mkdir(parents=True, exist_ok=True)
    md, csv_path = docs / "entropy-footing.md", docs / "entropy-footing.csv"
    md.write_text(footing_markdown(results))
    rows = [{"setting": setting, "variant": name, "seed": seed, **run}
            for setting, by_variant in results.items() for name, by_seed in by_variant.items()
            for seed, run in sorted(by_seed.items())]  # fmt: skip
    write_csv(csv_path, rows)
    return [md, csv_path]


def run(args: argparse.Namespace) -> int:
    def tables(_: str = "") -> None:
        for path in write_tables(collect(args.runs), args.docs):
            print(f"[footing] wrote {path}", flush=True)

    for setting in SETTINGS:
        out = args.runs / setting
        out.mkdir(parents=True, exist_ok=True)
        print(f"[footing] {setting}: grpo and eapo, {args.seeds} seeds", flush=True)
        failures = run_all(list(VARIANTS), ablate_args(setting, args.seeds, args.jobs, args.threads), out, tables)
        if failures:
            for failure in failures:
                print(f"[footing] {failure}")
            return 1
    tables()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="train what is missing; tables after every run")
    go.add_argument("--seeds", type=int, default=5)
    go.add_argument("--jobs", type=int, default=1, help="runs trained at the same time")
    go.add_argument("--threads", type=int, default=1, help="torch threads per run")
    tables = sub.add_parser("tables", help="only rewrite the tables from the finished run folders")
    for p in (go, tables):
        p.add_argument("--runs", type=Path, default=RUNS, help="run folders")
        p.add_argument("--docs", type=Path, default=DOCS, help="where entropy-footing.md and .csv go")
    args = parser.parse_args(argv)
    if args.command == "run" and (args.seeds < 2 or min(args.jobs, args.threads) < 1):
        parser.exit(2, f"entropy_footing: error: --seeds {args.seeds} --jobs {args.jobs} --threads {args.threads}: "
                       "the paired test needs 2 or more seeds, and jobs and threads must be >= 1\n")  # fmt: skip
    if args.command == "tables":
        try:
            written = write_tables(collect(args.runs), args.docs)
        except ValueError as err:
            parser.exit(2, f"entropy_footing: error: {err}\n")
        for path in written:
            print(f"[footing] wrote {path}")
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
