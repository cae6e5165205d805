"""Run folders shared by `eapo compare` and `eapo ablate`: a finished run is reused only when it was trained with
exactly the options now requested; a folder holding a run with other options is never reused or replaced."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eapo.cli.validate import ValidationError

# Options that name where a run lives or how it was started, not what it trained (`use_cpu`: the machine's; the
# config.yaml of a run started before 2026-12-07 records it)
_NOT_COMPARED = {"output_dir", "resume", "overwrite_output_dir", "use_cpu"}


def run_state(run_dir: Path, train_flags: list[str]) -> str:
    """"new" (no run there yet), "finished" (a run with these exact options and its eval.json: reuse it) or
    "unfinished" (a run with these options that did not finish: `eapo ablate` resumes it from its last checkpoint,
    `eapo compare` trains it again). A folder with a run of other options, or with files that are no run, raises
    `ValidationError` naming the first differences; so does a run to train (new or unfinished) whose model folder
    is missing or broken."""
    import yaml

    from eapo.cli.train import CONFIG_YAML

    run = _parse_train_flags(run_dir, train_flags)  # a new run's flags too: before any run is trained
    requested = run.inputs
    if run_dir.exists() and not run_dir.is_dir():
        raise ValidationError(f"{run_dir} is a file, not a run folder: pass another --output_dir, or delete that file")
    if not run_dir.exists() or not any(run_dir.iterdir()):
        _check_model_folder(run)
        return "new"
    saved_file = run_dir / CONFIG_YAML
    if not saved_file.is_file():
        raise ValidationError(
            f"{run_dir} is not empty and holds no eapo run options ({CONFIG_YAML}): pass another --output_dir, or "
            "delete that folder"
        )
    try:
        saved = yaml.safe_load(saved_file.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise damaged_run(run_dir, CONFIG_YAML, _first_line(err)) from None
    if not isinstance(saved, dict):
        raise damaged_run(run_dir, CONFIG_YAML, f"a YAML {type(saved).__name__}, not a mapping of options")
    keys = sorted((set(saved) | set(requested)) - _NOT_COMPARED)
    differ = [k for k in keys if saved.get(k) != requested.get(k)]
    if differ:
        shown = "; ".join(f"{k}: {saved.get(k)!r} there, {requested.get(k)!r} now" for k in differ[:3])
        more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
        raise ValidationError(
            f"{run_dir} holds a run with other options ({shown}{more}): pass another --output_dir, or delete "
            "that folder to train it again"
        )
    if (run_dir / "eval.json").is_file():
        return "finished"  # its model is not loaded again: the folder may be gone
    _check_model_folder(run)
    return "unfinished"


def check_extra_flags(command: str, extra: list[str], owned: dict[str, Any]) -> None:
    """The `eapo train` flags after `--` of `eapo compare` / `eapo ablate` may not set an option the command sets
    itself (`owned`: option -> the value the command passes, None where it differs by run): a flag after `--` wins
    over the command's own, so its tables would read runs trained otherwise (an avg@k of another k); a `--config`
    YAML among them may not set one to another value either (the command's flags would win over it silently)."""
    import yaml

    flags = [f for f in extra if f != "--"]
    for i, flag in enumerate(flags):
        if not flag.startswith("--"):
            continue
        name = flag[2:].split("=", 1)[0].replace("-", "_")
        name = name[3:] if name.startswith("no_") and name[3:] in owned else name
        if name in owned:
            raise ValidationError(
                f"--{name} after --: eapo {command} sets it for every run itself; give it to eapo {command} (before --)"
                " or leave it out"
            )
        if name != "config":
            continue
        path = flag.split("=", 1)[1] if "=" in flag else (flags[i + 1] if i + 1 < len(flags) else "")
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # eapo train says what is wrong with it
        for key, value in data.items() if isinstance(data, dict) else []:
            if key in owned and (owned[key] is None or str(value) != str(owned[key])):
                fix = "leave it out of the file" if owned[key] is None else f"give eapo {command} --{key} {value}"
                raise ValidationError(
                    f"{path} sets {key}: {value}, which eapo {command} sets for every run itself"
                    + ("" if owned[key] is None else f" ({owned[key]})")
                    + f": {fix}"
                )


def train_or_resume(run_dir: Path, train_flags: list[str], state: str) -> None:
    """Train one run in-process: a new one fresh, an unfinished one from its newest loadable checkpoint when it
    has one (else again from scratch). Ctrl-C (the run keeps its checkpoint) is raised as KeyboardInterrupt."""
    from eapo.cli.train import Interrupted, parse_args, train
    from eapo.trainer.checkpoint import last_checkpoint

    if state == "unfinished" and last_checkpoint(run_dir) is not None:
        argv = ["--resume", str(run_dir)]
    else:
        argv = [*train_flags, "--output_dir", str(run_dir), "--overwrite_output_dir", "true"]
    try:
        train(*parse_args(argv))
    except Interrupted as err:
        print(f"[{run_dir.name}] {err}")
        raise KeyboardInterrupt from None


MAX_SEEDS = 1000  # seeds 0..N-1: every one is a run of every method or variant


def check_seeds(seeds: int) -> None:
    """`--seeds N` of `eapo compare` / `eapo ablate`: 1 to `MAX_SEEDS` (a larger N is a typo, and its list of run
    folders alone would take minutes to build)."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ValidationError(f"--seeds {seeds}: use 1 to {MAX_SEEDS} (seeds 0..N-1, one run per seed each)")


def check_train_flags(run_dir: Path, train_flags: list[str]) -> dict[str, Any]:
    """The `eapo train` options of one planned run (its `run.inputs`), parsed and checked as `eapo train` does
    before it loads a model (`eapo.pipeline.options.check_options`): a bad flag or value is one line (exit code 2)
    here, before any run is trained or any folder made."""
    return _parse_train_flags(run_dir, train_flags).inputs


def _parse_train_flags(run_dir: Path, train_flags: list[str]) -> Any:
    from eapo.cli.train import parse_args
    from eapo.errors import EapoError
    from eapo.pipeline.options import check_options

    config, run = parse_args([*train_flags, "--output_dir", str(run_dir)])
    try:
        check_options(config, run)
    except EapoError as err:
        raise ValidationError(str(err)) from None
    return run


def _check_model_folder(run: Any) -> None:
    """The model folder a run to train loads (`check_model_dir`: it exists, config.json, safetensors headers):
    a missing or broken one is one line here, not a failure of every run's training process."""
    from eapo.errors import EapoError
    from eapo.pipeline.checks import check_model_dir
    from eapo.pipeline.training import run_model_dir

    if (model_dir := run_model_dir(run)) is not None:
        try:
            check_model_dir(model_dir)
        except EapoError as err:
            raise ValidationError(str(err)) from None


def _first_line(what: object) -> str:
    """The first line of an error's (or any value's) text; the error's type when it has none."""
    text = str(what).strip()
    return text.splitlines()[0] if text else type(what).__name__


def damaged_run(run_dir: Path, name: str, why: str) -> ValidationError:
    """A file of a run folder that cannot be used: one line naming it and the fix."""
    return ValidationError(f"{run_dir / name} cannot be read ({why}): delete {run_dir} to train it again")


ENTROPY_KEY = "entropy/sampling_mean"
CURVE_KEYS = ("reward", ENTROPY_KEY)  # metrics.jsonl values drawn as curves by compare.png and ablate.png


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class FinishedRun:
    """The files of a finished run folder that `eapo compare` and `eapo ablate` tabulate (`read_finished_run`)."""

    path: Path
    summary: dict[str, Any]  # eval.json
    config: dict[str, Any]  # config.json; {} without one
    metrics: list[dict[str, Any]]  # metrics.jsonl, torn lines skipped
    heldout: list[dict[str, Any]]  # heldout.jsonl, torn lines skipped; [] without one or when not asked for


def _read_json(run_dir: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / name).read_text())
    except FileNotFoundError:
        raise damaged_run(run_dir, name, "it is missing") from None
    except json.JSONDecodeError as err:
        raise damaged_run(run_dir, name, f"not JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise damaged_run(run_dir, name, _first_line(err)) from None
    if not isinstance(data, dict):
        raise damaged_run(run_dir, name, f"a JSON {type(data).__name__}, not an object")
    return data


def _read_lines(run_dir: Path, name: str) -> list[dict[str, Any]]:
    from eapo.io import read_jsonl

    try:
        return read_jsonl(run_dir / name)
    except FileNotFoundError:
        raise damaged_run(run_dir, name, "it is missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise damaged_run(run_dir, name, _first_line(err)) from None


def _evaluation_problem(result: Any, k: int | None, passes: Callable[[int], Iterable[int]], se_k: int | None) -> str:
    """What an evaluation of eval.json (`after`, `before`) lacks for the tables ('' when nothing): avg@k (`k`
    None: its own, the first avg@ key) and pass@j for each j of `passes(k)` as numbers, answer columns and
    per-problem counts (0 to `se_k`, default k) that can be read."""
    if result is None:
        return "missing"
    if not isinstance(result, dict):
        return f"a JSON {type(result).__name__}, not an evaluation"
    if k is None:
        own = next((key for key in result if key.startswith("avg@")), None)
        if own is None or not own[len("avg@") :].isdigit():
            return "no avg@k"
        k = int(own[len("avg@") :])
    for key in [f"avg@{k}", *(f"pass@{j}" for j in passes(k))]:
        if not _is_number(result.get(key)):
            return f"no number {key}"
    for key in ("format_rate", "accuracy_formatted"):
        if result.get(key) is not None and not _is_number(result[key]):
            return f"{key} is not a number"
    if result.get("problems_sha256") is not None and not isinstance(result["problems_sha256"], str):
        return "problems_sha256 is not text"
    counts, top = result.get("correct_per_problem"), k if se_k is None else se_k
    if isinstance(counts, list) and not all(_is_number(c) and math.isfinite(c) and 0 <= int(c) <= top for c in counts):
        return f"correct_per_problem holds a value that is not a count from 0 to {top}"
    return ""


def _read_metrics(run_dir: Path, name: str, first: bool) -> list[dict[str, Any]]:
    """metrics.jsonl: at least one step, each step and curve value a number, the sampling entropy in its last 10
    steps (`first`: its first 10 too)."""
    metrics = _read_lines(run_dir, name)
    if not metrics:
        raise damaged_run(run_dir, name, "no step logged")
    for line in metrics:
        bad = [key for key in CURVE_KEYS if key in line and not _is_number(line[key])]
        if ("step" in line and not _is_number(line["step"])) or bad:
            raise damaged_run(run_dir, name, f"a line whose {(bad or ['step'])[0]} is not a number")
    if any(ENTROPY_KEY not in line for line in [*(metrics[:10] if first else []), *metrics[-10:]]):
        which = "first or last" if first else "last"
        raise damaged_run(run_dir, name, f"a step of the {which} 10 without {ENTROPY_KEY}")
    return metrics


def _read_heldout(run_dir: Path, name: str) -> list[dict[str, Any]]:
    """heldout.jsonl: each line a number step, its integer k and a number avg@k (pass@k, where there, a number)."""
    lines = _read_lines(run_dir, name)
    for line in lines:
        line_k = line.get("k")
        if not (_is_number(line.get("step")) and isinstance(line_k, int) and _is_number(line.get(f"avg@{line_k}"))):
            raise damaged_run(run_dir, name, "a line without a number step, k and avg@k")
        if f"pass@{line_k}" in line and not _is_number(line[f"pass@{line_k}"]):
            raise damaged_run(run_dir, name, f"a line whose pass@{line_k} is not a number")
    return lines


def read_finished_run(
    run_dir: Path,
    *,
    k: int | None = None,
    passes: Callable[[int], Iterable[int]] = lambda k: (k,),
    summary_keys: tuple[str, ...] = (),
    before: bool = False,
    heldout: bool = False,
) -> FinishedRun:
    """The files of a finished run folder, each checked for what the tables read, so that a damaged run (a
    truncated or hand-edited file) is one line naming the file and the fix (`ValidationError`), never a
    traceback: eval.json an object whose `after` has a number avg@k (`k` None: its own k) and pass@j for each j
    of `passes(k)`, and a number for each of `summary_keys`; with `before`, its `before` (when not null) the same;
    config.json (optional) an object; metrics.jsonl at least one step, its last 10 (and with a `before` read, its
    first 10) with the sampling entropy, every step and curve value a number; with `heldout`, heldout.jsonl
    (optional) lines of a number step, its k and avg@k. Values are returned as read: the tables compute from
    them what they always did."""
    from eapo.trainer.checkpoint import HELDOUT_FILE, METRICS_FILE

    summary = _read_json(run_dir, "eval.json")
    after = summary.get("after")
    if after == {}:  # `eapo train` finished without a final evaluation: it failed, or there were no problems
        failed = summary.get("failed")
        why = f": {_first_line(failed['after'])}" if isinstance(failed, dict) and failed.get("after") else ""
        raise damaged_run(run_dir, "eval.json", f"the run has no final evaluation{why}")
    if problem := _evaluation_problem(after, k, passes, None):
        raise damaged_run(run_dir, "eval.json", f"its after: {problem}")
    for key in summary_keys:
        if not _is_number(summary.get(key)):
            raise damaged_run(run_dir, "eval.json", f"no number {key}")
    own_k = k if k is not None else int(next(key for key in after if key.startswith("avg@"))[len("avg@") :])
    if before and summary.get("before") and (problem := _evaluation_problem(summary["before"], None, passes, own_k)):
        raise damaged_run(run_dir, "eval.json", f"its before: {problem}")
    config = _read_json(run_dir, "config.json") if (run_dir / "config.json").exists() else {}
    metrics = _read_metrics(run_dir, METRICS_FILE, first=bool(before and summary.get("before")))
    lines = _read_heldout(run_dir, HELDOUT_FILE) if heldout and (run_dir / HELDOUT_FILE).exists() else []
    return FinishedRun(run_dir, summary, config, metrics, lines)
