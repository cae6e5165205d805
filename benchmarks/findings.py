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
After each finished run, the tables are rewritten: `docs/findings/<setting>-<experiment>.md`, `.png` and
`-paired.png` (the `eapo ablate` table with the paired differences to grpo, its curves, the differences as a figure),
`docs/findings/<setting>-claims.md` (the paper's claims as one-sided tests, `paper_claims`),
`docs/findings/<setting>-mechanics.md` (what the updates did: gradient norms, how far the parameters moved,
`run_mechanics`) and `docs/findings/runs.csv` (one row per finished run).

Usage:
    python benchmarks/findings.py run --setting stress --experiment methods --seeds 5 --jobs 2
    python benchmarks/findings.py tables          # only rewrite the tables from the finished run folders
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from eapo.cli.ablate import (
    ENTROPY_KEY,
    Variant,
    plot_curves,
    plot_paired_differences,
    run_all,
    summarise_run,
    write_tables,
)
from eapo.evaluation.stats import (
    combined_verdict,
    difference_statistics,
    format_interval,
    format_seeds_needed,
    mean_ci95,
    verdict,
)
from eapo.io import read_jsonl
from eapo.trainer.checkpoint import HELDOUT_FILE, METRICS_FILE
from eapo.world.build import load_base

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


COLLAPSE = 0.5  # "entropy collapses": the last 10 steps' mean sampling entropy is at most half the first 10 steps'
BASELINES = ("grpo", "dapo", "forking", "entroadv", "kl_cov")  # the paper's headline table (method.md section 9)


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
            paired = stem.with_name(f"{stem.name}-paired.png")
            if plot_paired_differences(paired, results, args):
                written.append(paired)
    if rows:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        with (docs / "runs.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(sorted(rows, key=lambda r: (r["setting"], r["variant"], r["seed"])))
        written.append(docs / "runs.csv")
    return written + write_claims(runs_root, docs) + write_mechanics(runs_root, docs)


# ----- the paper's claims, each a one-sided test over seeds ---------------------------------------------

Run = dict[str, float]  # one finished run's statistics (`run_statistics`)


def run_statistics(run_dir: Path) -> Run:
    """What the claims read of one run folder: the final avg@k / pass@16 / pass@64, those of the starting policy
    (`before_*`, only in the seed's run that evaluated its start), the mean sampling entropy of the first and of
    the last 10 steps, and the mean held-out avg@k over the periodic evaluations after step 0 (the area under
    the learning curve, divided by its length)."""
    summary = json.loads((run_dir / "eval.json").read_text())
    metrics = read_jsonl(run_dir / METRICS_FILE)
    heldout = read_jsonl(run_dir / HELDOUT_FILE) if (run_dir / HELDOUT_FILE).exists() else []
    k = summary["k"]
    keys = {"avg": f"avg@{k}", "pass16": "pass@16", "pass64": "pass@64"}
    out = {name: summary["after"][key] for name, key in keys.items()}
    if summary.get("before"):
        out |= {f"before_{name}": summary["before"][key] for name, key in keys.items()}
    out["entropy_first"] = statistics.fmean(line[ENTROPY_KEY] for line in metrics[:10])
    out["entropy_last"] = statistics.fmean(line[ENTROPY_KEY] for line in metrics[-10:])
    out["entropy_ratio"] = out["entropy_last"] / out["entropy_first"]
    later = [line[f"avg@{line['k']}"] for line in heldout if line["step"] > 0]
    if later:
        out["heldout_mean"] = statistics.fmean(later)
    return out


@dataclass(frozen=True)
class Part:
    """One one-sided test: per seed, `value` (the statistic) against `reference` (a threshold, or the same
    seed's value of another run); the claim is `value - reference` > 0 (`direction` +1) or < 0 (-1)."""

    label: str
    value: dict[int, float]
    reference: dict[int, float] | float
    against: str
    direction: int

    def differences(self) -> list[float]:
        ref = self.reference
        return [v - (ref[s] if isinstance(ref, dict) else ref) for s, v in sorted(self.value.items())
                if not isinstance(ref, dict) or s in ref]  # fmt: skip


@dataclass(frozen=True)
class Claim:
    name: str
    parts: list[Part]

    @property
    def verdict(self) -> str:
        return combined_verdict([verdict(difference_statistics(p.differences()), p.direction) for p in self.parts])


def _stat(runs: dict[str, dict[int, Run]], variant: str, key: str) -> dict[int, float]:
    return {s: r[key] for s, r in runs.get(variant, {}).items() if key in r}


def _start(runs: dict[str, dict[int, Run]], key: str) -> dict[int, float]:
    """The starting policy's `key` by seed, from whichever run of the seed evaluated it (they share the start)."""
    out: dict[int, float] = {}
    for by_seed in runs.values():
        for seed, run in by_seed.items():
            if f"before_{key}" in run:
                out.setdefault(seed, run[f"before_{key}"])
    return out


def _collapse_parts(runs: dict[str, dict[int, Run]], variant: str) -> list[Part]:
    """`variant` collapses its entropy (ratio <= COLLAPSE) and ends below the start at pass@16 and pass@64."""
    return [
        Part(f"{variant}: entropy, last / first 10 steps", _stat(runs, variant, "entropy_ratio"), COLLAPSE,
             f"{COLLAPSE} (collapse)", -1),
        Part(f"{variant}: pass@16", _stat(runs, variant, "pass16"), _start(runs, "pass16"), "start, same seed", -1),
        Part(f"{variant}: pass@64", _stat(runs, variant, "pass64"), _start(runs, "pass64"), "start, same seed", -1),
    ]  # fmt: skip


def _paired(runs: dict[str, dict[int, Run]], variant: str, other: str, key: str, label: str, direction: int) -> Part:
    value, reference = _stat(runs, variant, key), _stat(runs, other, key)
    return Part(f"{variant}: {label}", value, reference, f"{other}, same seed", direction)


def paper_claims(runs: dict[str, dict[int, Run]]) -> list[Claim]:
    """The paper's claims (method.md sections 4, 7 and 9) as one-sided tests on one setting's runs (variant ->
    seed -> `run_statistics`). A claim holds when every part's 95% interval over seeds excludes 0 on the
    claimed side, fails when one part's excludes it on the other side, and is not resolved otherwise."""
    return [
        Claim("Plain GRPO collapses entropy and loses pass@k at large k", _collapse_parts(runs, "grpo")),
        Claim("EAPO keeps entropy stable where GRPO collapses it", [
            Part("eapo: entropy, last / first 10 steps", _stat(runs, "eapo", "entropy_ratio"), COLLAPSE,
                 f"{COLLAPSE} (collapse)", +1),
            _paired(runs, "eapo", "grpo", "entropy_last", "entropy, last 10 steps", +1),
        ]),
        *(Claim(f"EAPO beats {b} (avg@64)", [_paired(runs, "eapo", b, "avg", "avg@64", +1)]) for b in BASELINES),
        *(Claim(f"EAPO beats {b} (pass@64)", [_paired(runs, "eapo", b, "pass64", "pass@64", +1)]) for b in BASELINES),
        Claim("Gains concentrate in the high-entropy quadrants (PHR, NHR over PLR, NLR; avg@64)", [
            Part("mean of grpo-PHR, grpo-NHR: avg@64", _mean_of(runs, ("grpo-PHR", "grpo-NHR"), "avg"),
                 _mean_of(runs, ("grpo-PLR", "grpo-NLR"), "avg"), "mean of grpo-PLR, grpo-NLR, same seed", +1),
        ]),
        Claim("PLR collapses entropy and loses pass@k at large k", _collapse_parts(runs, "grpo-PLR")),
        Claim("PLR ends below PHR at pass@64", [_paired(runs, "grpo-PLR", "grpo-PHR", "pass64", "pass@64", -1)]),
        Claim("PLR ends with less entropy than PHR",
              [_paired(runs, "grpo-PLR", "grpo-PHR", "entropy_last", "entropy, last 10 steps", -1)]),
        Claim("NHR learns faster than NLR (mean held-out avg@8 over training)",
              [_paired(runs, "grpo-NHR", "grpo-NLR", "heldout_mean", "mean held-out avg@8", +1)]),
        Claim("alpha 0.2 is best (avg@64)",
              [_paired(runs, "eapo", f"eapo-alpha{a}", "avg", "avg@64", +1) for a in ALPHAS]),
        Claim("Training is stable for alpha up to 0.4 (avg@64 above the start)", [
            Part(f"{v}: avg@64", _stat(runs, v, "avg"), _start(runs, "avg"), "start, same seed", +1)
            for v in ("eapo-alpha0", "eapo-alpha0.1", "eapo", "eapo-alpha0.4")
        ]),
    ]  # fmt: skip


def _mean_of(runs: dict[str, dict[int, Run]], variants: tuple[str, ...], key: str) -> dict[int, float]:
    """Per seed, the mean of `key` over `variants` (only seeds where all of them finished)."""
    stats = [_stat(runs, v, key) for v in variants]
    seeds = set.intersection(*(set(s) for s in stats)) if stats else set()
    return {s: statistics.fmean(st[s] for st in stats) for s in sorted(seeds)}


def claims_markdown(setting: str, claims: list[Claim]) -> str:
    """The claims table of one setting: per part, the statistic's mean ± 95% over seeds, what it is tested
    against, the difference ± 95% (paired t, or t against a threshold), the part's verdict, the seeds needed."""
    lines = [
        f"# {setting} setting: the paper's claims",
        "",
        "Each claim is tested as one or more one-sided parts, over seeds: the per-seed difference `value - reference` "
        "(a threshold, or the same seed's value of another run: same starting policy, prompt order and problems), "
        "its mean ± half-width of the 95% t-interval; a part holds when the interval excludes 0 on the claimed "
        "side, fails when it excludes 0 on the other side, and is not resolved otherwise (seeds needed: the "
        "seeds a difference of this size and spread would need). A claim holds when all its parts hold and "
        f"fails when one fails. Entropy: mean sampling entropy of the last 10 steps; collapse: at most {COLLAPSE} "
        "of the first 10 steps'. Each part is one test at the 95% level (two-sided interval, so 97.5% on the claimed "
        f"side), with no correction for the number of tests: with {sum(len(c.parts) for c in claims)} parts, one may "
        "resolve by chance. The "
        "rules were fixed before the 5-seed results were in.",
        "",
        "| claim | verdict | part | value ± 95% | against | Δ ± 95% | seeds | part verdict | seeds needed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    waiting = [c.name for c in claims if not all(p.differences() for p in c.parts)]
    for claim in claims:
        if claim.name in waiting:
            continue
        for i, part in enumerate(claim.parts):
            diffs = part.differences()
            d = difference_statistics(diffs)
            values = list(part.value.values())
            value = format_interval(*mean_ci95(values)) if values else "-"
            cells = [claim.name if i == 0 else "", f"**{claim.verdict}**" if i == 0 else "", part.label, value,
                     part.against, format_interval(d.mean, d.half, sign=True), str(d.seeds),
                     verdict(d, part.direction), format_seeds_needed(d)]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    if waiting:
        lines += ["", "Not measured yet (a run a part needs has not finished): " + "; ".join(waiting) + "."]
    return "\n".join(lines) + "\n"


def setting_runs(out: Path) -> dict[str, dict[int, Run]]:
    """variant -> seed -> `run_statistics(run folder)` for the finished runs of one setting."""
    runs: dict[str, dict[int, Run]] = {}
    for name, dirs in finished(out).items():
        runs[name] = {int(d.name.rsplit("-seed", 1)[1]): run_statistics(d) for d in dirs}
    return runs


def write_claims(runs_root: Path, docs: Path = DOCS) -> list[Path]:
    """`docs/findings/<setting>-claims.md` for each setting with finished runs."""
    written = []
    for setting in SETTINGS:
        runs = setting_runs(runs_root / setting)
        if runs:
            claims = paper_claims(runs)
            path = docs / f"{setting}-claims.md"
            path.write_text(claims_markdown(setting, claims))
            written.append(path)
    return written


# ----- what the optimizer did: gradient norms, how far the parameters moved -------------------------------

WINDOW = 100  # steps of the "first" and "last" training-reward windows


def run_mechanics(run_dir: Path, start: dict[str, torch.Tensor]) -> dict[str, float]:
    """What one run's updates did: the mean gradient norm over its steps (TRL logs it before clipping) and the
    share of the steps it was clipped on (above the run's `max_grad_norm`; left out when the run did not clip), the L2
    distance of its final parameters from the starting policy's `start` (a state dict, all parameters as one
    vector; left out when the run's model was deleted), the mean training reward of its first and last `WINDOW`
    steps and, for a run trained on some quadrants only, the share of the completion tokens in them (first and
    last `WINDOW` steps)."""
    config = json.loads((run_dir / "config.json").read_text())
    metrics = [line for line in read_jsonl(run_dir / METRICS_FILE) if "reward" in line]
    out = {
        "grad_norm": statistics.fmean(line["grad_norm"] for line in metrics),
        "reward_first": statistics.fmean(line["reward"] for line in metrics[:WINDOW]),
        "reward_last": statistics.fmean(line["reward"] for line in metrics[-WINDOW:]),
    }
    if max_norm := config.get("max_grad_norm"):
        out["clipped"] = statistics.fmean(float(line["grad_norm"] > max_norm) for line in metrics)
    model = run_dir / "model" / "model.safetensors"
    if model.is_file():  # a run folder whose model was deleted keeps its other figures
        final = load_file(str(model))
        if set(final) != set(start):
            odd = sorted(set(final) ^ set(start))[:3]
            raise ValueError(f"{run_dir}: its model's parameters are not the starting policy's (for example {odd})")
        out["distance"] = sum(float((final[k].double() - start[k].double()).square().sum()) for k in start) ** 0.5
    trained = [q for q in str(config.get("quadrants") or "").split(",") if q]
    if trained and len(trained) < len(QUADRANTS):
        share = [sum(line.get(f"quadrant/{q}/token_share", 0.0) for q in trained) for line in metrics]
        out |= {"trained_first": statistics.fmean(share[:WINDOW]), "trained_last": statistics.fmean(share[-WINDOW:])}
    return out


MECHANICS_COLUMNS = {
    "grad_norm": "gradient norm (mean over steps)",
    "clipped": "clipped steps (share)",
    "distance": "‖θ − θ₀‖ (final − start)",
    "reward_first": f"training reward, first {WINDOW} steps",
    "reward_last": f"training reward, last {WINDOW} steps",
    "trained_first": f"trained tokens (share), first {WINDOW} steps",
    "trained_last": f"trained tokens (share), last {WINDOW} steps",
}


def mechanics_markdown(setting: str, mechanics: dict[str, list[dict[str, float]]], start_norm: float) -> str:
    """One row per variant: each `run_mechanics` value, mean ± 95% t over its seeds."""
    lines = [
        f"# {setting} setting: what the updates did",
        "",
        "Per variant, mean ± half-width of the 95% t-interval over its finished seeds: the gradient norm TRL logs "
        "(before clipping at `max_grad_norm`), averaged over the steps, and the share of the steps on which it was "
        "above `max_grad_norm` (clipped); the L2 distance between the final "
        f"parameters and the starting policy's (all parameters as one vector; ‖θ₀‖ = {start_norm:.1f}); the mean "
        f"training reward of the first and last {WINDOW} steps; for a run trained on one quadrant's tokens only, "
        "the share of the completion tokens it trained on. With Adam the size of a step is set by the learning "
        "rate, not by the gradient's norm: a run whose gradients are many times smaller than grpo's can move its "
        "parameters as far.",
        "",
        "| variant | seeds | " + " | ".join(MECHANICS_COLUMNS.values()) + " |",
        "|---|---|" + "---|" * len(MECHANICS_COLUMNS),
    ]
    for variant, runs in sorted(mechanics.items(), key=lambda item: (item[0] != BASELINE, item[0])):
        cells = []
        for key in MECHANICS_COLUMNS:
            values = [r[key] for r in runs if key in r]
            cells.append(format_interval(*mean_ci95(values)) if values else "-")
        lines.append(f"| {variant} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_mechanics(runs_root: Path, docs: Path = DOCS, start: dict[str, torch.Tensor] | None = None) -> list[Path]:
    """`docs/findings/<setting>-mechanics.md` for each setting with finished runs (all of them start from the
    tiny world's shipped policy unless `start` is given)."""
    written = []
    for setting in SETTINGS:
        done = finished(runs_root / setting)
        if not done:
            continue
        if start is None:
            # named_parameters lists a tied weight once, as the saved model does
            start = {k: v.detach() for k, v in load_base()[0].named_parameters()}
        start_norm = sum(float(v.double().square().sum()) for v in start.values()) ** 0.5
        mechanics = {name: [run_mechanics(d, start) for d in dirs] for name, dirs in done.items()}
        path = docs / f"{setting}-mechanics.md"
        path.write_text(mechanics_markdown(setting, mechanics, start_norm))
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    out = args.runs / args.setting
    out.mkdir(parents=True, exist_ok=True)
    variants = experiment_variants(args.experiment)

    def tables(_: str = "") -> None:
        for path in write_findings_tables(args.runs):
            print(f"[findings] wrote {path.relative_to(ROOT)}", flush=True)

    # seed by seed, both jobs busy to the end (the next seed's runs start while a seed's last run trains);
    # the tables are rewritten after every finished run
    failures = run_all(variants, ablate_args(args.setting, args.seeds, args.jobs, args.threads), out, tables)
    tables()
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
