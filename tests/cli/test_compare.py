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
    for name in ("compare.md", "compare.csv", "compare.png", "compare-paired.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = (tmp_path / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("method,seeds,avg@2,avg@2_ci95") and len(rows) == 3
    assert "Held-out countdown, 2 samples per problem" in (tmp_path / "compare.md").read_text()
    stamp = (tmp_path / "grpo-seed0" / "eval.json").stat().st_mtime_ns
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("finished earlier with the same options, kept") == 2
    assert (tmp_path / "grpo-seed0" / "eval.json").stat().st_mtime_ns == stamp
    # Other options over the same folders: refused in one line, nothing trained or changed.
    saved = {p: p.read_bytes() for p in (tmp_path / "grpo-seed0").rglob("*") if p.is_file()}
    longer = [*cmd[: cmd.index("--steps") + 1], "3", *cmd[cmd.index("--steps") + 2 :]]
    refused = subprocess.run(longer, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "holds a run with other options (max_steps: 2 there, 3 now)" in refused.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "grpo-seed0").rglob("*") if p.is_file()} == saved

