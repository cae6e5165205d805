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
`run_mechanics`), `docs/findings/runs.csv` (one row per finished run) and, from runs.csv alone,
`docs/findings/resolved.md` (every comparison the page makes on every metric: the resolved ones with their raw
and Holm-adjusted p-values, the others with the smallest effect the design detects with 80% power).

Usage:
    python benchmarks/findings.py run --setting stress --experiment methods --seeds 5 --jobs 2
    python benchmarks/findings.py tables          # only rewrite the tables from the finished run folders
    python benchmarks/findings.py resolved        # only rewrite docs/findings/resolved.md, from runs.csv alone
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
    PairedDifference,
    combined_verdict,
    difference_statistics,
    format_interval,
    format_seeds_needed,
    holm_adjusted,
    mean_ci95,
    minimum_detectable_effect,
    paired_difference,
    paired_t_p_value,
    seeds_needed_for_power,
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
        written.append(write_resolved(docs / "runs.csv", docs / "resolved.md"))
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


def claims_table(claims: list[Claim], mde: bool = False) -> list[str]:
    """The claims table: per part, the statistic's mean ± 95% over seeds, what it is tested against, the difference
    ± 95% (paired t, or t against a threshold), the part's verdict, the seeds needed (about 50% power) and, with
    `mde`, the smallest difference the seeds detect with 80% power; then the claims a run they need lacks."""
    head = ["claim", "verdict", "part", "value ± 95%", "against", "Δ ± 95%", "seeds", "part verdict", "seeds needed"]
    head += ["MDE (80% power)"] if mde else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
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
            if mde:
                cells.append("-" if d.sd is None else f"{minimum_detectable_effect(d.sd, d.seeds):.4f}")
            lines.append("| " + " | ".join(cells) + " |")
    if waiting:
        lines += ["", "Not measured yet (a run a part needs has not finished): " + "; ".join(waiting) + "."]
    return lines


def read_claims_table(text: str) -> list[dict[str, str]]:
    """The parts of the first `claims_table` in `text` (a page that holds one), one dict a part: `claim` and its
    `verdict` (written on the claim's first part only, carried down here), `part`, `against`, `delta` (Δ ± 95%),
    `seeds` and `part_verdict`; [] when `text` has no claims table."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| claim | verdict | part |")), None)
    if start is None:
        return []
    parts: list[dict[str, str]] = []
    claim = verdict_ = ""
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        cells = [cell.strip() for cell in line.strip()[1:-1].split("|")]
        claim, verdict_ = (cells[0], cells[1].strip("*")) if cells[0] else (claim, verdict_)
        parts.append({"claim": claim, "verdict": verdict_, "part": cells[2], "against": cells[4],
                      "delta": cells[5], "seeds": cells[6], "part_verdict": cells[7]})  # fmt: skip
    return parts


def claims_markdown(setting: str, claims: list[Claim]) -> str:
    """The claims page of one tiny-world setting: how the parts are tested, then `claims_table`."""
    lines = [
        f"# {setting} setting: the paper's claims",
        "",
        "Each claim is tested as one or more one-sided parts, over seeds: the per-seed difference `value - reference` "
        "(a threshold, or the same seed's value of another run: same starting policy, prompt order and problems), "
        "its mean ± half-width of the 95% t-interval; a part holds when the interval excludes 0 on the claimed "
        "side, fails when it excludes 0 on the other side, and is not resolved otherwise (seeds needed: the "
        "seeds at which a difference of this size and spread would just reach significance, about 50% power; "
        "80% power and the smallest detectable effect: resolved.md). A claim holds when all its parts hold and "
        f"fails when one fails. Entropy: mean sampling entropy of the last 10 steps; collapse: at most {COLLAPSE} "
        "of the first 10 steps'. Each part is one test at the 95% level (two-sided interval, so 97.5% on the claimed "
        f"side), with no correction for the number of tests: with {sum(len(c.parts) for c in claims)} parts, one may "
        "resolve by chance. The "
        "rules were fixed before the 5-seed results were in.",
        "",
        *claims_table(claims),
    ]
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


# ----- every comparison the page makes, on every metric: the resolved ones and the bounds of the others ------

# runs.csv columns compared (decimals shown); pass@1 is left out: it is avg@64 (the unbiased pass@1 estimator
# averaged over the problems), and eval_se is the noise of a value, not a result
RESOLVED_METRICS = {"avg@64": 4, "pass@4": 4, "pass@16": 4, "pass@64": 4, "entropy": 4, "steps_to_target": 0}
START = "start"  # the seed's starting policy (its `before_*` columns); the start has no final entropy
START_METRICS = ("avg@64", "pass@4", "pass@16", "pass@64")
ALPHA_VARIANTS = ("eapo-alpha0", "eapo-alpha0.1", "eapo", "eapo-alpha0.4", "eapo-alpha1.0")
QUADRANT_ORDER = ("grpo-PHR", "grpo-NHR", "grpo-PLR", "grpo-NLR")  # high-entropy first: pairs read high - low
CsvRuns = dict[str, dict[int, dict[str, float | None]]]  # variant -> seed -> metric -> value


@dataclass(frozen=True)
class Comparison:
    """`variant - reference` on `metric`, paired by seed; a side is one variant, START, or the per-seed mean of
    several variants."""

    variant: tuple[str, ...]
    reference: tuple[str, ...]
    metric: str

    @property
    def label(self) -> str:
        def side(names: tuple[str, ...]) -> str:
            return names[0] if len(names) == 1 else "mean(" + ", ".join(names) + ")"

        return f"{side(self.variant)} - {side(self.reference)}"


@dataclass(frozen=True)
class Family:
    """A family of comparisons over which Holm's correction is applied."""

    experiment: str
    name: str
    comparisons: tuple[Comparison, ...]


