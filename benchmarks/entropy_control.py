"""The positive control of docs/findings.md (issue 25 part 2): can the tiny world's stress setting tell entropy
methods apart at all? In the 5-seed stress runs even entropy_bonus at its preset (entropy_coef 0.001) kept no more
entropy than grpo (+0.0015, not resolved), so a null result for EAPO there says nothing until some method is seen to
move the final entropy.

Ladders, each from its strongest setting down (the rule is pre-registered in docs/findings.md section 5):
- entropy_bonus with `--entropy_coef` 0.1, 0.03, 0.01 (the preset is 0.001);
- eapo with `--eapo_alpha` 8, 4 (beyond `eapo_phi` 2: the shaping term may reach 4x and 2x |A| and flip signs).

Stage 1 trains grpo and each ladder's strongest setting, `--seeds` seeds each (5). Then, for each ladder whose last
setting *differs* from grpo, the next weaker setting; a ladder stops at the first setting that does not differ, or
at its end. Differs: the final entropy (mean sampling entropy of the last 10 steps), paired with grpo seed by seed,
has a Holm-adjusted p below 0.05, Holm's correction over every comparison of the control made so far. A ladder
whose strongest setting does not differ means the setting cannot tell that method from grpo at any coefficient of
the ladder; the table gives the smallest effect 5 seeds detect with 80% power.

Every run is an `eapo train` run folder `runs/findings-control/stress/<variant>-seed<seed>` with the stress
setting's flags and evaluation (`findings.ablate_args`), trained by `eapo ablate`'s machinery (resumable: finished
runs are kept). grpo here is the same command as the stress grpo runs of docs/findings/runs.csv, so its numbers
should repeat theirs. After every finished run `docs/findings/stress-control.md` and `stress-control.csv` are
rewritten (they never touch runs.csv or the other tables).

Usage:
    python benchmarks/entropy_control.py run --seeds 5 --jobs 2 --threads 1
    python benchmarks/entropy_control.py tables
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eapo.cli.ablate import Variant, run_all, summarise_run
from eapo.cli.compare import write_csv
from eapo.evaluation.stats import (
    format_interval,
    holm_adjusted,
    mean_ci95,
    minimum_detectable_effect,
    paired_difference,
    paired_t_p_value,
)
from findings import BASELINE, DOCS, ROOT, ablate_args, finished

SETTING = "stress"
RUNS = ROOT / "runs" / "findings-control" / SETTING
# method -> (option, values from the strongest down)
LADDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "entropy_bonus": ("entropy_coef", ("0.1", "0.03", "0.01")),
    "eapo": ("eapo_alpha", ("8", "4")),
}
LEVEL = 0.05
METRIC = "entropy"  # summarise_run: mean sampling entropy of the last 10 steps
SECONDARY = ("avg@64", "pass@16", "pass@64")

Results = dict[str, dict[int, dict[str, Any]]]  # variant -> seed -> summarise_run


def ladder_variant(method: str, value: str) -> Variant:
    option = LADDERS[method][0]
    return Variant(f"{method}-{option}{value}", ("--method", method, f"--{option}", value))


GRPO = Variant(BASELINE, ("--method", BASELINE))


@dataclass(frozen=True)
class Tested:
    """One variant's final entropy against grpo's, paired by seed; `holm`: adjusted over the control's family."""

    variant: str
    seeds: int
    mean: float
    half: float | None
    sd: float | None
    p: float
    holm: float

    @property
    def differs(self) -> bool:
        return self.holm < LEVEL

    @property
    def mde80(self) -> float | None:
        return None if self.sd is None or self.seeds < 2 else minimum_detectable_effect(self.sd, self.seeds)


def complete(results: Results, name: str, seeds: int) -> bool:
    return len(results.get(name, {})) >= seeds


