"""The real-model experiments: issue 24's recipe sweep and issue 25's pre-registered comparison
(docs/findings.md section 4), on SmolLM2-135M-Instruct (`smollm2`) and Gemma-3-270m (`gemma3`), task
`wordproblems:1` with text prompts.

- `sweep`: method grpo only (the pre-registration), one run per grid point x seed, each trained for a budget of
  `--minutes` of optimizer-step time (`eapo train --max_train_minutes`; `--max_steps` only caps it), constant
  learning rate. Evaluated on held-out problems 200-399 (`--eval_offset 200`; the comparison uses 0-199): 200
  problems x 4 samples before and after, 100 x 2 every `--heldout_eval_steps` steps, all at
  `--eval_max_new_tokens` tokens whatever the grid sets, so that every point of a seed starts from the same
  measured policy (evaluated once per seed, by its first point). Run folders
  `runs/realmodel/<model>/sweep/<point>-seed<s>`, the point named by its grid values (`lr1e-5_batch16`).
- `compare`: grpo, dapo, eapo and eapo with alpha 0, each with its own preset, otherwise the recipe
  (`recipes/<model>-wordproblems.yaml`, which must set `max_steps`; its `heldout_eval_steps` is the periodic
  interval). Final evaluation 200 x 16 on problems 0-199, periodic 100 x 4. Run folders
  `runs/realmodel/<model>/compare/<variant>-seed<s>`.
- `pick`: the sweep's rule (docs/benchmarks.md, written before its results) applied to the finished points: the
  largest change in accuracy among well-formatted completions on seed 0, changes within 0.02 of it tied and the
  lowest learning rate among them taken; prints the point, its learning rate and its steps (the recipe's
  `max_steps`), or one of them with `--print` (for a script that runs seed 1 of the pick).
- `keep`: copies each finished run's small files (`KEPT_FILES`: its evaluation, record, options, metrics and
  held-out curve; no weights or checkpoints) from `--runs` to `--to` (default `docs/realmodel/runs`, in the
  repository), `<model>/<experiment>/<run>/` as there, so that the tables can be written from the repository
  (`tables --runs docs/realmodel/runs`) and a finished run outlives the machine that trained it; a file kept
  already is copied again only where it differs (a record written after eval.json), a run kept with another
  eval.json stops the command with one line.
- `restore`: the inverse of `keep` on a new machine: copies each finished run kept in `--from` (default
  `docs/realmodel/runs`) back under `--runs` where its folder is missing, so that `compare` reuses it instead of
  training it again (`scripts/compare_queue.sh` does this at every start); a folder there is left alone.
- `status`: the comparison's progress per model under `--runs`: runs finished, the run in progress (step reached,
  newest checkpoint), runs not started, and a rough time left from the finished runs' mean wall.
- `tables`: `docs/realmodel/<model>-sweep.md` (per grid point: accuracy, accuracy among well-formatted
  completions and format rate before -> after with the paired change over seeds, steps, minutes of training,
  sampling entropy of the first and last 10% of steps), `docs/realmodel/<model>-compare.md` (per variant: means
  ± 95%; the pre-registered hypotheses H1-H4 with Holm's correction within the family {H1, H2, H3} on each
  metric (a comparison not testable yet counted with p = 1), the verdict (a gain in accuracy read as a reasoning
  gain only where accuracy among well-formatted completions rises too, as pre-registered) and, for a null result,
  the smallest effect the seeds detect with 80% power; interim while a variant lacks the planned seeds
  (`PLANNED_SEEDS`), a run whose final evaluation failed left out and named, different problems within a seed
  named; every variant
  paired with grpo on every metric; the generated list of every comparison, each pair of variants and each variant
  against the start on every pre-registered metric, resolved ones first with raw and Holm-adjusted p; the final
  pass@k curve for k = 1..16 from each problem's counts) and a figure per experiment (`<model>-<experiment>.png`:
  held-out accuracy during training and the entropy of each quadrant over steps, mean over seeds, up to the
  shortest run's steps; for the comparison also the final pass@k curve); after a comparison's tables,
  `docs/realmodel/carryover.md`: each part of a docs/findings.md section-3 claim that the comparison tests, its
  verdict in the tiny world's two settings (docs/findings/<setting>-claims.md) beside each model's (read from the
  `<model>-compare.md` pages in the docs folder, so that two worktrees' tables meet there).

Runs go through `eapo ablate`'s machinery (`run_all`: `--jobs` subprocesses of `--threads` torch threads, seed by
seed). A finished run (eval.json) is never rerun; an unfinished one resumes from its newest checkpoint (saved every
`--save_steps` steps, the last one kept; a finished run's checkpoints are deleted, its `model/` kept); a folder
holding a run with other options stops the command with one line. After each finished run its record
(`realmodel.json`: the git commit of the code, the flags, the wall time) is written and the model's tables are
rewritten.

**Run the experiments from a pinned worktree**, so that every run of an experiment uses one commit (the command
refuses a checkout whose src/, benchmarks/ or recipes/ have uncommitted changes, and an `eapo` imported from
elsewhere):

    git worktree add ../eapo-exp <commit> && cd ../eapo-exp
    PYTHONPATH=src nohup python benchmarks/realmodel.py sweep --model smollm2 \\
        --grid lr=1e-5,2e-5,5e-5 batch=16,32 --seeds 2 --jobs 1 --threads 2 --minutes 45 > sweep-smollm2.log 2>&1 &
    PYTHONPATH=src nohup python benchmarks/realmodel.py compare --model smollm2 --seeds 5 > compare-smollm2.log 2>&1 &
    PYTHONPATH=src python benchmarks/realmodel.py tables      # only rewrite the tables (also from another checkout:
                                                              # --runs ../eapo-exp/runs/realmodel)

The tables are written into that worktree's docs/realmodel/; the branch that reports them keeps each finished run
(`python benchmarks/realmodel.py keep --runs ../eapo-exp/runs/realmodel`, into its docs/realmodel/runs/) and writes
them from there (`tables --runs docs/realmodel/runs`). Grid keys:
`lr` (learning_rate), `batch` (per_device_train_batch_size: completions a step), `G` (num_generations), `len`
(max_completion_length), or any `eapo train` option by its name; the options the grid does not set are `SWEEP_BASE`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eapo.cli.ablate import ENTROPY_KEY, Variant, heldout_k, run_all, train_flags
from eapo.cli.options import check_counts
from eapo.cli.validate import ValidationError
from eapo.errors import EapoError
from eapo.evaluation.metrics import pass_at_k
from eapo.evaluation.stats import NO_INTERVAL, format_interval, holm_adjusted, mean_ci95, paired_difference
from eapo.io import read_jsonl
from eapo.trainer.checkpoint import HELDOUT_FILE, METRICS_FILE, WALL_FILE
from findings import (
    COLLAPSE,
    START,
    Claim,
    Comparison,
    Family,
    Part,
    _paired,
    _side,
    _start,
    _stat,
    claims_table,
    finished,
    paired_comparison,
    read_claims_table,
    resolved_comparisons,
)

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "realmodel"
DOCS = ROOT / "docs" / "realmodel"
MODELS = {"smollm2": "fetch_smollm2", "gemma3": "fetch_gemma3"}  # name -> eapo.models.gguf function (cached folder)
TASK = "wordproblems:1"
TINY = "tiny"  # --model_path tiny: the shipped tiny world (smoke tests)
RECORD = "realmodel.json"
GRID_ALIASES = {"lr": "learning_rate", "batch": "per_device_train_batch_size", "G": "num_generations",
                "len": "max_completion_length"}  # fmt: skip
# the sweep's options where the grid sets none (constant learning rate: a time budget ends the run at any step)
SWEEP_BASE = {"learning_rate": "2e-5", "lr_scheduler_type": "constant", "per_device_train_batch_size": "16",
              "num_generations": "8", "max_completion_length": "48"}  # fmt: skip
COMPARE_VARIANTS = (
    Variant("grpo", ("--method", "grpo")),
    Variant("dapo", ("--method", "dapo")),
    Variant("eapo", ("--method", "eapo")),
    Variant("eapo-alpha0", ("--method", "eapo", "--eapo_alpha", "0")),
)
COMPARE_VARIANTS_NAMES = tuple(v.name for v in COMPARE_VARIANTS)
BASELINE = "grpo"
HYPOTHESES = {"H1": ("eapo", "grpo"), "H2": ("eapo", "eapo-alpha0"), "H3": ("eapo", "dapo")}  # each: eapo > other
# docs/findings.md section 4's exploratory addition (2026-12-07 09:14 UTC): held-out accuracy during training
EXPLORATORY = "heldout_mean"
GENERATED_KEY = "entropy/generated_mean"  # every completion generated for a step, dynamic sampling's dropped too
GENERATED = "entropy_generated"  # its mean over the last 10% of steps (the 11:52 amendment, exploratory)
FORMAT_METRICS = ("accuracy", "accuracy_formatted", "format_rate")  # the three numbers (eval.json)
EVAL_BATCH = 64  # sequences per evaluation generate call (the real-model default is 16)
PLANNED_SEEDS = {"smollm2": 5, "gemma3": 3}  # the comparison's seeds (docs/findings.md section 4)
PLANNED_EVAL = (200, 16)  # its final evaluation: problems x samples
PICK_SEED, PICK_TIE = 0, 0.02  # the sweep's rule: seed 0 chooses; changes within 0.02 of the best count as tied


# ----- what to run ---------------------------------------------------------------------------------------


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
    """`["lr=1e-5,2e-5", "batch=16"]` -> `[("lr", ["1e-5", "2e-5"]), ("batch", ["16"])]` (the order given)."""
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or not parts:
            raise ValidationError(f"--grid {spec!r}: use KEY=V1,V2 (keys: {', '.join(GRID_ALIASES)} or an option)")
        if any(not re.fullmatch(r"[A-Za-z0-9.+-]+", v) or "seed" in v for v in parts):
            raise ValidationError(f"--grid {spec!r}: values must be numbers or plain words (they name run folders)")
        if key in (k for k, _ in grid) or GRID_ALIASES.get(key, key) == "method":
            raise ValidationError(f"--grid {spec!r}: {key} is given twice or cannot be swept")
        grid.append((key, parts))
    return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[Variant]:
    """One grpo variant per point of the grid's product, named `key value` pairs joined by `_` (`base`: no grid)."""
    points = []
    for values in itertools.product(*(vals for _, vals in grid)):
        pairs = list(zip((k for k, _ in grid), values, strict=True))
        name = "_".join(f"{k}{v}" for k, v in pairs) or "base"
        flags = [x for k, v in pairs for x in (f"--{GRID_ALIASES.get(k, k)}", v)]
        points.append(Variant(name, ("--method", "grpo", *flags)))
    return points