def _per_metric(experiment: str, name: str, pairs: list[tuple[str, str]], metrics=tuple(RESOLVED_METRICS)):
    return [
        Family(experiment, f"{name}, {metric}", tuple(Comparison((v,), (r,), metric) for v, r in pairs))
        for metric in metrics
    ]


def comparison_families() -> list[Family]:
    """The families of comparisons docs/findings.md makes, each on every metric of runs.csv (Holm's correction
    within a family; one comparison can belong to several families); listed in `RESOLVED_INTRO`."""
    others = [m for m in METHODS if m not in ("grpo", "eapo")]
    families = [
        *_per_metric("methods", "each method vs grpo", [(m, BASELINE) for m in METHODS if m != BASELINE]),
        *_per_metric("methods", "eapo vs each other method", [("eapo", m) for m in others]),
        Family("methods", "EAPO beats X (the ten claim parts)", tuple(
            Comparison(("eapo",), (b,), metric) for metric in ("avg@64", "pass@64") for b in BASELINES)),
        *_per_metric("methods", "each method vs the start", [(m, START) for m in METHODS], START_METRICS),
    ]  # fmt: skip
    alpha_pairs = []
    for i, low in enumerate(ALPHA_VARIANTS):
        for high in ALPHA_VARIANTS[i + 1 :]:
            alpha_pairs.append(("eapo", high) if low == "eapo" else (high, low))
    families += [
        *_per_metric("alpha", "each alpha vs grpo", [(a, BASELINE) for a in ALPHA_VARIANTS]),
        *_per_metric("alpha", "each alpha vs dapo", [(a, "dapo") for a in ALPHA_VARIANTS]),
        *_per_metric("alpha", "the alphas pairwise", alpha_pairs),
        *_per_metric("alpha", "each alpha vs the start", [(a, START) for a in ALPHA_VARIANTS], START_METRICS),
    ]
    quadrant_pairs = [(a, b) for i, a in enumerate(QUADRANT_ORDER) for b in QUADRANT_ORDER[i + 1 :]]
    families += [
        *_per_metric("quadrants", "each quadrant vs grpo", [(q, BASELINE) for q in QUADRANT_ORDER]),
        *_per_metric("quadrants", "the quadrants pairwise", quadrant_pairs),
        *(Family("quadrants", f"high- vs low-entropy quadrants, {metric}", (
            Comparison(("grpo-PHR", "grpo-NHR"), ("grpo-PLR", "grpo-NLR"), metric),)) for metric in RESOLVED_METRICS),
        *_per_metric("quadrants", "grpo and each quadrant vs the start",
                     [(v, START) for v in (BASELINE, *QUADRANT_ORDER)], START_METRICS),
    ]  # fmt: skip
    return families


