"""Atomic checkpoints and the run-folder bookkeeping of `eapo train --resume`.

A checkpoint is written into `RUN_DIR/.staging/checkpoint-N`, every file fsynced, then renamed to
`RUN_DIR/checkpoint-N` (one `os.replace`): a `checkpoint-N` folder is therefore always complete, and a
kill during the write leaves the previous checkpoints untouched. Old checkpoints are rotated only
after the new one is in place. Step logs (`*.jsonl` files whose lines carry a `"step"`) are cut back
to the checkpoint's step before a resume, so no line is lost or repeated. The atomic writes and JSON-lines
helpers themselves are `eapo.io`'s (also importable from here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from eapo.io import (  # noqa: F401 (re-exported: the names stay importable from here)
    append_jsonl,
    atomic_write_text,
    fsync_dir,
    fsync_tree,
    publish,
    read_jsonl,
    read_jsonl_counted,
    safetensors_parameters,
    safetensors_problem,
)

STAGING = ".staging"
METRICS_FILE = "metrics.jsonl"  # one line per optimizer step
HELDOUT_FILE = "heldout.jsonl"  # one line per periodic held-out evaluation
WALL_FILE = "wall.json"  # the run's wall time over all its sessions (`eapo.trainer.callbacks.RunClock`)
UNUSABLE = ".unusable"  # checkpoints a resume skipped because they do not load
METHOD_STATE = "eapo_state.pt"  # what EAPOTrainer keeps across steps (its own RNG)
FAULT_ENV = "EAPO_FAULT_KILL_IN_SAVE"  # test hook: SIGKILL while writing the checkpoint of this step
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match else None


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint folder `path` cannot be resumed from, or None: its trainer state (written last) must
    parse, its safetensors weights must be whole, and its torch files (optimizer, scheduler, RNG states) must be
    intact zip archives (CRC-checked)."""
    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "trainer_state.json is missing or unreadable"
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        return "it has no *.safetensors weights"
    for file in weights:
        problem = safetensors_problem(file)
        if problem:
            return problem
    for file in sorted([*path.glob("*.pt"), *path.glob("*.pth")]):
        try:
            with zipfile.ZipFile(file) as archive:
                bad = archive.testzip()
        except (OSError, zipfile.BadZipFile):
            return f"{file.name} is truncated or corrupt"
        if bad is not None:
            return f"{file.name} is corrupt ({bad} fails its checksum)"
    return None


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The `checkpoint-N` folders of `run_dir`, newest (highest N) first."""
    found = [(checkpoint_step(p), p) for p in Path(run_dir).iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return [path for _, path in sorted(found, reverse=True)]


def last_checkpoint(run_dir: str | Path, skipped: Callable[[Path, str], None] | None = None) -> Path | None:
    """The newest checkpoint of `run_dir` that can be resumed from, or None; `skipped(path, why)` is called for
    each newer one that cannot."""
    for path in checkpoints(run_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        if skipped is not None:
            skipped(path, problem)
    return None


def _line_step(line: str) -> int | None:
    """The "step" of one JSON log line; None for a torn or step-less line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("step") if isinstance(record, dict) and isinstance(record.get("step"), int) else None


def _keep(line: str, step: int) -> bool:
    """Whether a log line survives a cut at `step`: whole JSON, and its step (if any) <= `step`."""
    if not line.endswith("\n"):
        return False  # torn: the writer was killed mid-line
    try:
        record = json.loads(line)
    except ValueError:
        return False
    line_step = record.get("step") if isinstance(record, dict) else None
    return not isinstance(line_step, int) or line_step <= step


def truncate_step_log(path: Path, step: int) -> int:
    """Keep the lines of `path` with `"step" <= step`, drop torn or unparseable ones (atomically).

    Returns the number of lines dropped."""
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if _keep(line, step)]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(kept))
    return len(lines) - len(kept)


def step_logs(run_dir: str | Path) -> list[Path]:
    """The `*.jsonl` files of `run_dir` whose lines carry a "step" (metrics.jsonl, heldout.jsonl, ...)."""
    logs = []
    for path in sorted(Path(run_dir).glob("*.jsonl")):
        with path.open() as f:
            first = f.readline()
        if not first or _line_step(first) is not None:
            logs.append(path)
    return logs


def prepare_resume(run_dir: str | Path) -> Path:
    """Before resuming: drop a half-written checkpoint, move newer checkpoints that cannot be loaded aside
    (to `RUN_DIR/.unusable/`, kept for inspection), cut every step log back to the newest loadable
    checkpoint's step; returns that checkpoint. Raises FileNotFoundError when there is none."""
    run_dir = Path(run_dir)
    shutil.rmtree(run_dir / STAGING, ignore_errors=True)
    unusable: list[Path] = []
    checkpoint = last_checkpoint(run_dir, skipped=lambda path, _: unusable.append(path))
    if checkpoint is None:
        raise FileNotFoundError(f"no complete checkpoint-* folder in {run_dir}")
    for path in unusable:
        aside = run_dir / UNUSABLE / path.name
        aside.parent.mkdir(exist_ok=True)
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(path, aside)
    step = checkpoint_step(checkpoint)
    for log in step_logs(run_dir):
        truncate_step_log(log, step)
    return checkpoint
