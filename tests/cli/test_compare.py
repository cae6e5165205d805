"""`eapo compare` as a user runs it: tables, plots, resumed runs."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_eapo_compare_writes_tables_and_resumes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "eapo",
        "compare",
        "--methods",
        "grpo,eapo",
        "--seeds",
        "1",
        "--steps",
        "2",
        "--output_dir",
        str(tmp_path),
        "--eval_k",
        "2",
        "--",
        "--eval_problems",
        "4",
        "--disable_tqdm",
        "true",
        "--per_device_train_batch_size",
        "16",
        "--num_generations",
        "4",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    for name in ("compare.md", "compare.csv", "compare.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = (tmp_path / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("method,seeds,avg@2,avg@2_ci95") and len(rows) == 3
    stamp = (tmp_path / "grpo-seed0" / "eval.json").stat().st_mtime_ns
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("finished earlier, kept") == 2
    assert (tmp_path / "grpo-seed0" / "eval.json").stat().st_mtime_ns == stamp

