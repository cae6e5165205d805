"""Atomic checkpoints and the run-folder bookkeeping of `eapo train --resume`.

A checkpoint is written into `RUN_DIR/.staging/checkpoint-N`, every file fsynced, then renamed to
`RUN_DIR/checkpoint-N` (one `os.replace`): a `checkpoint-N` folder is therefore always complete, and a
kill during the write leaves the previous checkpoints untouched. Old checkpoints are rotated only
after the new one is in place. Step logs (`*.jsonl` files whose lines carry a `"step"`) are cut back
to the checkpoint's step before a resume, so no line is lost or repeated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

STAGING = ".staging"
METHOD_STATE = "eapo_state.pt"  # what EAPOTrainer keeps across steps (its own RNG)
FAULT_ENV = "EAPO_FAULT_KILL_IN_SAVE"  # test hook: SIGKILL while writing the checkpoint of this step
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def fsync_tree(path: Path) -> None:
    """fsync every file under `path`, then every folder (so names are durable too)."""
    folders = [path]
    for root, dirs, names in os.walk(path):
        folders += [Path(root) / d for d in dirs]
        for name in names:
            with open(Path(root) / name, "rb") as f:
                os.fsync(f.fileno())
    for folder in reversed(folders):
        fsync_dir(folder)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staged: Path, final: Path) -> None:
    """Make the fully written folder `staged` visible as `final` in one rename."""
    fsync_tree(staged)
    if final.exists():  # only a stale copy of the same step can be there; the staged one replaces it
        shutil.rmtree(final)
    os.replace(staged, final)
    fsync_dir(final.parent)


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match else None


def is_complete(path: Path) -> bool:
    """A checkpoint folder with safetensors weights and a readable trainer state (written last)."""
    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return any(path.glob("*.safetensors"))


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The complete checkpoint of highest step in `run_dir`, or None."""
    found = [(checkpoint_step(p), p) for p in Path(run_dir).iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    for _, path in sorted(found, reverse=True):
        if is_complete(path):
            return path
    return None


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` via a fsynced temporary file and `os.replace`."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to the step log `path`, flushed and fsynced (a reader never sees half a line)."""
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


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
    """Before resuming: drop a half-written checkpoint, cut every step log back to the last complete
    checkpoint's step; returns that checkpoint. Raises FileNotFoundError when there is none."""
    run_dir = Path(run_dir)
    shutil.rmtree(run_dir / STAGING, ignore_errors=True)
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"no complete checkpoint-* folder in {run_dir}")
    step = checkpoint_step(checkpoint)
    for log in step_logs(run_dir):
        truncate_step_log(log, step)
    return checkpoint
