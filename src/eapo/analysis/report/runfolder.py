"""Reading an `eapo train` run folder: which files exist, the per-step metrics, held-out accuracy over steps.

Everything here is tolerant of a run that is still going or was cut short: a missing file is reported as
missing (not an error), a malformed line is skipped and counted. A path that is not a run folder at all, and
a file whose records are damaged (not text, a 'step' that is not an integer, eval.json scores that are not
numbers), are an `InputError` naming the file, raised before the report writes anything.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eapo.errors import InputError
from eapo.io import read_jsonl_counted

RUN_FILES = ("config.json", "metrics.jsonl")


@dataclass
class RunFolder:
    """What a run folder holds, read once. `notes` lists what is missing or could not be read."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    heldout: list[dict[str, float]] = field(default_factory=list)  # {"step", "avg", "pass", "k"} per point
    heldout_source: str = ""
    model_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)  # eval.json: held-out accuracy before and after


def check_run_folder(path: Path) -> None:
    """An `InputError` (one line; the CLI's exit code 2) when `path` is not an `eapo train` run folder."""
    if not path.is_dir():
        raise InputError(f"{path} is not a directory: pass the output_dir of an `eapo train` run")
    if not any((path / name).is_file() for name in RUN_FILES):
        raise InputError(
            f"{path} is not an eapo run folder (it has neither config.json nor metrics.jsonl): "
            "pass the output_dir of an `eapo train` run"
        )


def series(metrics: list[dict[str, Any]], key: str, present: str | None = None) -> tuple[list[int], list[float]]:
    """`(steps, values)` of `key` over the lines that have it as a finite number (in file order); with `present`,
    only the lines where that key is not 0 (a quadrant's `token_share`: without its tokens its means log 0)."""
    steps: list[int] = []
    values: list[float] = []
    for row in metrics:
        value = row.get(key)
        if present is not None and row.get(present, 1) == 0:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and "step" in row:
            steps.append(int(row["step"]))
            values.append(float(value))
    return steps, values