def tested(results: Results, seeds: int, metric: str = METRIC) -> dict[str, Tested]:
    """Every ladder variant with `seeds` finished runs (and grpo's), tested against grpo on `metric`, Holm over
    all of them."""
    if not complete(results, BASELINE, seeds):
        return {}
    base = {s: r[metric] for s, r in results[BASELINE].items()}
    raw = {}
    for method, (_, values) in LADDERS.items():
        for value in values:
            name = ladder_variant(method, value).name
            if complete(results, name, seeds):
                d = paired_difference({s: r[metric] for s, r in results[name].items()}, base)
                if d.seeds >= 2 and d.sd is not None:
                    raw[name] = (d, paired_t_p_value(d.mean, d.sd, d.seeds))
    holm = holm_adjusted([p for _, p in raw.values()])
    return {
        name: Tested(name, d.seeds, d.mean, d.half, d.sd, p, h)
        for (name, (d, p)), h in zip(raw.items(), holm, strict=True)
    }


def next_variants(results: Results, seeds: int) -> list[Variant]:
    """What the pre-registered rule trains next (empty: the control is done). Stage 1: grpo and each ladder's
    strongest setting; then per ladder the next weaker setting while the last one differs from grpo."""
    stage1 = [GRPO, *(ladder_variant(m, values[0]) for m, (_, values) in LADDERS.items())]
    missing = [v for v in stage1 if not complete(results, v.name, seeds)]
    if missing:
        return missing
    verdicts = tested(results, seeds)
    todo = []
    for method, (_, values) in LADDERS.items():
        for value in values:
            name = ladder_variant(method, value).name
            if name not in verdicts:
                todo.append(ladder_variant(method, value))
                break
            if not verdicts[name].differs:
                break
    return todo


def ladder_verdicts(results: Results, seeds: int) -> dict[str, str]:
    """Per ladder, in words: the weakest setting that differs from grpo, or that none does."""
    verdicts, pending = tested(results, seeds), next_variants(results, seeds)
    out = {}
    for method, (option, values) in LADDERS.items():
        names = [ladder_variant(method, v).name for v in values]
        done = [(v, verdicts[n]) for v, n in zip(values, names, strict=True) if n in verdicts]
        differing = [v for v, t in done if t.differs]
        if not done:
            out[method] = "not run yet"
        elif not differing:
            out[method] = (f"no setting differs from grpo (strongest {option} {values[0]}): the setting cannot tell "
                           f"{method} from grpo by its final entropy")  # fmt: skip
        else:
            out[method] = f"differs from grpo down to {option} {differing[-1]}"
        if any(v.name in names for v in pending):
            out[method] += " (the ladder goes on: not final)"
    return out


def collect(runs: Path = RUNS) -> Results:
    return {
        name: {int(d.name.rsplit("-seed", 1)[1]): summarise_run(d, 0.35) for d in dirs}
        for name, dirs in finished(runs).items()
    }