def model_flags(model: str, model_path: str | None, task: str) -> list[str]:
    """The model, task and prompt flags of every run: the model's cached folder (`eapo.models.gguf`, converted on
    first use), or `--model_path` (`tiny`: the shipped tiny world)."""
    if model_path is None:
        from eapo.models import gguf

        model_path = str(getattr(gguf, MODELS[model])())
    path = [] if model_path == TINY else ["--model_path", str(model_path)]
    return [*path, "--task", task, "--prompt_format", "text"]


def _run_flags(args: argparse.Namespace) -> list[str]:
    """Flags shared by every run of an experiment, after ablate's own (the later flag wins)."""
    return [
        *model_flags(args.model, args.model_path, args.task), "--logging_steps", "1", "--report", "false",
        "--eval_offset", str(args.eval_offset), "--save_strategy", "steps", "--save_steps", str(args.save_steps),
        "--save_total_limit", "1", "--eval_batch_size", str(EVAL_BATCH),
    ]  # fmt: skip


def _ablate_args(args: argparse.Namespace, steps: int, heldout_every: int, extra: list[str]) -> argparse.Namespace:
    """The options `eapo.cli.ablate.run_all` and `train_flags` read."""
    return argparse.Namespace(
        seeds=args.seeds, steps=steps, eval_k=args.eval_k, eval_problems=args.eval_problems,
        heldout_eval_steps=heldout_every, heldout_eval_problems=args.heldout_eval_problems,
        heldout_eval_k=args.heldout_eval_k, jobs=args.jobs, threads=args.threads, train_flags=extra,
    )  # fmt: skip


def sweep_plan(args: argparse.Namespace) -> tuple[list[Variant], argparse.Namespace]:
    """The sweep's grid points and run options (method grpo, a time budget, the sweep's held-out window)."""
    grid = parse_grid(args.grid)
    swept = {GRID_ALIASES.get(k, k) for k, _ in grid}
    base = [x for k, v in SWEEP_BASE.items() if k not in swept for x in (f"--{k}", v)]
    extra = [*_run_flags(args), *base, "--max_train_minutes", str(args.minutes),
             "--eval_max_new_tokens", str(args.eval_max_new_tokens)]  # fmt: skip
    return grid_points(grid), _ablate_args(args, args.max_steps, args.heldout_eval_steps, extra)


