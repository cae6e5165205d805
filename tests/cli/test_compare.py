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



def test_compare_tables_show_format_rate_and_accuracy_among_well_formatted(tmp_path):
    """A task that reads answers: format_rate and accuracy_formatted are columns of compare.md/.csv beside avg@k,
    averaged over seeds and paired with the baseline like avg@k (hand-made run folders)."""
    import argparse
    import json

    from eapo.cli.compare import _summarise, write_outputs

    numbers = {("grpo", 0): (0.20, 0.80, 0.25), ("grpo", 1): (0.30, 0.90, 0.3333), ("eapo", 0): (0.36, 0.90, 0.40),
               ("eapo", 1): (0.40, 0.80, 0.50)}  # fmt: skip
    results: dict = {}
    for (method, seed), (acc, fmt, acc_fmt) in numbers.items():
        run_dir = tmp_path / f"{method}-seed{seed}"
        run_dir.mkdir()
        after = {"avg@4": acc, "pass@4": 0.6, "format_rate": fmt, "accuracy": acc, "accuracy_formatted": acc_fmt}
        (run_dir / "eval.json").write_text(json.dumps({"after": after, "steps": 10, "train_seconds": 100, "k": 4}))
        (run_dir / "config.json").write_text(json.dumps({"task": "wordproblems:1", "eval_problems": 200}))
        lines = [{"entropy/sampling_mean": 1.0}]
        results.setdefault(method, {})[seed] = _summarise(run_dir, lines, 4)
    args = argparse.Namespace(eval_k=4, baseline="grpo", steps=10)
    write_outputs(results, tmp_path, args)
    header, grpo, eapo = (tmp_path / "compare.csv").read_text().splitlines()[:3]
    columns = header.split(",")
    row = dict(zip(columns, eapo.split(","), strict=True))
    assert {"format_rate", "accuracy_formatted"} <= set(columns)
    assert float(row["format_rate"]) == pytest.approx(0.85)
    assert float(row["accuracy_formatted"]) == pytest.approx(0.45)
    assert float(row["accuracy_formatted_diff"]) == pytest.approx(0.45 - (0.25 + 0.3333) / 2)
    assert float(row["format_rate_diff"]) == pytest.approx(0.0)
    md = (tmp_path / "compare.md").read_text()
    assert "| format_rate | accuracy_formatted |" in md and "accuracy among them" in md
