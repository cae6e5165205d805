"""`eapo eval` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import eapo
import eapo.world


@pytest.mark.slow
def test_eapo_eval_cli_writes_json(tmp_path):
    out = tmp_path / "eval.json"
    cmd = [
        sys.executable,
        "-m",
        "eapo",
        "eval",
        str(eapo.world.BASE_MODEL_DIR),
        "--k",
        "4",
        "--problems",
        "6",
        "--output",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result) >= {"avg@4", "pass@1", "pass@2", "pass@4", "maj@4"} and result["problems"] == 6
    assert result["pass@1"] == pytest.approx(result["avg@4"]) and result["pass@4"] >= result["pass@2"]
    bad = subprocess.run(
        [sys.executable, "-m", "eapo", "eval", str(tmp_path), "--k", "0"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode != 0 and "--k 0: use at least 1" in bad.stderr and "not a model folder" in bad.stderr