def read_recipe(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ValidationError(f"no recipe at {path}: choose it with the sweep first, or pass --recipe")
    recipe = yaml.safe_load(path.read_text()) or {}
    if not isinstance(recipe, dict) or not isinstance(recipe.get("max_steps"), int):
        raise ValidationError(f"recipe {path} sets no max_steps: the comparison trains every variant for its steps")
    return recipe


def compare_plan(args: argparse.Namespace) -> tuple[list[Variant], argparse.Namespace]:
    """The pre-registered variants and run options: the recipe's steps and periodic interval, 200 x 16 on 0-199."""
    recipe = read_recipe(args.recipe)
    every = int(recipe.get("heldout_eval_steps") or max(1, recipe["max_steps"] // 10))
    if args.seeds is None:  # the pre-registered number for the model
        args = argparse.Namespace(**{**vars(args), "seeds": PLANNED_SEEDS[args.model]})
    extra = [*_run_flags(args), "--config", str(args.recipe)]
    return list(COMPARE_VARIANTS), _ablate_args(args, recipe["max_steps"], every, extra)


# ----- running, with a record of the code ------------------------------------------------------------------


def _git(*argv: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=True).stdout.strip()


def code_record(allow_dirty: bool = False) -> dict[str, Any]:
    """The commit the runs use. Refused (`ValidationError`): an `eapo` imported from outside this checkout (run
    with PYTHONPATH=src), and uncommitted changes to src/, benchmarks/ or recipes/ unless `allow_dirty`."""
    import eapo

    source = Path(eapo.__file__).resolve().parent
    if source != ROOT / "src" / "eapo":
        raise ValidationError(f"eapo is imported from {source}, not from this checkout: run with PYTHONPATH=src")
    dirty = bool(_git("status", "--porcelain", "--", "src", "benchmarks", "recipes"))
    if dirty and not allow_dirty:
        raise ValidationError("src/, benchmarks/ or recipes/ have uncommitted changes: run from a pinned worktree "
                              "(git worktree add ../eapo-exp <commit>), see the module docstring")  # fmt: skip
    return {"commit": _git("rev-parse", "HEAD"), "dirty": dirty}


def _on_done(
    message: str, out: Path, plan: tuple[list[Variant], argparse.Namespace], code: dict[str, Any], keep: bool
) -> None:
    """After a run ends: a finished one gets its record (commit, flags, wall time) and loses its checkpoints."""
    name, _, rest = message.partition(": ")
    match = re.fullmatch(r"done in (\d+) s", rest)
    run_dir = out / name
    if match is None or not (run_dir / "eval.json").is_file():
        return
    variants, ablate = plan
    point, seed = name.rsplit("-seed", 1)
    variant = next(v for v in variants if v.name == point)
    record = {**code, "variant": point, "seed": int(seed), "wall_seconds": int(match.group(1)),
              "finished": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "flags": train_flags(variant, int(seed), ablate, variant == variants[0])}  # fmt: skip
    (run_dir / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    if not keep:
        for checkpoint in run_dir.glob("checkpoint-*"):
            shutil.rmtree(checkpoint)


def check_numbers(args: argparse.Namespace) -> None:
    """One line naming the first count or budget out of range (before anything is recorded or trained)."""
    counts = ["seeds", "jobs", "threads", "eval_problems", "eval_k", "heldout_eval_problems", "heldout_eval_k",
              "save_steps", "heldout_eval_steps", "max_steps", "eval_max_new_tokens"]  # fmt: skip
    check_counts(args, {name: 1 for name in counts if getattr(args, name, None) is not None})
    if args.eval_offset < 0:
        raise ValidationError(f"--eval_offset {args.eval_offset}: give the first held-out problem, 0 or more")
    minutes = getattr(args, "minutes", None)
    if minutes is not None and not 0 < minutes < float("inf"):
        raise ValidationError(f"--minutes {minutes}: give each run's optimizer-step time in minutes, above 0")


def run_experiment(args: argparse.Namespace, experiment: str) -> int:
    check_numbers(args)
    code = code_record(args.allow_dirty)
    plan = sweep_plan(args) if experiment == "sweep" else compare_plan(args)
    out = args.runs / args.model / experiment
    out.mkdir(parents=True, exist_ok=True)
    # the training subprocesses (`python -m eapo`) import this checkout's code, not an installed eapo
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

    def done(message: str) -> None:
        _on_done(message, out, plan, code, args.keep_checkpoints)
        for path in write_tables(args.model, args.runs, args.docs):
            print(f"[realmodel] wrote {path}", flush=True)

    failures = run_all(*plan, out, done)
    for path in write_tables(args.model, args.runs, args.docs):
        print(f"[realmodel] wrote {path}", flush=True)
    for failure in failures:
        print(f"[realmodel] {failure}")
    return 1 if failures else 0


# ----- tables ----------------------------------------------------------------------------------------------

Numbers = dict[str, Any]  # one run's numbers (`run_numbers`)


def _tail_mean(lines: list[dict[str, Any]], key: str, last: bool) -> float | None:
    """Mean of `key` over the first (or last) 10% of the steps, at least one step."""
    values = [line[key] for line in lines if isinstance(line.get(key), (int, float))]
    if not values:
        return None
    n = max(1, len(values) // 10)
    return statistics.fmean(values[-n:] if last else values[:n])


def run_numbers(run_dir: Path) -> Numbers:
    """A finished run's numbers: accuracy (avg@k), accuracy_formatted, format_rate and pass@k after training
    (and `before_*` where the run evaluated its start), steps, training minutes (None where not measured), step
    minutes (the sum of TRL's logged `step_time`: what the time budget counts), wall minutes (`wall_seconds`),
    commit (its record, when written), the sampling entropy of the first and last 10% of
    steps."""
    summary = json.loads((run_dir / "eval.json").read_text())
    k = summary["k"]
    record = json.loads((run_dir / RECORD).read_text()) if (run_dir / RECORD).is_file() else {}
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    metrics = read_jsonl(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).is_file() else []
    heldout = read_jsonl(run_dir / HELDOUT_FILE) if (run_dir / HELDOUT_FILE).is_file() else []

    def three(result: dict[str, Any]) -> dict[str, Any]:
        keys = {"accuracy": f"avg@{k}", f"pass@{k}": f"pass@{k}", **{m: m for m in FORMAT_METRICS[1:]}}
        return {name: result.get(key) for name, key in keys.items()} | {"pass_curve": pass_curve(result, k)}

    out = three(summary["after"]) | {f"before_{m}": v for m, v in three(summary.get("before") or {}).items()}
    wall = wall_seconds(run_dir)
    curve = [(int(h["step"]), h[f"avg@{h['k']}"]) for h in sorted(heldout, key=lambda h: h["step"])]
    return out | {
        "k": k, "task": config.get("task", TASK), "steps": summary["steps"], "problems": summary.get("problems"),
        "problems_sha256": (summary["after"] or {}).get("problems_sha256"),
        "learning_rate": config.get("learning_rate"),
        "train_minutes": None if summary.get("train_seconds") is None else summary["train_seconds"] / 60,
        "step_minutes": sum(line["step_time"] for line in metrics if "step_time" in line) / 60 or None,
        "wall_minutes": None if wall is None else wall / 60,
        "commit": record.get("commit"),
        "entropy_first": _tail_mean(metrics, ENTROPY_KEY, last=False),
        "entropy": _tail_mean(metrics, ENTROPY_KEY, last=True),
        GENERATED: _tail_mean(metrics, GENERATED_KEY, last=True),
        "heldout": curve,
        EXPLORATORY: _heldout_mean(curve),
    }  # fmt: skip


def _heldout_mean(curve: list[tuple[int, float]]) -> float | None:
    """The mean held-out accuracy of a run's periodic evaluations (`(step, accuracy)`) after step 0 (step 0 is
    the seed's start, the same for every variant); None without one."""
    values = [accuracy for step, accuracy in curve if step > 0]
    return statistics.fmean(values) if values else None


def pass_curve(result: dict[str, Any], k: int) -> list[float] | None:
    """pass@j for j = 1..k of one evaluation, from its correct samples per problem (the unbiased estimator
    averaged over the problems); None where the evaluation kept no per-problem counts."""
    counts = result.get("correct_per_problem")
    if not counts:
        return None
    return [statistics.fmean(pass_at_k(k, int(c), j) for c in counts) for j in range(1, k + 1)]


def mean_pass_curve(by_seed: dict[int, Numbers]) -> tuple[int, list[float]] | None:
    """(seeds with a curve, pass@j for j = 1..k averaged over them); None when no run kept its counts."""
    curves = [n["pass_curve"] for n in by_seed.values() if n.get("pass_curve")]
    if not curves:
        return None
    return len(curves), [statistics.fmean(c[j] for c in curves) for j in range(len(curves[0]))]


def collect(out: Path) -> tuple[dict[str, dict[int, Numbers]], dict[int, Numbers]]:
    """(variant -> seed -> numbers of its finished runs, seed -> the starting policy's numbers), from `out`."""
    runs = {
        name: {int(d.name.rsplit("-seed", 1)[1]): run_numbers(d) for d in dirs} for name, dirs in finished(out).items()
    }
    starts: dict[int, Numbers] = {}
    for by_seed in runs.values():
        for seed, numbers in by_seed.items():
            if numbers.get("before_accuracy") is not None:
                starts.setdefault(seed, {m[len("before_") :]: v for m, v in numbers.items() if m.startswith("before_")})
    return runs, starts


def _values(by_seed: dict[int, Numbers], key: str) -> dict[int, float]:
    return {s: n[key] for s, n in by_seed.items() if n.get(key) is not None}


def _interval(values: list[float], digits: int = 3) -> str:
    """Mean ± 95% t half-width; one value alone (one seed: no interval)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return format_interval(*mean_ci95(values), digits=digits) if values else "-"


def _mean_cell(by_seed: dict[int, Numbers], key: str, digits: int = 3) -> str:
    """Mean ± 95% over the seeds that have `key`, saying how many when some do not ('-' when none)."""
    values = list(_values(by_seed, key).values())
    cell = _interval(values, digits)
    return f"{cell} ({len(values)} of {len(by_seed)} seeds)" if 0 < len(values) < len(by_seed) else cell


def _change_cell(after: dict[int, float], before: dict[int, float]) -> str:
    d = paired_difference(after, before)
    if d.mean is None:
        return "-"
    cell = format_interval(d.mean, d.half, sign=True) if d.half is not None else f"{d.mean:+.3f}"  # one seed
    return f"**{cell}**" if d.resolved else cell


def _commits(runs: dict[str, dict[int, Numbers]]) -> str:
    commits = sorted({str(n["commit"])[:10] for by_seed in runs.values() for n in by_seed.values() if n["commit"]})
    return ", ".join(commits) or "not recorded"


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def runs_markdown(runs: dict[str, dict[int, Numbers]], starts: dict[int, Numbers], label: str = "point") -> list[str]:
    """One row per run (point x seed): steps, step minutes (TRL's step_time summed), run wall minutes, each of the
    three numbers and pass@k before -> after, the sampling entropy of the first -> last 10% of steps, and held-out
    accuracy at each periodic evaluation (`step: avg@k`)."""
    k = next(n["k"] for by_seed in runs.values() for n in by_seed.values())
    metrics = [*FORMAT_METRICS, f"pass@{k}"]
    head = [label, "seed", "steps", "step min", "run wall min", *[f"{m} before -> after" for m in metrics],
            "entropy first -> last", "held-out accuracy during training (step: avg)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, by_seed in runs.items():
        for seed, n in sorted(by_seed.items()):
            start = starts.get(seed, {})
            cells = [name, str(seed), str(n["steps"]), _number(n.get("step_minutes"), 1), _number(n["wall_minutes"], 1)]
            cells += [f"{_number(start.get(m))} -> {_number(n.get(m))}" for m in metrics]
            cells.append(f"{_number(n.get('entropy_first'))} -> {_number(n.get('entropy'))}")
            cells.append(", ".join(f"{step}: {acc:.3f}" for step, acc in n.get("heldout", [])) or "-")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def sweep_markdown(model: str, runs: dict[str, dict[int, Numbers]], starts: dict[int, Numbers]) -> str:
    """Per grid point: each of the three numbers before -> after and its change paired over seeds (bold: the 95%
    interval excludes 0), steps, training minutes, wall minutes, entropy of the first -> last 10% of steps."""
    head = ["point", "seeds", "steps", "training min", "run wall min"]
    for m in FORMAT_METRICS:
        head += [f"{m} before -> after", f"Δ {m}"]
    lines = ["| " + " | ".join([*head, "entropy first -> last"]) + " |", "|" + "---|" * (len(head) + 1)]
    for name, by_seed in runs.items():
        cells = [name, str(len(by_seed)), _mean_cell(by_seed, "steps", 0), _mean_cell(by_seed, "train_minutes", 1),
                 _mean_cell(by_seed, "wall_minutes", 1)]  # fmt: skip
        for m in FORMAT_METRICS:
            before = {s: starts[s][m] for s in by_seed if s in starts and starts[s].get(m) is not None}
            start = _interval(list(before.values()))
            cells += [f"{start} -> {_mean_cell(by_seed, m)}", _change_cell(_values(by_seed, m), before)]
        cells.append(f"{_mean_cell(by_seed, 'entropy_first')} -> {_mean_cell(by_seed, 'entropy')}")
        lines.append("| " + " | ".join(cells) + " |")
    k, task = next((n["k"], n["task"]) for by_seed in runs.values() for n in by_seed.values())
    return (
        f"# {model}: recipe sweep (grpo, {task})\n\nWritten by `python benchmarks/realmodel.py tables`. Held-out "
        f"problems 200-399 (the comparison evaluates 0-199), k = {k} samples each, temperature 1; before: the seed's "
        "starting policy (evaluated once per seed); Δ: after - before paired by seed, mean ± 95% t half-width (bold: "
        "excludes 0); accuracy = avg@k; accuracy_formatted: among completions with an `Answer:`. Training min: "
        "the trainer's wall time (its steps and the periodic evaluations between them; the budget counts the steps "
        "only); run wall: the whole run with its evaluations before and after. Entropy: mean sampling "
        f"entropy (nats) of the first and last 10% of steps. Code: {_commits(runs)}.\n\n" + "\n".join(lines) + "\n"
        "\n## Every run\n\nBefore: the seed's starting policy; held-out accuracy during training: the periodic "
        "evaluations (fewer problems and samples than the final one, the same problems at every step).\n\n"
        + "\n".join(runs_markdown(runs, starts))
        + "\n"
    )


def pick_point(
    runs: dict[str, dict[int, Numbers]], starts: dict[int, Numbers], seed: int = PICK_SEED, tie: float = PICK_TIE
) -> tuple[str, dict[str, float]]:
    """The sweep's rule (docs/benchmarks.md, written before its results): the point with the largest change in
    accuracy among well-formatted completions on `seed`; points within `tie` of it count as tied and the lowest
    learning rate among them is taken. Returns (the pick, every point's change)."""
    start = starts.get(seed, {}).get("accuracy_formatted")
    gains = {
        name: by_seed[seed]["accuracy_formatted"] - start
        for name, by_seed in runs.items()
        if start is not None and seed in by_seed and by_seed[seed].get("accuracy_formatted") is not None
    }
    if not gains:
        raise ValidationError(f"no finished sweep point of seed {seed} with its starting policy evaluated")
    best = max(gains.values())
    tied = [name for name, gain in gains.items() if gain >= best - tie]
    return min(tied, key=lambda name: runs[name][seed]["learning_rate"]), gains


def compare_metrics(k: int) -> list[str]:
    """The pre-registered primary metric first, then the secondary ones."""
    return ["accuracy", "accuracy_formatted", f"pass@{k}", "format_rate", "entropy"]


def metric_table(runs: dict[str, dict[int, Numbers]], k: int) -> dict[str, dict[int, dict[str, Any]]]:
    """variant -> seed -> each pre-registered metric (what `findings.resolved_comparisons` reads)."""
    return {
        v: {s: {m: n.get(m) for m in compare_metrics(k)} for s, n in by_seed.items()} for v, by_seed in runs.items()
    }


def hypothesis_rows(runs: dict[str, dict[int, Numbers]], k: int, interim: bool = False) -> list[list[str]]:
    """H1-H3 (eapo > grpo, eapo with alpha 0, dapo) on every metric, Holm within {H1, H2, H3} per metric, and H4
    (eapo keeps more entropy than grpo, a family of one): Δ ± 95%, seeds, raw p, Holm p, verdict, MDE. A comparison
    with fewer than 2 paired seeds is shown as not testable yet and enters Holm's correction with p = 1, so that a
    family keeps its three members while runs are missing. On the primary metric a hypothesis that holds is read, as
    the pre-registration says, as a reasoning gain where the same comparison also holds (Holm) on accuracy among
    well-formatted completions, else as a format gain. `interim`: fewer seeds than planned (verdicts provisional)."""
    table = metric_table(runs, k)
    names = {(a, b): h for h, (a, b) in HYPOTHESES.items()}
    families = [[Comparison((a,), (b,), m) for a, b in HYPOTHESES.values()] for m in compare_metrics(k)]
    families.append([Comparison(("eapo",), ("grpo",), "entropy")])  # H4, alone
    results: dict[tuple[str, str], tuple[Comparison, Any, float]] = {}
    for family in families:
        for c, t, p_holm in _tested_family(table, family):
            label = "H4" if len(family) == 1 else names[(c.variant[0], c.reference[0])]
            results[(label, c.metric)] = (c, t, p_holm)
    rows = []
    for (label, metric), (c, t, p_holm) in results.items():
        if t is None:
            rows.append(_hypothesis_row(label, c, t, p_holm, "-", table))
            continue
        verdict = _verdict(t.diff, p_holm) if label == "H4" or metric == "accuracy" else "(secondary)"
        if verdict == "holds" and label != "H4":
            formatted = results.get((label, "accuracy_formatted"))
            reasoning = formatted is not None and formatted[1] is not None and _verdict(formatted[1].diff,
                                                                                        formatted[2]) == "holds"
            verdict += ": a reasoning gain" if reasoning else ": a format gain (not on accuracy_formatted)"
        if interim and verdict != "(secondary)":
            verdict += " (interim)"
        rows.append(_hypothesis_row(label, c, t, p_holm, verdict, table))
    return rows


def _tested_family(table: dict[str, Any], family: list[Comparison]) -> list[tuple[Comparison, Any, float]]:
    """(comparison, its paired statistics or None below 2 paired seeds, its Holm-adjusted p within the family, an
    untestable comparison counting with p = 1)."""
    tested = [paired_comparison(table, c) for c in family]
    adjusted = holm_adjusted([1.0 if t is None else t.p for t in tested])
    return list(zip(family, tested, adjusted, strict=True))


def _hypothesis_row(label: str, c: Comparison, t: Any, p_holm: float, verdict: str, table: dict[str, Any]) -> list[str]:
    """hypothesis, comparison, metric, Δ ± 95%, seeds, raw p, Holm p, verdict, MDE; "not testable yet" with the
    paired seeds there are when `t` is None."""
    if t is None:
        seeds = paired_difference(_side(table, c.variant, c.metric), _side(table, c.reference, c.metric)).seeds
        return [label, c.label, c.metric, "not testable yet", str(seeds), "-", "-", "-", "-"]
    return [label, c.label, c.metric, format_interval(t.diff.mean, t.diff.half, 4, sign=True), str(t.diff.seeds),
            f"{t.p:.3g}", f"{p_holm:.3g}", verdict, f"{t.mde80:.4f}"]  # fmt: skip


def exploratory_rows(runs: dict[str, dict[int, Numbers]], metric: str = EXPLORATORY) -> list[list[str]]:
    """An exploratory addition of docs/findings.md section 4 (`metric`: the mean held-out accuracy during training,
    `heldout_mean`, or the final entropy over every completion generated, `entropy_generated`) for H1-H3's three
    comparisons, Holm within the three, as the hypotheses' rows but with no verdict."""
    table = {v: {s: {metric: n.get(metric)} for s, n in by_seed.items()} for v, by_seed in runs.items()}
    family = [Comparison((a,), (b,), metric) for a, b in HYPOTHESES.values()]
    return [_hypothesis_row(label, c, t, p_holm, "(exploratory)", table)
            for label, (c, t, p_holm) in zip(HYPOTHESES, _tested_family(table, family), strict=True)]  # fmt: skip


def variant_order(names: Any) -> list[str]:
    """The variants in `names` in the pre-registration's order (grpo, dapo, eapo, eapo-alpha0), any others after
    them sorted by name."""
    return [v for v in COMPARE_VARIANTS_NAMES if v in names] + sorted(set(names) - set(COMPARE_VARIANTS_NAMES))


def comparison_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Every pair of variants once, as `first - second`: eapo first where it is in the pair, else the later variant
    of `names` first (grpo, dapo, eapo, eapo-alpha0 -> dapo - grpo, eapo - grpo, eapo-alpha0 - grpo, eapo - dapo,
    eapo-alpha0 - dapo, eapo - eapo-alpha0)."""
    pairs = []
    for i, earlier in enumerate(names):
        for later in names[i + 1 :]:
            pairs.append((earlier, later) if earlier == "eapo" else (later, earlier))
    return pairs


def every_comparison(runs: dict[str, dict[int, Numbers]], starts: dict[int, Numbers], k: int) -> list[str]:
    """Every pair of variants and every variant against the start, on every pre-registered metric: those whose 95%
    paired interval excludes 0 (whichever method they favour) with raw and Holm-adjusted p (within the family of
    that metric's comparisons), then the others with the smallest effect the seeds detect with 80% power."""
    metrics = compare_metrics(k)
    table = metric_table(runs, k)
    table[START] = {s: {m: n.get(m) for m in metrics if m != "entropy"} for s, n in starts.items()}
    pairs = comparison_pairs(variant_order(runs))
    families = [Family("compare", f"the variants pairwise, {m}", tuple(Comparison((a,), (b,), m) for a, b in pairs))
                for m in metrics]  # fmt: skip
    for m in (m for m in metrics if m != "entropy"):  # the start has no final entropy
        families.append(Family("compare", f"each variant vs the start, {m}", tuple(Comparison((v,), (START,), m)
                                                                                   for v in runs)))  # fmt: skip
    results = resolved_comparisons(table, families)
    hits = [r for r in results.values() if r[0].diff.resolved]
    lines = [f"{len(results)} comparisons; {len(hits)} with a 95% paired interval excluding 0.", "",
             "| comparison | metric | Δ | 95% interval | seeds | raw p | Holm p (family, its size) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for t, adjusted in hits:
        d = t.diff
        holm = "; ".join(f"{p:.3g} ({name})" for name, p in adjusted.items())
        lines.append(f"| {t.comparison.label} | {t.comparison.metric} | {d.mean:+.4f} | {d.mean - d.half:+.4f} to "
                     f"{d.mean + d.half:+.4f} | {d.seeds} | {t.p:.3g} | {holm} |")  # fmt: skip
    lines += ["", "Not resolved: Δ ± 95%, and the smallest true difference these seeds detect with 80% power.", "",
              "| comparison | metric | Δ ± 95% | seeds | raw p | MDE (80% power) |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for t, _ in results.values():
        if not t.diff.resolved:
            cells = [t.comparison.label, t.comparison.metric, format_interval(t.diff.mean, t.diff.half, 4, sign=True),
                     str(t.diff.seeds), f"{t.p:.3g}", f"{t.mde80:.4f}"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def pass_curve_rows(runs: dict[str, dict[int, Numbers]], starts: dict[int, Numbers], k: int) -> list[str]:
    """pass@j for j = 1..k after training, mean over seeds, per variant (and the start)."""
    lines = ["| variant | seeds | " + " | ".join(f"pass@{j}" for j in range(1, k + 1)) + " |", "|" + "---|" * (k + 2)]
    rows = ([("start", starts)] if starts else []) + list(runs.items())
    for name, by_seed in rows:
        if (curve := mean_pass_curve(by_seed)) is not None:
            seeds, means = curve
            lines.append(f"| {name} | {seeds} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    return lines


BEATS = ("grpo", "dapo")  # the baselines of section 3's "EAPO beats X" that the comparison runs
# section 3's claims that the comparison's variants cannot test
UNTESTED_CLAIMS = ("EAPO beats Forking, EntroAdv and KL-Cov (not run on the real models)", "the five quadrant claims "
                   "(no single-quadrant runs)", "alpha 0.2 against alpha 0.1, 0.4 and 1.0 (alpha 0 only)")  # fmt: skip


def claim_statistics(runs: dict[str, dict[int, Numbers]], starts: dict[int, Numbers], k: int) -> dict[str, Any]:
    """variant -> seed -> what the claims read (`findings.run_statistics`' names): accuracy (`avg`), pass@k
    (`passk`), the final entropy (`entropy_last`, last 10% of steps) and its ratio to the first 10%'s, and the
    seed's start (`before_avg`, `before_passk`)."""
    out: dict[str, Any] = {}
    for variant, by_seed in runs.items():
        for seed, n in by_seed.items():
            row = {"avg": n["accuracy"], "passk": n[f"pass@{k}"]}
            if n.get("entropy") is not None and n.get("entropy_first"):
                row |= {"entropy_last": n["entropy"], "entropy_ratio": n["entropy"] / n["entropy_first"]}
            if seed in starts:
                row |= {"before_avg": starts[seed]["accuracy"], "before_passk": starts[seed][f"pass@{k}"]}
            out.setdefault(variant, {})[seed] = {key: v for key, v in row.items() if v is not None}
    return out


def model_claims(runs: dict[str, dict[int, Numbers]], starts: dict[int, Numbers], k: int) -> list[Claim]:
    """The claims of docs/findings.md section 3 that grpo, dapo, eapo and eapo with alpha 0 can test, by section
    3's rule (one-sided parts, 95% intervals, no correction), so a real model reads as the tiny world does; pass@k
    at k (the largest here) stands for "large k", the first and last 10% of steps for the first and last 10."""
    stats, passk = claim_statistics(runs, starts, k), f"pass@{k}"
    ratio = "entropy, last / first 10% of steps"
    return [
        Claim("Plain GRPO collapses entropy and loses pass@k at large k", [
            Part(f"grpo: {ratio}", _stat(stats, "grpo", "entropy_ratio"), COLLAPSE, f"{COLLAPSE} (collapse)", -1),
            Part(f"grpo: {passk}", _stat(stats, "grpo", "passk"), _start(stats, "passk"), "start, same seed", -1),
        ]),
        Claim("EAPO keeps entropy stable where GRPO collapses it", [
            Part(f"eapo: {ratio}", _stat(stats, "eapo", "entropy_ratio"), COLLAPSE, f"{COLLAPSE} (collapse)", +1),
            _paired(stats, "eapo", "grpo", "entropy_last", "entropy, last 10% of steps", +1),
        ]),
        *(Claim(f"EAPO beats {b} (accuracy)", [_paired(stats, "eapo", b, "avg", "accuracy", +1)]) for b in BEATS),
        *(Claim(f"EAPO beats {b} ({passk})", [_paired(stats, "eapo", b, "passk", passk, +1)]) for b in BEATS),
        Claim("alpha 0.2 is best (accuracy; against alpha 0 only)",
              [_paired(stats, "eapo", "eapo-alpha0", "avg", "accuracy", +1)]),
        Claim("Training is stable for alpha up to 0.4 (accuracy above the start; alpha 0 and 0.2 only)", [
            Part(f"{v}: accuracy", _stat(stats, v, "avg"), _start(stats, "avg"), "start, same seed", +1)
            for v in ("eapo-alpha0", "eapo")
        ]),
    ]  # fmt: skip


def _verdict(d: Any, p_holm: float) -> str:
    """The pre-registered rule: holds (Holm p < 0.05, Δ > 0), fails (the interval excludes 0 below), else not
    resolved."""
    if p_holm < 0.05 and d.mean > 0:
        return "holds"
    return "fails" if d.resolved and d.mean < 0 else "not resolved"


def protocol_notes(model: str, runs: dict[str, dict[int, Numbers]]) -> tuple[dict[str, dict[int, Numbers]], list[str]]:
    """(the runs the statistics use, in the variants' order, notes): runs whose final evaluation failed are left
    out and named (the pre-registration reruns them with the same seed); runs evaluated on other than the planned
    problems x samples, and seeds whose variants were evaluated on different problems, are named; fewer seeds than
    planned makes the page interim."""
    notes, kept = [], {}
    failed = [f"{v} seed {s}" for v, by_seed in runs.items() for s, n in sorted(by_seed.items())
              if n["accuracy"] is None]  # fmt: skip
    if failed:
        notes.append("Left out, their final evaluation failed (the pre-registration reruns such a run with the same "
                     "seed): " + ", ".join(failed) + ".")  # fmt: skip
    for v in variant_order(runs):
        kept[v] = {s: n for s, n in sorted(runs[v].items()) if n["accuracy"] is not None}
    size = [f"{v} seed {s} ({n['problems']} x {n['k']})" for v, by_seed in kept.items()
            for s, n in sorted(by_seed.items()) if (n["problems"], n["k"]) != PLANNED_EVAL]  # fmt: skip
    if size:
        notes.append(f"Evaluated on other than the planned {PLANNED_EVAL[0]} problems x {PLANNED_EVAL[1]} samples: "
                     + ", ".join(size) + ".")  # fmt: skip
    by_seed_problems: dict[int, set[str]] = {}
    for by_seed in kept.values():
        for s, n in by_seed.items():
            if n.get("problems_sha256"):
                by_seed_problems.setdefault(s, set()).add(n["problems_sha256"])
    if mixed := sorted(s for s, shas in by_seed_problems.items() if len(shas) > 1):
        notes.append("The variants of seed(s) " + ", ".join(map(str, mixed)) + " were evaluated on different "
                     "problems (problems_sha256 differs): their pairing is broken.")  # fmt: skip
    planned = PLANNED_SEEDS.get(model)
    have = {v.name: len(kept.get(v.name, {})) for v in COMPARE_VARIANTS}
    if planned is not None and min(have.values()) < planned:
        notes.append("**Interim**: finished seeds per variant " + ", ".join(f"{v} {n}" for v, n in have.items())
                     + f" of the planned {planned}; the verdicts are provisional until every variant has them.")
    return kept, notes


def compare_markdown(model: str, runs: dict[str, dict[int, Numbers]], starts: dict[int, Numbers]) -> str:
    k, task, steps = next((n["k"], n["task"], n["steps"]) for by_seed in runs.values() for n in by_seed.values())
    runs, notes = protocol_notes(model, runs)
    interim = any(note.startswith("**Interim**") for note in notes)
    tail = max(1, steps // 10)  # `_tail_mean`'s window
    metrics = compare_metrics(k)
    lines = [
        "| variant | seeds | " + " | ".join(metrics) + " | steps | step min | run wall min |",
        "|" + "---|" * (len(metrics) + 5),
    ]
    if starts:
        cells = " | ".join(_mean_cell(starts, m) for m in metrics)
        lines.append(f"| start | {len(starts)} | {cells} | - | - | - |")
    for name, by_seed in runs.items():
        cells = [_mean_cell(by_seed, m) for m in metrics] + [_mean_cell(by_seed, "steps", 0),
                                                              _mean_cell(by_seed, "step_minutes", 1),
                                                              _mean_cell(by_seed, "wall_minutes", 1)]  # fmt: skip
        lines.append(f"| {name} | {len(by_seed)} | " + " | ".join(cells) + " |")
    hyp = ["| hypothesis | comparison | metric | Δ ± 95% | seeds | raw p | Holm p | verdict | MDE (80% power) |",
           "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    hyp += ["| " + " | ".join(row) + " |" for row in hypothesis_rows(runs, k, interim)]
    pairs = ["| comparison | " + " | ".join(f"Δ {m}" for m in metrics) + " |", "|" + "---|" * (len(metrics) + 1)]
    for name, by_seed in runs.items():
        if name != BASELINE and BASELINE in runs:
            cells = [_change_cell(_values(by_seed, m), _values(runs[BASELINE], m)) for m in metrics]
            pairs.append(f"| {name} - {BASELINE} | " + " | ".join(cells) + " |")
    return (
        f"# {model}: the pre-registered comparison ({task}, docs/findings.md section 4)\n\nThe runs: `python "
        f"benchmarks/realmodel.py compare --model {model} --seeds {PLANNED_SEEDS.get(model, 5)}` from a checkout "
        "pinned at the commit named below (the same command resumes them); written by `python "
        f"benchmarks/realmodel.py tables`. Final evaluation: held-out problems 0-199 x {k} samples, temperature 1; "
        f"accuracy = avg@{k} (primary); entropy: mean sampling entropy of the last 10% of steps (rounded down: the "
        f"last {tail} of {steps}). Mean ± 95% t "
        f"half-width over seeds. Step min: TRL's `step_time` summed over the steps kept; run wall min: the run over "
        f"all its sessions (loading, evaluations before, during and after, and the steps of a session that ended "
        f"after its last checkpoint, redone when it resumed). Code: {_commits(runs)}.\n\n"
        + "".join(note + "\n\n" for note in notes) + "\n".join(lines)
        + "\n\n## Hypotheses\n\n"
        "Δ = eapo - the other, paired by seed; raw p: two-sided paired t; Holm p: Holm-Bonferroni within {H1, H2, "
        "H3} on each metric (H4 alone; a comparison not testable yet counts with p = 1). Verdicts on the primary "
        "metric and H4 only. Holds: Holm p < 0.05 and Δ > 0, read as a reasoning gain where the same comparison "
        "also holds on accuracy_formatted, else as a format gain (the pre-registration); fails: the interval "
        "excludes 0 below it; "
        "MDE: the smallest true difference these seeds detect with 80% power at the observed sd. H4 and selection: "
        "dapo, eapo and eapo with alpha 0 train with dynamic sampling, so their logged entropy is that of the groups "
        "kept for the update (mixed rewards, and any zero-advantage filler), grpo's that of every group; eapo - grpo "
        "on entropy mixes the shaping with that selection, and H2's entropy row (eapo - eapo with alpha 0, the same "
        "selection on both sides) is the shaping's own effect.\n\n"
        + "\n".join(hyp)
        + "\n\n## Exploratory: held-out accuracy during training\n\nNo verdict and no decision (docs/findings.md "
        "section 4, the addition of 09:14 UTC, written after grpo seed 0 finished near a ceiling): the mean of a "
        "run's periodic held-out evaluations after step 0 (avg over their problems and samples), Δ paired by seed "
        "for H1-H3's comparisons, Holm within the three.\n\n"
        + "\n".join(hyp[:2] + ["| " + " | ".join(row) + " |" for row in exploratory_rows(runs)])
        + "\n\n## Exploratory: entropy over every completion generated\n\nNo verdict and no decision (docs/findings.md "
        "section 4, the amendment of 11:52 UTC): `entropy/generated_mean`, the mean sampling entropy over every "
        "completion generated for a step (the groups dynamic sampling drops included, so that grpo and the "
        "dynamic-sampling variants are measured alike: the caveat on H4), mean of the same last steps, Δ paired by "
        "seed for H1-H3's comparisons, Holm within the three; a run whose code did not log it (before bdc67b1) counts "
        "as missing."
        "\n\n"
        + "\n".join(hyp[:2] + ["| " + " | ".join(row) + " |" for row in exploratory_rows(runs, GENERATED)])
        + "\n\n## The paper's claims on this model (docs/findings.md section 3's rule)\n\nSection 3's one-sided "
        "parts, 95% intervals over seeds, no correction, so this model reads as the tiny world does (the decision "
        "on H1-H4 is the table above). A claim holds when every part holds, fails when one fails. pass@"
        f"{k} stands for large k; entropy: mean sampling entropy of the first and last 10% of steps; collapse: a "
        f"ratio of at most {COLLAPSE}. Seeds needed: about 50% power; MDE: the smallest difference the seeds "
        "detect with 80% power.\n\n" + "\n".join(claims_table(model_claims(runs, starts, k), mde=True))
        + "\n\nNot testable with these variants: " + "; ".join(UNTESTED_CLAIMS) + "."
        + f"\n\n## Every variant paired with {BASELINE}\n\nBold: the 95% interval excludes 0.\n\n"
        + "\n".join(pairs)
        + "\n\n## Every comparison (the generated list)\n\nΔ = the first - the second, paired by seed; the start: "
        "the seed's policy before training (no entropy there). Holm p: Holm-Bonferroni within the family of the "
        "same comparisons on the same metric (the variants pairwise; each variant vs the start).\n\n"
        + "\n".join(every_comparison(runs, starts, k))
        + f"\n\n## pass@k curve\n\npass@k for k = 1..{k} after training (the unbiased estimator from each problem's "
        f"{k} samples), mean over seeds.\n\n" + "\n".join(pass_curve_rows(runs, starts, k))
        + "\n\n## Every run\n\nBefore: the seed's starting policy; entropy: mean sampling entropy (nats) of the "
        "first and last 10% of steps; held-out accuracy during training: avg over the periodic evaluation's "
        "problems and samples.\n\n" + "\n".join(runs_markdown(runs, starts, "variant")) + "\n"
    )


# ----- what carries over from the tiny world -----------------------------------------------------------------

FINDINGS_DOCS = ROOT / "docs" / "findings"
TINY_SETTINGS = ("default", "stress")  # docs/findings/<setting>-claims.md
_COLLAPSE_CLAIM = "Plain GRPO collapses entropy and loses pass@k at large k"
_KEEP_CLAIM = "EAPO keeps entropy stable where GRPO collapses it"
_TINY_STABLE = "Training is stable for alpha up to 0.4 (avg@64 above the start)"
_REAL_STABLE = "Training is stable for alpha up to 0.4 (accuracy above the start; alpha 0 and 0.2 only)"
# one row per part of a section-3 claim that the real-model comparison tests: (what the part claims, the sign the
# claim gives its difference, the tiny world's part, the real model's part), each part as (claim, part, against) in
# its claims table; "pass@K" in a real model's part stands for its largest k
CARRYOVER = [
    ("grpo's entropy collapses (last / first at most 0.5)", "ratio - 0.5 < 0",
     (_COLLAPSE_CLAIM, "grpo: entropy, last / first 10 steps", "0.5 (collapse)"),
     (_COLLAPSE_CLAIM, "grpo: entropy, last / first 10% of steps", "0.5 (collapse)")),
    ("grpo ends below the start at large k (pass@64; real: pass@16)", "grpo - start < 0",
     (_COLLAPSE_CLAIM, "grpo: pass@64", "start, same seed"), (_COLLAPSE_CLAIM, "grpo: pass@K", "start, same seed")),
    ("eapo's entropy does not collapse (last / first above 0.5)", "ratio - 0.5 > 0",
     (_KEEP_CLAIM, "eapo: entropy, last / first 10 steps", "0.5 (collapse)"),
     (_KEEP_CLAIM, "eapo: entropy, last / first 10% of steps", "0.5 (collapse)")),
    ("eapo ends with more entropy than grpo", "eapo - grpo > 0",
     (_KEEP_CLAIM, "eapo: entropy, last 10 steps", "grpo, same seed"),
     (_KEEP_CLAIM, "eapo: entropy, last 10% of steps", "grpo, same seed")),
    *((f"eapo beats {b} on accuracy (avg@64; real: avg@16)", f"eapo - {b} > 0",
       (f"EAPO beats {b} (avg@64)", "eapo: avg@64", f"{b}, same seed"),
       (f"EAPO beats {b} (accuracy)", "eapo: accuracy", f"{b}, same seed")) for b in BEATS),
    *((f"eapo beats {b} at large k (pass@64; real: pass@16)", f"eapo - {b} > 0",
       (f"EAPO beats {b} (pass@64)", "eapo: pass@64", f"{b}, same seed"),
       (f"EAPO beats {b} (pass@K)", "eapo: pass@K", f"{b}, same seed")) for b in BEATS),
    ("alpha 0.2 beats alpha 0 on accuracy", "eapo - eapo-alpha0 > 0",
     ("alpha 0.2 is best (avg@64)", "eapo: avg@64", "eapo-alpha0, same seed"),
     ("alpha 0.2 is best (accuracy; against alpha 0 only)", "eapo: accuracy", "eapo-alpha0, same seed")),
    *((f"{name} ends above the start on accuracy", f"{v} - start > 0",
       (_TINY_STABLE, f"{v}: avg@64", "start, same seed"), (_REAL_STABLE, f"{v}: accuracy", "start, same seed"))
      for name, v in (("alpha 0", "eapo-alpha0"), ("alpha 0.2", "eapo"))),
]  # fmt: skip


def _part_key(part: dict[str, str], real: bool) -> tuple[str, str, str]:
    key = (part["claim"], part["part"], part["against"])
    return tuple(re.sub(r"pass@\d+", "pass@K", cell) for cell in key) if real else key  # type: ignore[return-value]


def _carryover_cell(part: dict[str, str] | None) -> str:
    if part is None:
        return "-"
    verdict = part["part_verdict"]
    verdict = f"**{verdict}**" if verdict in ("holds", "fails") else verdict
    if NO_INTERVAL in part["delta"]:  # one seed: the cell says so already
        return f"{verdict} {part['delta']}"
    return f"{verdict} {part['delta']} ({part['seeds']} seeds)"


def carryover_markdown(docs: Path, findings_docs: Path = FINDINGS_DOCS) -> str | None:
    """docs/realmodel/carryover.md: each part of a section-3 claim that the real-model comparison tests, its verdict
    in each tiny-world setting (docs/findings/<setting>-claims.md) and on each real model whose comparison has a
    table (docs/realmodel/<model>-compare.md); None while no model has one."""
    columns: dict[str, dict[tuple[str, str, str], dict[str, str]]] = {}
    for setting in TINY_SETTINGS:
        path = findings_docs / f"{setting}-claims.md"
        if path.is_file():
            columns[f"tiny {setting}"] = {_part_key(p, False): p for p in read_claims_table(path.read_text())}
    models = [m for m in MODELS if (docs / f"{m}-compare.md").is_file()]
    if not models:
        return None
    for model in models:
        parts = read_claims_table((docs / f"{model}-compare.md").read_text())
        columns[model] = {_part_key(p, True): p for p in parts}
    lines = ["| part of the claim | claimed | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 2)]
    for label, claimed, tiny, real in CARRYOVER:
        cells = [_carryover_cell(parts.get(real if name in models else tiny)) for name, parts in columns.items()]
        lines.append(f"| {label} | Δ = {claimed} | " + " | ".join(cells) + " |")
    return (
        "# What carries over: the tiny world's claims on the real models\n\nWritten by `python "
        "benchmarks/realmodel.py tables` from docs/findings/<setting>-claims.md (the tiny world, 5 seeds) and "
        "docs/realmodel/<model>-compare.md (the pre-registered comparison, docs/findings.md section 4). One row per "
        "part of a claim of docs/findings.md section 3 that the comparison's variants (grpo, dapo, eapo, eapo with "
        "alpha 0) can test; each cell: the part's verdict by section 3's rule (the 95% interval of the paired "
        "difference over seeds excludes 0 on the claimed side: holds; on the other side: fails; else not resolved), "
        "Δ ± 95% and the seeds. No correction for the number of parts: the pre-registered decision, with Holm's, "
        "is each model's compare page. Tiny world: avg@64 and pass@64 on 200 held-out problems, entropy of the "
        "first and last 10 steps; real models: accuracy = avg@16 and pass@16 on 200 held-out problems, entropy of "
        "the first and last 10% of steps. The entropy rows read `entropy/sampling_mean`, which for eapo (dynamic "
        "sampling) is the entropy of the groups kept for the update, for grpo that of every group: docs/findings.md "
        "section 6 measures both over every completion generated. A part a model's finished runs cannot test yet: "
        "-.\n\n"
        + "\n".join(lines) + "\n"
    )


def write_carryover(docs: Path, findings_docs: Path = FINDINGS_DOCS) -> Path | None:
    """Rewrite `docs/carryover.md` (`carryover_markdown`) when a model's comparison has a table."""
    markdown = carryover_markdown(docs, findings_docs)
    if markdown is None:
        return None
    path = docs / "carryover.md"
    path.write_text(markdown)
    return path


def plot_experiment(
    path: Path, run_dirs: dict[str, list[Path]], runs: dict[str, dict[int, Numbers]] | None = None
) -> Path:
    """Held-out accuracy during training and the entropy of each quadrant over steps, mean over seeds; with `runs`
    (the comparison), the final pass@k curve too (k = 1..K, mean over seeds)."""
    from eapo.analysis.curves import Panel, mean_curve, plot_panels, seed_curves
    from eapo.core.quadrants import QUADRANTS

    def curves(file: str, key: str, present: str | None = None) -> dict[str, tuple[list[int], list[float]]]:
        every = present is None  # a quadrant's entropy: the mean over the seeds whose step had its tokens
        return {name: mean_curve(seed_curves(dirs, file, key, present), every) for name, dirs in run_dirs.items()}

    k = heldout_k(run_dirs, 2)
    panels = [Panel("Held-out accuracy", f"avg@{k} (mean over seeds)", curves(HELDOUT_FILE, f"avg@{k}"), markers=True)]
    for q in QUADRANTS:
        key, share = f"quadrant/{q.name}/entropy_mean", f"quadrant/{q.name}/token_share"
        panels.append(Panel(f"{q.name} entropy", "mean token entropy (nats)", curves(METRICS_FILE, key, share),
                            smooth=True))  # fmt: skip
    if runs is not None:
        passk = {}
        for name, by_seed in runs.items():
            if (curve := mean_pass_curve(by_seed)) is not None:
                passk[name] = (list(range(1, len(curve[1]) + 1)), curve[1])
        panels.insert(1, Panel("Final pass@k", "pass@k (mean over seeds)", passk, markers=True, xlabel="k"))
    return plot_panels(path, panels)


def learning_markdown(runs_root: Path) -> str | None:
    """The learning table (issue 24): each model's recipe point (the sweep's pick) with every seed it ran, one row
    per run as in a sweep's "Every run"; None before any model has a finished sweep."""
    sections = []
    for model in MODELS:
        out = runs_root / model / "sweep"
        if not out.is_dir() or not finished(out):
            continue
        runs, starts = collect(out)
        name = pick_point(runs, starts)[0]
        rows = runs_markdown({f"{model}: {name}": runs[name]}, starts)
        sections.append(rows if not sections else rows[2:])
    if not sections:
        return None
    return (
        "# Real models learning to reason: each recipe's sweep point, every seed\n\nWritten by `python "
        "benchmarks/realmodel.py tables`. grpo on `wordproblems:1`, evaluated on held-out problems 200-399 at "
        "temperature 1 (before: the seed's starting policy); accuracy = avg@k; accuracy_formatted: among "
        "completions with an `Answer:`. Step min: TRL's `step_time` summed over the steps (what the time budget "
        "counts); run wall: the whole run with its evaluations ('-': not measured). Entropy: mean sampling entropy "
        "(nats) of the first and last 10% of steps. The sweeps: `<model>-sweep.md`.\n\n"
        + "\n".join(line for rows in sections for line in rows)
        + "\n"
    )


def write_tables(model: str, runs_root: Path, docs: Path) -> list[Path]:
    """`<model>-sweep.md`/`.png` and `<model>-compare.md`/`.png` from the finished runs (those that exist); after a
    comparison's, `carryover.md` (`carryover_markdown`)."""
    written = []
    for experiment, markdown in (("sweep", sweep_markdown), ("compare", compare_markdown)):
        out = runs_root / model / experiment
        run_dirs = finished(out) if out.is_dir() else {}
        if not run_dirs:
            continue
        docs.mkdir(parents=True, exist_ok=True)
        runs, starts = collect(out)
        md = docs / f"{model}-{experiment}.md"
        md.write_text(markdown(model, runs, starts))
        figure = docs / f"{model}-{experiment}.png"
        written += [md, plot_experiment(figure, run_dirs, runs if experiment == "compare" else None)]
        if experiment == "compare" and (carryover := write_carryover(docs)) is not None:
            written.append(carryover)
    return written


KEPT = DOCS / "runs"  # finished runs' small files, in the repository (`keep`)
KEPT_FILES = ("eval.json", RECORD, "config.json", "config.yaml", "wall.json", METRICS_FILE, HELDOUT_FILE)


def keep_runs(runs_root: Path, kept: Path) -> list[Path]:
    """Copy every finished run under `runs_root` (`<model>/<experiment>/<run>/`, eval.json written) to the same
    place under `kept`, its `KEPT_FILES` only, each file that is missing there or differs (a record written after
    the run's eval.json arrives in a later call); returns the runs with a file copied. A run already under `kept`
    with another eval.json is refused (`ValidationError`), nothing copied."""
    todo: dict[Path, list[Path]] = {}
    for run_dir in _finished_runs(runs_root):
        target = kept / run_dir.relative_to(runs_root)
        if (target / "eval.json").is_file() and not _same(target / "eval.json", run_dir / "eval.json"):
            raise ValidationError(f"{target} holds another run than {run_dir} (their eval.json differ): move one "
                                  "of them away, then keep again")  # fmt: skip
        files = [run_dir / n for n in KEPT_FILES if (run_dir / n).is_file()]
        if changed := [f for f in files if not _same(target / f.name, f)]:
            todo[target] = changed
    for target, files in todo.items():
        target.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy2(file, target / file.name)
    return list(todo)


def restore_runs(kept: Path, runs_root: Path) -> list[Path]:
    """The inverse of `keep_runs` for a new machine: copy every finished run kept under `kept` whose folder is
    missing under `runs_root` (or empty) back there, its kept files as they are, so that `compare` counts it as
    finished (its options and eval.json are what `eapo compare` reuses a run by) and does not train it again;
    returns the runs restored. A folder already there, finished or not, is left alone."""
    restored = []
    for run_dir in _finished_runs(kept):
        target = runs_root / run_dir.relative_to(kept)
        if target.exists() and any(target.iterdir()):
            continue
        target.mkdir(parents=True, exist_ok=True)
        for name in KEPT_FILES:
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, target / name)
        restored.append(target)
    return restored


def _finished_runs(root: Path) -> list[Path]:
    """Every finished run folder under `root` (`<model>/<experiment>/<run>/`, eval.json written)."""
    return [run_dir for model in MODELS for experiment in ("sweep", "compare")
            for dirs in finished(root / model / experiment).values() for run_dir in dirs]  # fmt: skip


def _same(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


def _last_step(run_dir: Path) -> int:
    """The last step a run logged (0 before its first, while it evaluates its start)."""
    if not (run_dir / METRICS_FILE).is_file():
        return 0
    steps = [line["step"] for line in read_jsonl(run_dir / METRICS_FILE) if isinstance(line.get("step"), int)]
    return max(steps, default=0)


def wall_seconds(run_dir: Path) -> float | None:
    """A finished run's wall time: over all its sessions (eval.json's `wall_seconds`, else the run clock's
    wall.json), else its record's (realmodel.json: the last session only, for runs written before the run clock);
    None where none says (or a file is unreadable)."""
    for name, key in (("eval.json", "wall_seconds"), (WALL_FILE, "seconds"), (RECORD, "wall_seconds")):
        try:
            value = json.loads((run_dir / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def compare_progress(model: str, runs_root: Path) -> str:
    """`realmodel.py status`: the comparison of `model` under `runs_root` in one paragraph: its planned runs
    finished (with their mean wall), in progress (step reached of the run's steps, its newest resumable
    checkpoint) and not started, and a rough time left (the finished runs' mean wall times the runs left, a run
    in progress counted for the steps it lacks)."""
    import yaml

    from eapo.trainer.checkpoint import last_checkpoint

    out = runs_root / model / "compare"
    planned = [f"{v}-seed{s}" for s in range(PLANNED_SEEDS[model]) for v in COMPARE_VARIANTS_NAMES]
    walls: list[float | None] = []
    started: list[tuple[str, int, int, Path | None]] = []  # name, step reached, steps, checkpoint
    for name in planned:
        run_dir = out / name
        if (run_dir / "eval.json").is_file():
            walls.append(wall_seconds(run_dir))
        elif (run_dir / "config.yaml").is_file():
            steps = int((yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("max_steps") or 0)
            started.append((name, _last_step(run_dir), steps, last_checkpoint(run_dir)))
    left = len(planned) - len(walls)
    text = f"{model} ({out}): {len(walls)} of {len(planned)} runs finished"
    for name, step, steps, checkpoint in started:
        saved = f"checkpoint at step {checkpoint.name.rsplit('-', 1)[-1]}" if checkpoint else "no checkpoint yet"
        text += f"; {name} trained to step {step} of {steps or '?'} ({saved})"
    text += f"; {left - len(started)} not started."
    measured = [w for w in walls if w is not None]
    if not measured:
        return text + " No estimate of the time left before a run finishes."
    mean = statistics.fmean(measured) / 60
    todo = left - sum(step / steps for _, step, steps, _ in started if steps)
    return text + (
        f" Finished runs' mean wall {mean:.1f} min; about {todo * mean / 60:.1f} h left at that rate (a rough "
        "figure: a seed's first run also evaluates the start, and a session's end costs a run its steps since "
        "its last checkpoint)."
    )


def pick_summary(model: str, runs_root: Path, field: str = "summary") -> str:
    """`realmodel.py pick`: the rule's pick among `<runs>/<model>/sweep/`'s finished points, as one line (or one of
    its values)."""
    out = runs_root / model / "sweep"
    if not out.is_dir() or not finished(out):
        raise ValidationError(f"no finished sweep run in {out}: run `realmodel.py sweep --model {model}` first")
    runs, starts = collect(out)
    name, gains = pick_point(runs, starts)
    chosen = runs[name][PICK_SEED]
    mantissa, exponent = f"{chosen['learning_rate']:e}".split("e")  # 1.000000e-04 -> 1e-4, as a grid writes it
    lr = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    values = {"point": name, "learning_rate": lr, "max_steps": str(chosen["steps"]), "gain": f"{gains[name]:.4f}"}
    if field != "summary":
        return values[field]
    others = ", ".join(f"{n} {g:+.3f}" for n, g in sorted(gains.items(), key=lambda item: -item[1]))
    return (
        f"{name}: learning rate {values['learning_rate']}, max_steps {values['max_steps']} (seed {PICK_SEED}'s "
        f"change in accuracy among well-formatted completions, ties within {PICK_TIE} to the lowest learning rate: "
        f"{others})"
    )


# ----- command line ----------------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, eval_defaults: tuple[int, int, int, int, int]) -> None:
    problems, k, offset, periodic_problems, periodic_k = eval_defaults
    parser.add_argument("--model", choices=list(MODELS), required=True)
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at the same time")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--eval_problems", type=int, default=problems, help="held-out problems, before and after")
    parser.add_argument("--eval_k", type=int, default=k, help="samples per problem, before and after")
    parser.add_argument("--eval_offset", type=int, default=offset, help="first held-out problem evaluated")
    parser.add_argument("--heldout_eval_problems", type=int, default=periodic_problems, help="periodic evaluation")
    parser.add_argument("--heldout_eval_k", type=int, default=periodic_k, help="periodic evaluation")
    parser.add_argument("--save_steps", type=int, default=10, help="checkpoint period (an interrupted run resumes)")
    parser.add_argument("--keep_checkpoints", action="store_true", help="keep a finished run's checkpoints")
    parser.add_argument("--allow_dirty", action="store_true", help="run with uncommitted changes (not for results)")
    parser.add_argument("--model_path", default=None, help="override the model folder ('tiny': the tiny world)")
    parser.add_argument("--task", default=TASK, help="override the task (smoke tests)")
    parser.add_argument("--runs", type=Path, default=RUNS, help="run folders: <runs>/<model>/<experiment>/")
    parser.add_argument("--docs", type=Path, default=DOCS, help="where the tables go")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realmodel.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="grpo over a grid of recipes, a time budget each (issue 24)")
    _common(sweep, (200, 4, 200, 100, 2))
    sweep.add_argument("--grid", nargs="*", default=[], help="KEY=V1,V2 ... (lr, batch, G, len or an option)")
    sweep.add_argument("--minutes", type=float, default=45.0, help="optimizer-step time of each run")
    sweep.add_argument("--max_steps", type=int, default=10_000, help="a cap: the time budget ends the runs")
    sweep.add_argument("--heldout_eval_steps", type=int, default=10, help="periodic evaluation every N steps")
    sweep.add_argument("--eval_max_new_tokens", type=int, default=48, help="tokens of every evaluation sample")
    compare = sub.add_parser("compare", help="the pre-registered comparison (issue 25)")
    _common(compare, (200, 16, 0, 100, 4))
    compare.set_defaults(seeds=None)  # the pre-registration's number for the model (PLANNED_SEEDS)
    compare.add_argument("--recipe", type=Path, default=None, help="default: recipes/<model>-wordproblems.yaml")
    pick = sub.add_parser("pick", help="the sweep's rule: the recipe's point, learning rate and max_steps")
    pick.add_argument("--model", choices=list(MODELS), required=True)
    pick.add_argument("--runs", type=Path, default=RUNS)
    pick.add_argument("--print", dest="field", choices=["summary", "learning_rate", "max_steps", "point", "gain"],
                      default="summary", help="what to print (a single value for a script)")  # fmt: skip
    keep = sub.add_parser("keep", help="copy finished runs' small files into the repository (docs/realmodel/runs)")
    keep.add_argument("--runs", type=Path, default=RUNS, help="where the runs are trained: <runs>/<model>/...")
    keep.add_argument("--to", type=Path, default=KEPT, help="where they are kept")
    restore = sub.add_parser("restore", help="copy the kept finished runs back where a new machine trains them")
    restore.add_argument("--runs", type=Path, default=RUNS, help="where the runs are trained: <runs>/<model>/...")
    restore.add_argument("--from", dest="kept", type=Path, default=KEPT, help="where they are kept")
    status = sub.add_parser("status", help="the comparison's progress: runs finished, in progress, time left")
    status.add_argument("--runs", type=Path, default=RUNS, help="where the runs are trained: <runs>/<model>/...")
    status.add_argument("--model", choices=list(MODELS), default=None, help="default: every model")
    tables = sub.add_parser("tables", help="only rewrite the tables from the finished run folders")
    tables.add_argument("--runs", type=Path, default=RUNS)
    tables.add_argument("--docs", type=Path, default=DOCS)
    return parser


def _runs_folder(runs: Path) -> Path:
    if not runs.is_dir():
        raise ValidationError(f"--runs {runs} is not a folder: give the runs/realmodel folder of the checkout that "
                              "trains them")  # fmt: skip
    return runs


def _tables(args: argparse.Namespace) -> int:
    for model in MODELS:
        for path in write_tables(model, args.runs, args.docs):
            print(f"[realmodel] wrote {path}")
    learning = learning_markdown(args.runs)
    if learning is not None:
        (args.docs / "learning.md").write_text(learning)
        print(f"[realmodel] wrote {args.docs / 'learning.md'}")
    return 0


def _keep(args: argparse.Namespace) -> int:
    kept = keep_runs(_runs_folder(args.runs), args.to)
    for path in kept:
        print(f"[realmodel] kept {path}")
    print(f"[realmodel] {len(kept)} run(s) kept in {args.to}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    if args.runs.exists() and not args.runs.is_dir():
        raise ValidationError(f"--runs {args.runs} is a file, not a folder: give the runs/realmodel folder of the "
                              "worktree that trains them")  # fmt: skip
    if not args.kept.is_dir():
        raise ValidationError(f"--from {args.kept} is not a folder: give the docs/realmodel/runs folder of the "
                              "checkout that keeps the runs")  # fmt: skip
    restored = restore_runs(args.kept, args.runs)
    for path in restored:
        print(f"[realmodel] restored {path}")
    print(f"[realmodel] {len(restored)} run(s) restored from {args.kept}")
    return 0


def _status(args: argparse.Namespace) -> int:
    runs = _runs_folder(args.runs)
    for model in [args.model] if args.model else list(MODELS):
        print(compare_progress(model, runs))
    return 0


def _pick(args: argparse.Namespace) -> int:
    print(pick_summary(args.model, args.runs, args.field))
    return 0


def _experiment(args: argparse.Namespace) -> int:
    if args.command == "compare" and args.recipe is None:
        args.recipe = ROOT / "recipes" / f"{args.model}-wordproblems.yaml"
    return run_experiment(args, args.command)


COMMANDS = {"tables": _tables, "keep": _keep, "restore": _restore, "status": _status, "pick": _pick,
            "sweep": _experiment, "compare": _experiment}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValidationError, EapoError) as err:
        print(f"realmodel: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
