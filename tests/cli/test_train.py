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
    card = (run_dir / "README.md").read_text()
    assert "[None]" not in card and f"fine-tuned version of the local model folder `{BASE_MODEL_DIR}`" in card
    summary = json.loads((run_dir / "eval.json").read_text())
    assert summary["problems"] == 8 and summary["k"] == 2 and summary["steps"] == 2
    assert set(summary["before"]) == {"avg@2", "pass@1", "pass@2", "problems", "correct_per_problem", "problems_sha256"}
    assert summary["before"]["problems"] == 8
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


def test_config_yaml_of_a_run_reproduces_its_config(tmp_path):
    """The run folder's config.yaml is accepted by --config and gives the same resolved config."""
    config, run = parse_args(["--method", "dapo", "--seed", "4", "--max_steps", "9", "--quadrants", "PHR,NHR",
                              "--eval_k", "3", "--output_dir", str(tmp_path / "a")])  # fmt: skip
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(run.inputs))
    again, run_again = parse_args(["--config", str(saved), "--output_dir", str(tmp_path / "a")])
    assert again.resolved() == config.resolved() and vars(run_again) == vars(run)


@pytest.mark.parametrize(
    ("method", "field", "value"),
    [("grpo", "loss_type", "dapo"), ("eapo", "epsilon_high", None), ("entropy_bonus", "entropy_coef", 0.0)],
)
def test_explicit_values_beat_the_method_preset_however_set(method, field, value, tmp_path):
    """A value equal to TRL's default, set by the user by flag, YAML or constructor, is kept; left unset, the
    method's preset fills it."""
    from trl import GRPOConfig

    from eapo import EAPOConfig

    cpu = {"output_dir": str(tmp_path), "use_cpu": True, "bf16": False}
    assert getattr(GRPOConfig(**cpu), field) == value  # TRL's default: the hard case
    flag = ["--" + field, "None" if value is None else str(value)]
    config, _ = parse_args(["--method", method, *flag, "--output_dir", str(tmp_path / "f")])
    assert getattr(config, field) == value, "flag"
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(yaml.safe_dump({"method": method, field: value}))
    config, _ = parse_args(["--config", str(yaml_file), "--output_dir", str(tmp_path / "y")])
    assert getattr(config, field) == value, "yaml"
    assert getattr(EAPOConfig(**cpu, method=method, **{field: value}), field) == value, "constructor"
    preset = EAPOConfig(**cpu, method=method)
    assert getattr(preset, field) != value and field in preset.applied_preset  # unset: the preset applies