def read_runs_csv(path: Path) -> dict[str, CsvRuns]:
    """setting -> variant -> seed -> metric -> value (None: empty cell) from runs.csv; the START pseudo-variant
    holds each seed's starting policy, from the `before_*` columns of whichever run of the seed has them."""
    out: dict[str, CsvRuns] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            seed = int(row["seed"])

            def value(key: str, row: dict[str, str] = row) -> float | None:
                return float(row[key]) if row.get(key) not in (None, "") else None

            runs = out.setdefault(row["setting"], {})
            runs.setdefault(row["variant"], {})[seed] = {m: value(m) for m in RESOLVED_METRICS}
            if row.get("before_avg@64"):
                runs.setdefault(START, {}).setdefault(seed, {m: value(f"before_{m}") for m in START_METRICS})
    return out


def _side(runs: CsvRuns, names: tuple[str, ...], metric: str) -> dict[int, float]:
    """Per seed, the mean of `metric` over `names` (only seeds where every one of them has a value)."""
    per = [{s: r[metric] for s, r in runs.get(n, {}).items() if r.get(metric) is not None} for n in names]
    seeds = set.intersection(*(set(p) for p in per))
    return {s: statistics.fmean(p[s] for p in per) for s in sorted(seeds)}


@dataclass(frozen=True)
class Tested:
    """One comparison's statistics: the paired difference, its two-sided p, and the power figures."""

    comparison: Comparison
    diff: PairedDifference
    p: float
    mde80: float  # smallest true difference the design's seeds detect with 80% power, at the observed sd
    seeds80: int | None  # seeds a true difference of the observed size and sd needs for 80% power


def paired_comparison(runs: CsvRuns, comparison: Comparison) -> Tested | None:
    """The paired statistics of one comparison (None below 2 paired seeds)."""
    d = paired_difference(_side(runs, comparison.variant, comparison.metric),
                          _side(runs, comparison.reference, comparison.metric))  # fmt: skip
    if d.seeds < 2 or d.mean is None or d.sd is None:
        return None
    p = paired_t_p_value(d.mean, d.sd, d.seeds)
    return Tested(comparison, d, p, minimum_detectable_effect(d.sd, d.seeds), seeds_needed_for_power(d.mean, d.sd))


def resolved_comparisons(runs: CsvRuns, families: list[Family]) -> dict[Comparison, tuple[Tested, dict[str, float]]]:
    """Every comparison of the families that has at least 2 paired seeds -> (its statistics, family name -> its
    Holm-adjusted p within that family, the family taken over its comparisons that could be tested)."""
    out: dict[Comparison, tuple[Tested, dict[str, float]]] = {}
    for family in families:
        tested = [t for c in family.comparisons if (t := paired_comparison(runs, c)) is not None]
        for t, adjusted in zip(tested, holm_adjusted([t.p for t in tested]), strict=True):
            out.setdefault(t.comparison, (t, {}))[1][f"{family.name} ({len(tested)})"] = adjusted
    return out


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _holm_cell(adjusted: dict[str, float]) -> str:
    return "; ".join((f"**{_p(p)}**" if p < 0.05 else _p(p)) + f" ({name})" for name, p in adjusted.items())


def resolved_markdown(setting: str, runs: CsvRuns, families: list[Family]) -> str:
    """One setting's section: per experiment, every resolved comparison (size, interval, raw p, Holm-adjusted p
    in each of its families), then every other one with the smallest effect the design detects with 80% power."""
    lines = [f"## {setting} setting", ""]
    for experiment in TABLE_VARIANTS:
        fams = [f for f in families if f.experiment == experiment]
        results = resolved_comparisons(runs, fams)
        if not results:
            continue
        order: dict[Comparison, int] = {}
        for c in (c for f in fams for c in f.comparisons):
            order.setdefault(c, len(order))  # where it first appears
        ranked = sorted(results.values(), key=lambda r: (list(RESOLVED_METRICS).index(r[0].comparison.metric),
                                                        order[r[0].comparison]))  # fmt: skip
        hits = [r for r in ranked if r[0].diff.resolved]
        survive = sum(all(p < 0.05 for p in adjusted.values()) for _, adjusted in hits)
        lines += [
            f"### {experiment}",
            "",
            f"{len(results)} comparisons; {len(hits)} with a 95% paired interval excluding 0, {survive} of them with "
            "a Holm-adjusted p below 0.05 in every family they belong to.",
            "",
            "| comparison | metric | Δ | 95% interval | seeds | raw p | Holm-adjusted p (family, its size) |",
            "|---|---|---|---|---|---|---|",
        ]
        for t, adjusted in hits:
            digits, d = RESOLVED_METRICS[t.comparison.metric], t.diff
            lines.append(f"| {t.comparison.label} | {t.comparison.metric} | {d.mean:+.{digits}f} | "
                         f"{d.mean - d.half:+.{digits}f} to {d.mean + d.half:+.{digits}f} | {d.seeds} | {_p(t.p)} | "
                         f"{_holm_cell(adjusted)} |")  # fmt: skip
        lines += [
            "",
            f"Not resolved ({len(ranked) - len(hits)}): the smallest true difference the design detects with 80% "
            "power at the observed sd (MDE), and the seeds a true difference of the observed size would need for "
            "80% power.",
            "",
            "| comparison | metric | Δ ± 95% | seeds | raw p | MDE (80% power) | seeds for 80% power |",
            "|---|---|---|---|---|---|---|",
        ]
        for t, _ in ranked:
            if t.diff.resolved:
                continue
            digits, d = RESOLVED_METRICS[t.comparison.metric], t.diff
            needed = "-" if t.seeds80 is None else str(t.seeds80)
            cells = [t.comparison.label, t.comparison.metric, f"{d.mean:+.{digits}f} ± {d.half:.{digits}f}",
                     str(d.seeds), _p(t.p), f"{t.mde80:.{digits}f}", needed]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