def heldout_points(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    """heldout.jsonl lines (`{"step", "k", "avg@<k>", "pass@<k>"}`) as `{"step", "k", "avg", "pass"}`, by step."""
    points = []
    for row in rows:
        k = row.get("k")
        if not isinstance(row.get("step"), int) or not isinstance(k, int):
            continue
        avg, pas = row.get(f"avg@{k}"), row.get(f"pass@{k}")
        if isinstance(avg, (int, float)) and isinstance(pas, (int, float)):
            points.append({"step": row["step"], "k": k, "avg": float(avg), "pass": float(pas)})
    return sorted(points, key=lambda p: p["step"])


def eval_points(summary: dict[str, Any]) -> list[dict[str, float]]:
    """The before (step 0) and after (last step) points of eval.json, with k read from its keys."""
    before, after = summary.get("before") or {}, summary.get("after") or {}  # null: that evaluation was off
    ks = [int(m.group(1)) for key in before if (m := re.fullmatch(r"avg@(\d+)", key))]
    if not ks or not isinstance(after, dict):
        return []
    k = ks[0]
    points = [{"step": 0, "k": k, "avg": float(before[f"avg@{k}"]), "pass": float(before.get(f"pass@{k}", 0.0))}]
    if f"avg@{k}" in after:
        last = int(summary.get("steps", 0))
        points.append(
            {"step": last, "k": k, "avg": float(after[f"avg@{k}"]), "pass": float(after.get(f"pass@{k}", 0.0))}
        )
    return points


def _holds_policy(folder: Path) -> bool:
    """A model folder, or a LoRA run's adapter-only folder (`eapo.models.policy.load_policy` loads both)."""
    return (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file()


def find_model(path: Path) -> Path | None:
    """`path/model` when it holds a policy (a LoRA adapter included), else the latest `checkpoint-N`, else None."""
    if _holds_policy(path / "model"):
        return path / "model"
    checkpoints = [p for p in path.glob("checkpoint-*") if _holds_policy(p) and p.name[11:].isdigit()]
    return max(checkpoints, key=lambda p: int(p.name[11:])) if checkpoints else None


def _read_json(path: Path, notes: list[str]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: not JSON, or not UTF-8 text
        notes.append(f"{path.name} could not be read ({err.__class__.__name__}): ignored")
        return {}
    return data if isinstance(data, dict) else {}


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """`read_jsonl_counted`, a file that is not text refused in one line (it used to be a traceback)."""
    try:
        return read_jsonl_counted(path)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (a JSON-lines log was expected): restore or delete it") from None
    except OSError as err:
        raise InputError(f"{path} cannot be read ({err.strerror or err}): fix its permissions or delete it") from None


def _damaged(path: Path, problem: str) -> InputError:
    return InputError(f"{path}: {problem}: restore the file from the run or delete it (the report skips it)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    """An integer (`3.0` too), never a bool, NaN or infinity."""
    return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()


def _is_step(value: Any) -> bool:
    return _is_integer(value) and value >= 0


_SCORE = re.compile(r"(avg|pass|maj)@\d+")
_RATES = ("format_rate", "accuracy", "accuracy_formatted")  # null where none was well formatted


def check_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """Every metrics.jsonl line that has a "step" has an integer one (the curves' x axis)."""
    for number, row in enumerate(rows, start=1):
        if "step" in row and not _is_step(row["step"]):
            raise _damaged(path, f"record {number} has 'step' {row['step']!r}, not an integer >= 0")


def check_summary(path: Path, summary: dict[str, Any]) -> None:
    """eval.json's fields the report reads: 'before' and 'after' mappings of metric: number (or null), and
    'steps' an integer."""
    for when in ("before", "after"):
        result = summary.get(when)
        if result is None:
            continue
        if not isinstance(result, dict):
            raise _damaged(path, f"{when!r} must be a mapping of metric: number, not {type(result).__name__}")
        for key, value in result.items():
            scored = isinstance(key, str) and _SCORE.fullmatch(key)
            if (scored and not _is_number(value)) or (key in _RATES and value is not None and not _is_number(value)):
                raise _damaged(path, f"{when!r} must be a mapping of metric: number ({key!r} is {value!r})")
    if "steps" in summary and not _is_step(summary["steps"]):
        raise _damaged(path, f"'steps' must be an integer >= 0, not {summary['steps']!r}")


def check_config(path: Path, config: dict[str, Any]) -> None:
    """config.json's sampling settings the token view reads, where present: numbers of the right kind."""
    for key in ("num_generations", "max_completion_length", "seed"):
        value = config.get(key, 0)
        if not _is_integer(value):
            raise _damaged(path, f"{key!r} must be an integer, not {value!r}")
    temperature = config.get("temperature", 1.0)
    if not (_is_number(temperature) and math.isfinite(temperature) and temperature > 0):
        raise _damaged(path, f"'temperature' must be a finite number > 0, not {temperature!r}")


def _read_heldout(run: RunFolder) -> None:
    heldout_file, eval_file = run.path / "heldout.jsonl", run.path / "eval.json"
    if eval_file.is_file():
        run.summary = _read_json(eval_file, run.notes)
        check_summary(eval_file, run.summary)
    if heldout_file.is_file():
        rows, bad = _read_jsonl(heldout_file)
        run.heldout, run.heldout_source = heldout_points(rows), "heldout.jsonl"
        if bad:
            run.notes.append(f"heldout.jsonl: {bad} malformed line(s) skipped")
    if not run.heldout and eval_file.is_file():
        run.heldout, run.heldout_source = eval_points(run.summary), "eval.json (before/after)"
    if not run.heldout:
        run.notes.append("no held-out accuracy: neither heldout.jsonl nor eval.json (the run has not finished)")


def read_run_folder(path: str | Path) -> RunFolder:
    """Everything the report needs from a run folder; SystemExit when `path` is not one."""
    path = Path(path)
    check_run_folder(path)
    run = RunFolder(path=path)
    if (path / "config.json").is_file():
        run.config = _read_json(path / "config.json", run.notes)
        check_config(path / "config.json", run.config)
    else:
        run.notes.append("no config.json: sampling settings are the tiny-world defaults")
    if (path / "metrics.jsonl").is_file():
        run.metrics, bad = _read_jsonl(path / "metrics.jsonl")
        check_metrics(path / "metrics.jsonl", run.metrics)
        if bad:
            run.notes.append(f"metrics.jsonl: {bad} malformed line(s) skipped")
        if not run.metrics:
            run.notes.append("metrics.jsonl is empty: no training curves")
    else:
        run.notes.append("no metrics.jsonl: no training curves")
    _read_heldout(run)
    run.model_dir = find_model(path)
    if run.model_dir is None:
        run.notes.append("no model/ or checkpoint-*/ folder: no token view and no sampled entropy histograms")
    return run
