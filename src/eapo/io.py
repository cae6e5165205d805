"""Shared file I/O of every layer: atomic writes, JSON-lines logs and safetensors headers (the bottom layer).

A file or folder is written whole or not at all: `atomic_write_text` writes a fsynced temporary file and renames
it over the target, `publish` renames a fully written, fsynced folder into place. A JSON-lines log
(`metrics.jsonl`, `heldout.jsonl`, ...) gets whole, fsynced lines (`append_jsonl`), and is read while it is
written (`read_jsonl`: a torn last line is skipped). `safetensors_problem` and `safetensors_parameters` read
only a weights file's header.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any


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


def safetensors_problem(path: Path) -> str | None:
    """Why the safetensors file `path` cannot be loaded (truncated, corrupt header), or None when it can.

    Reads only the header: an 8-byte little-endian length, a JSON header, then the tensor data, whose last
    offset must match the file's size (a truncated copy fails here without reading the weights)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > size - 8:
                return f"{path.name} is truncated (header of {length} bytes in a {size}-byte file)"
            header = json.loads(f.read(length))
    except (OSError, struct.error):
        return f"{path.name} is unreadable or truncated"
    except (ValueError, UnicodeDecodeError):
        return f"{path.name} is corrupt (its header is not valid JSON)"
    if not isinstance(header, dict):
        return f"{path.name} is corrupt (its header is not a mapping)"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        return f"{path.name} is truncated or corrupt ({size} bytes where its header describes {expected})"
    return None


def safetensors_parameters(folder: Path) -> int | None:
    """The number of parameters in the `*.safetensors` files of `folder`, from their headers (no weights read);
    None when there are none or one cannot be read."""
    total = 0
    files = sorted(Path(folder).glob("*.safetensors"))
    for path in files:
        try:
            with path.open("rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(length))
        except (OSError, struct.error, ValueError, UnicodeDecodeError):
            return None
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry.get("shape", []):
                    count *= int(dim)
                total += count
    return total or None


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


def read_jsonl_counted(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a JSON-lines log (metrics.jsonl, heldout.jsonl, ...) and the number of non-blank lines
    skipped: a torn line (its writer killed mid-line) or one that is not a JSON object, so that a log can be
    read while it is written."""
    records, skipped = [], 0
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    return records, skipped


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log, torn or foreign lines skipped (see `read_jsonl_counted`)."""
    return read_jsonl_counted(path)[0]