RESOLVED_INTRO = """# Every comparison, resolved or not

Written by `python benchmarks/findings.py resolved` from [runs.csv](runs.csv) alone (also by `tables`). Every
comparison docs/findings.md makes, on every metric of runs.csv: avg@64, pass@4, pass@16, pass@64 (final
evaluation, 200 held-out problems x 64 samples; pass@1 is avg@64), entropy (mean sampling entropy of the last 10
steps) and steps_to_target (first periodic evaluation with avg@8 >= 0.35, in steps; paired over the seeds where
both runs reached it). Δ = the first - the second, paired by seed (same starting policy, prompt order and
problems); the start: the seed's policy before training (no entropy there). 95% interval: paired t. raw p: the
two-sided paired-t p-value. Holm-adjusted p: Holm-Bonferroni within each family the comparison belongs to (bold
below 0.05); each family is named with its size, and a family of "..., metric" exists for every metric:

- methods: each method vs grpo (7); eapo vs each other method but grpo (6); each method vs the start (8);
  "EAPO beats X": eapo vs grpo, dapo, forking, entroadv, kl_cov on avg@64 and on pass@64 (the ten claim parts).
- alpha: each alpha (0, 0.1, 0.2 = eapo, 0.4, 1.0) vs grpo (5), vs dapo (5), vs the start (5); the alphas
  pairwise (10; eapo - the other, else the larger alpha - the smaller).
- quadrants: each single-quadrant run vs grpo (4); the quadrants pairwise (6; PHR, NHR, PLR, NLR in this order,
  the earlier first); mean of PHR and NHR - mean of PLR and NLR (1); grpo and each quadrant vs the start (5).

MDE (80% power): the smallest true mean difference the paired t-test at two-sided 0.05 detects with probability
0.8 over the seeds it had, at the observed sd of the differences (noncentral t; with 5 seeds, 1.68 sd); a null
result bounds the effect to below about this size, it does not show it is 0. Seeds for 80% power: the seeds a
true difference of the observed mean and sd would need to be detected 8 times in 10 (`eapo.evaluation.stats`).
The "seeds needed" of the other tables is smaller: the seeds at which the observed mean would just reach
significance, about 50% power.
"""


def write_resolved(runs_csv: Path, out: Path) -> Path:
    """`out` (docs/findings/resolved.md): every comparison of `comparison_families`, from `runs_csv` alone."""
    families = comparison_families()
    by_setting = read_runs_csv(runs_csv)
    sections = [resolved_markdown(s, by_setting[s], families) for s in SETTINGS if s in by_setting]
    out.write_text(RESOLVED_INTRO + "\n" + "\n".join(sections))
    return out


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
    resolved = sub.add_parser("resolved", help="only rewrite resolved.md, from runs.csv alone (no run folders)")
    resolved.add_argument("--runs_csv", type=Path, default=DOCS / "runs.csv")
    resolved.add_argument("--out", type=Path, default=DOCS / "resolved.md")
    args = parser.parse_args(argv)
    if args.command == "resolved":
        if not args.runs_csv.is_file():
            parser.exit(2, f"findings: error: no runs.csv at {args.runs_csv}\n")
        print(f"[findings] wrote {write_resolved(args.runs_csv, args.out)}")
        return 0
    if args.command == "tables":
        for path in write_findings_tables(args.runs):
            print(f"[findings] wrote {path.relative_to(ROOT)}")
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