def control_markdown(results: Results, seeds: int) -> str:
    verdicts = tested(results, seeds)
    base = results.get(BASELINE, {})
    lines = [
        "| variant | seeds | final entropy | Δ entropy vs grpo ± 95% | raw p | Holm p | differs | MDE (80% power) | "
        + " | ".join(f"Δ {m} vs grpo ± 95%" for m in SECONDARY) + " |",
        "|" + "---|" * (8 + len(SECONDARY)),
    ]  # fmt: skip
    names = [BASELINE] + [ladder_variant(m, v).name for m, (_, vs) in LADDERS.items() for v in vs]
    for name in names:
        runs = results.get(name)
        if not runs:
            continue
        cells = [name, str(len(runs)), format_interval(*mean_ci95([r[METRIC] for r in runs.values()]), digits=4)]
        t = verdicts.get(name)
        if t is None:
            cells += ["-"] * 5
        else:
            cells += [format_interval(t.mean, t.half, 4, sign=True), f"{t.p:.2g}", f"{t.holm:.2g}",
                      "yes" if t.differs else "no", "-" if t.mde80 is None else f"{t.mde80:.4f}"]  # fmt: skip
        for metric in SECONDARY:
            d = paired_difference({s: r.get(metric) for s, r in runs.items()},
                                  {s: r.get(metric) for s, r in base.items()})  # fmt: skip
            cells.append("-" if name == BASELINE or d.mean is None else format_interval(d.mean, d.half, sign=True))
        lines.append("| " + " | ".join(cells) + " |")
    ladders = "\n".join(f"- **{m}**: {text}" for m, text in ladder_verdicts(results, seeds).items())
    return (
        "# stress setting: the positive control (entropy methods vs grpo)\n\n"
        "Written by `python benchmarks/entropy_control.py tables`; the rule is pre-registered in docs/findings.md "
        "section 5. Stress setting (`recipes/tiny-stress.yaml`, 900 steps), final evaluation 200 held-out problems x "
        "64 samples. Final entropy: mean sampling entropy (nats) of the last 10 steps, mean ± 95% t half-width over "
        "seeds; Δ: paired with grpo seed by seed; Holm p: adjusted over every variant of this table; differs: Holm p "
        f"< {LEVEL}; MDE: the smallest true Δ entropy the paired t-test over these seeds detects with 80% power. The "
        "Δ of avg@64 and pass@k are secondary (no decision rests on them).\n\n"
        + "\n".join(lines) + "\n\n## Verdicts\n\n" + ladders + "\n"
    )  # fmt: skip


def write_tables(results: Results, seeds: int, docs: Path = DOCS) -> list[Path]:
    if BASELINE not in results:
        return []
    docs.mkdir(parents=True, exist_ok=True)
    md, csv_path = docs / f"{SETTING}-control.md", docs / f"{SETTING}-control.csv"
    md.write_text(control_markdown(results, seeds))
    rows = [
        {"variant": name, "seed": seed, **{k: v for k, v in run.items() if not k.startswith("_")}}
        for name, by_seed in results.items() for seed, run in sorted(by_seed.items())
    ]  # fmt: skip
    write_csv(csv_path, rows)
    return [md, csv_path]


def run(args: argparse.Namespace) -> int:
    ablate = ablate_args(SETTING, args.seeds, args.jobs, args.threads)
    args.runs.mkdir(parents=True, exist_ok=True)

    def tables(_: str = "") -> None:
        for path in write_tables(collect(args.runs), args.seeds, args.docs):
            print(f"[control] wrote {path}", flush=True)

    while todo := next_variants(collect(args.runs), args.seeds):
        print(f"[control] training {', '.join(v.name for v in todo)}, {args.seeds} seeds", flush=True)
        # grpo first: it evaluates each seed's starting policy (a finished grpo run is kept)
        failures = run_all([GRPO, *(v for v in todo if v != GRPO)], ablate, args.runs, tables)
        if failures:
            for failure in failures:
                print(f"[control] {failure}")
            return 1
    tables()
    for method, text in ladder_verdicts(collect(args.runs), args.seeds).items():
        print(f"[control] {method}: {text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="train what the rule asks for next, until it stops; tables after every run")
    go.add_argument("--seeds", type=int, default=5)
    go.add_argument("--jobs", type=int, default=2, help="runs trained at the same time")
    go.add_argument("--threads", type=int, default=1, help="torch threads per run")
    tables = sub.add_parser("tables", help="only rewrite the tables from the finished run folders")
    tables.add_argument("--seeds", type=int, default=5)
    for p in (go, tables):
        p.add_argument("--runs", type=Path, default=RUNS, help="run folders")
        p.add_argument("--docs", type=Path, default=DOCS, help="where stress-control.md and .csv go")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.exit(2, f"entropy_control: error: --seeds {args.seeds}: the paired test needs at least 2 seeds\n")
    if args.command == "run" and min(args.jobs, args.threads) < 1:
        parser.exit(2, f"entropy_control: error: --jobs {args.jobs} --threads {args.threads}: both must be >= 1\n")
    if args.command == "tables":
        for path in write_tables(collect(args.runs), args.seeds, args.docs):
            print(f"[control] wrote {path}")
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
