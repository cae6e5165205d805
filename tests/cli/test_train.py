"""`eapo train` as a user runs it: a subprocess with a tiny budget, then the run folder's contents."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from eapo.cli.train import TINY_WORLD_DEFAULTS, parse_args
from eapo.world import BASE_MODEL_DIR


@pytest.mark.slow
def test_eapo_train_subprocess_fills_the_run_folder(tmp_path):
    run_dir = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"method": "grpo", "per_device_train_batch_size": 16, "num_generations": 4}))
    cmd = [
        sys.executable,
        "-m",
        "eapo",
        "train",
        "--config",
        str(config),
        "--method",
        "eapo",
        "--max_steps",
        "2",
        "--save_steps",
        "1",
        "--output_dir",
        str(run_dir),
        "--eval_problems",
        "8",
        "--eval_k",
        "2",
        "--disable_tqdm",
        "true",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "avg@2" in proc.stdout and "run folder" in proc.stdout

    resolved = json.loads((run_dir / "config.json").read_text())
    assert resolved["method"] == "eapo"  # the flag wins over the YAML
    assert resolved["per_device_train_batch_size"] == 16  # the YAML wins over the defaults
    assert resolved["learning_rate"] == TINY_WORLD_DEFAULTS["learning_rate"]
    assert resolved["defaults"] == "tiny-world"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert all("quadrant/PHR/token_share" in line and "loss" in line for line in lines)
    assert (run_dir / "model" / "model.safetensors").exists()
    assert {p.name for p in run_dir.glob("checkpoint-*")} == {"checkpoint-1", "checkpoint-2"}
    summary = json.loads((run_dir / "eval.json").read_text())
    assert set(summary["before"]) == {"avg@2", "pass@1", "pass@2"} and summary["steps"] == 2
    assert 0.0 <= summary["after"]["avg@2"] <= 1.0


def test_default_run_folder_and_flag_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, run = parse_args(["--method", "grpo", "--seed", "3"])
    assert config.output_dir == os.path.join("runs", "grpo-seed3")
    assert config.loss_type == "grpo" and config.max_steps == TINY_WORLD_DEFAULTS["max_steps"]
    assert run.eval_k == 8


def test_bad_flag_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit) as err:
        parse_args(["--method", "nope", "--output_dir", str(tmp_path)])
    assert "unknown method 'nope'" in str(err.value) and err.value.code == 2


def test_shipped_base_model_is_small_safetensors():
    weights = BASE_MODEL_DIR / "model.safetensors"
    assert weights.exists() and weights.stat().st_size <= 10 * 2**20
    assert not list(BASE_MODEL_DIR.glob("*.bin"))


def test_missing_model_folder_is_a_clear_error(tmp_path):
    from eapo.cli.train import train

    config, run = parse_args(["--output_dir", str(tmp_path / "run"), "--model_path", str(tmp_path / "nope")])
    with pytest.raises(SystemExit) as err:
        train(config, run)
    assert err.value.code == 2 and "model_path=" in str(err.value) and "eapo warmstart" in str(err.value)
    assert not (tmp_path / "run").exists()  # checked before anything is written
