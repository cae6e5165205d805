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
    assert set(summary["before"]) == {
        "avg@2", "pass@1", "pass@2", "maj@2", "format_rate", "accuracy", "accuracy_formatted",
        "problems", "correct_per_problem", "problems_sha256",
    }  # fmt: skip
    assert summary["before"]["accuracy"] == summary["before"]["avg@2"]
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
    assert again.resolved() == config.resolved()

    def options(r):  # which defaults were filled by the world (the start line's) differs: the YAML sets them now
        return {k: v for k, v in vars(r).items() if k != "applied_defaults"}

    assert options(run_again) == options(run)


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


# A 1-step tiny-world run: the countdown task with a reward module from the current folder (`--reward mod:fn`).
def _quick(out, *extra: str) -> list[str]:
    return ["--output_dir", str(out), "--method", "grpo", "--max_steps", "1", "--per_device_train_batch_size", "16",
            "--num_generations", "4", "--eval_problems", "4", "--eval_k", "2", "--heldout_eval_steps", "0",
            "--report", "false", "--disable_tqdm", "true", "--save_strategy", "no", *extra]  # fmt: skip


EVAL_FAILS = """
def fn(completions, **kwargs):
    if len(completions) <= 2:  # the evaluation scores one problem's 2 samples at a time; training 16 at once
        raise ValueError("only in evaluation")
    return [0.0] * len(completions)
"""


def test_a_reward_failing_in_evaluation_is_guarded_and_the_run_still_ends(tmp_path, monkeypatch, capsys):
    """Issue 26, point 1: held-out evaluations (before, periodic, after) use the training's reward guard and
    --reward_error_policy; a run that trained ends with its model, eval.json saying what failed, and its summary."""
    from eapo.cli.train import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "evalfail_26.py").write_text(EVAL_FAILS)
    out = tmp_path / "raise"
    periodic = ["--heldout_eval_steps", "1", "--heldout_eval_problems", "2", "--heldout_eval_k", "2"]
    argv = _quick(out, "--reward", "evalfail_26:fn", *periodic)
    argv.remove("0")  # the default --heldout_eval_steps 0 of _quick, replaced by `periodic`
    argv.remove("--heldout_eval_steps")
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "run folder:" in captured.out
    said = [line[line.index("eapo train: ") :] for line in captured.err.splitlines() if "eapo train: " in line]
    assert len(said) == 5 and all("failed" in line for line in said), captured.err  # one line each, then a summary
    assert "--reward_error_policy zero" in captured.err
    assert (out / "model" / "model.safetensors").is_file()
    summary = json.loads((out / "eval.json").read_text())
    assert set(summary["failed"]) == {"before", "step 0", "step 1", "after"}
    assert "only in evaluation" in summary["failed"]["after"] and summary["steps"] == 1

    zero = tmp_path / "zero"
    assert main(_quick(zero, "--reward", "evalfail_26:fn", "--reward_error_policy", "zero")) == 0
    summary = json.loads((zero / "eval.json").read_text())
    assert summary["failed"] == {} and summary["after"]["avg@2"] == 0.0
    assert summary["after"]["invalid_rewards"] == 4 * 2


FAILS_ONCE = """
from pathlib import Path
def fn(completions, **kwargs):
    if Path("fail-now").exists():
        raise RuntimeError("not yet")
    return [0.0] * len(completions)
"""


def test_a_failed_start_is_retried_with_the_same_command_and_every_hint_works(tmp_path, monkeypatch, capsys):
    """Issue 26, point 2: a start that fails before saving anything leaves no folder that blocks the same command;
    --resume on it gives a command that, run as written, works."""
    import re
    import shlex

    from eapo.cli.train import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "failonce_26.py").write_text(FAILS_ONCE)
    (tmp_path / "fail-now").write_text("")
    out = tmp_path / "run"
    argv = _quick(out, "--reward", "failonce_26:fn", "--eval_before", "false")
    assert main(argv) == 1  # the reward raised in the first step: nothing saved but the options
    assert main(argv) == 1, capsys.readouterr().err  # the same command is not refused (exit 2): it runs again
    capsys.readouterr()
    assert main(["--resume", str(out)]) == 2
    hint = re.search(r"`(eapo train [^`]+)`", capsys.readouterr().err).group(1)
    (tmp_path / "fail-now").unlink()
    assert main(shlex.split(hint)[2:]) == 0
    assert (out / "model" / "model.safetensors").is_file() and json.loads((out / "eval.json").read_text())["steps"]


def test_run_folders_are_named_by_model_and_never_resume_another_models_run(tmp_path, monkeypatch, capsys):
    """Issue 26, point 3: the default run folder of a model other than the tiny world's names the model, and a
    refusal never suggests --resume for a run of another model."""
    import shutil

    from eapo.cli.train import main

    monkeypatch.chdir(tmp_path)
    other = tmp_path / "models" / "SmolThing-1B"
    shutil.copytree(BASE_MODEL_DIR, other)
    config, _ = parse_args(["--model_path", str(other)])
    assert config.output_dir == os.path.join("runs", "SmolThing-1B-eapo-seed0")
    config, _ = parse_args([])
    assert config.output_dir == os.path.join("runs", "eapo-seed0")

    run = tmp_path / "runs" / "eapo-seed0"  # a run of the shipped policy, with a checkpoint
    shutil.copytree(BASE_MODEL_DIR, run / "checkpoint-2")
    (run / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (run / "config.json").write_text(json.dumps({"method": "eapo", "model_path": None}))
    (run / "config.yaml").write_text("max_steps: 2\n")
    capsys.readouterr()
    assert main(["--model_path", str(other), "--output_dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "--resume" not in err and "another model" in err and "--output_dir" in err
    assert main(["--output_dir", str(run)]) == 2
    assert f"--resume {run}" in capsys.readouterr().err  # the same model: continuing it is the right hint


def test_the_start_line_says_defaults_method_and_cost_and_eval_bars_are_labelled(tmp_path, capsys):
    """Issue 26, point 4: one line at the start says which defaults applied, what the method changes compared
    with GRPO and a rough cost; the held-out evaluations' progress bars say which evaluation they are."""
    from eapo.cli.train import heldout_accuracy, start_line
    from eapo.tasks.registry import load_task
    from eapo.world import load_base
    from tiny import ascii_model_dir

    model = ascii_model_dir(tmp_path / "model")
    config, run = parse_args(["--model_path", str(model), "--output_dir", str(tmp_path / "run")])
    line = start_line(config, run)
    assert "\n" not in line
    for needle in ("real-model defaults (max_steps 100, max_completion_length 256", "learning_rate 1e-06",
                   "method eapo (eapo_alpha 0.2, eapo_phi 2)", "loss_type dapo", "clip [0.8, 1.28] (clip-higher)",
                   "up to 8 generation rounds", "800 to 6,400 training completions of up to 256 tokens",
                   "112 evaluation completions", "memory about", "disk about", "2 checkpoints"):  # fmt: skip
        assert needle in line, (needle, line)

    policy, tokenizer = load_base()
    config, run = parse_args(["--eval_k", "1", "--output_dir", str(tmp_path / "tiny")])
    capsys.readouterr()
    heldout_accuracy(policy, tokenizer, load_task("countdown", eval_size=2), run, seed=0, when="before")
    assert "held-out eval (before)" in capsys.readouterr().err


def test_checkpoints_only_every_save_steps_the_final_policy_is_model_and_resume_works(tmp_path, monkeypatch, capsys):
    """Issue 26, point 4: eapo train writes checkpoint-N at multiples of --save_steps only (Transformers adds one
    at the last step: for the README's 2-step SmolLM2 run 1.6 GB of weights and Adam state next to model/); the
    final policy is model/, and a run resumes from its last periodic checkpoint."""
    from eapo.cli.train import main, start_line

    monkeypatch.chdir(tmp_path)
    smoke = tmp_path / "smoke"
    assert main(_quick(smoke, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "50")) == 0
    assert not list(smoke.glob("checkpoint-*")) and (smoke / "model" / "model.safetensors").is_file()
    assert "disk about" in (line := start_line(*parse_args(_quick(smoke, "--save_strategy", "steps")))), line
    assert "checkpoint" not in line.split("disk about")[1]  # the cost says so: the model only

    out = tmp_path / "run"
    assert main(_quick(out, "--max_steps", "3", "--save_strategy", "steps", "--save_steps", "2")) == 0
    assert {p.name for p in out.glob("checkpoint-*")} == {"checkpoint-2"}
    capsys.readouterr()
    assert main(["--resume", str(out)]) == 0
    assert "resuming" in capsys.readouterr().out and json.loads((out / "eval.json").read_text())["steps"] == 3
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_a_cpu_run_at_trls_learning_rate_on_a_fetched_model_points_to_its_recipe(tmp_path, monkeypatch):
    """Issue 24, point 3: real-model defaults on SmolLM2's architecture (recognised from config.json) print a
    second start line naming the recipe that learns on a CPU, its learning rate and size, and the command; not
    when the learning rate is set, for another architecture, or without the recipe file."""
    import eapo.trainer.recipes as recipes
    from eapo.pipeline.training import recipe_hint

    model = tmp_path / "smol"
    model.mkdir()
    arch = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "vocab_size": 49152}
    (model / "config.json").write_text(json.dumps(arch))
    shipped = tmp_path / "recipes"
    shipped.mkdir()
    monkeypatch.setattr(recipes, "RECIPES_DIR", shipped)

    def hint(*flags: str) -> str | None:
        return recipe_hint(*parse_args(["--model_path", str(model), "--output_dir", str(tmp_path / "r"), *flags]))

    assert hint() is None  # no recipe file in this checkout
    (shipped / "smollm2-wordproblems.yaml").write_text("learning_rate: 3.0e-5\nper_device_train_batch_size: 16\n"
                                                       "max_steps: 40\n")  # fmt: skip
    line = hint()
    assert line is not None and "\n" not in line
    for needle in ("learning rate 1e-06, 8 completions a step", "learning rate 3e-05, 16 completions a step, 40 steps",
                   f"eapo train --config {shipped / 'smollm2-wordproblems.yaml'} --model_path {model}"):  # fmt: skip
        assert needle in line, (needle, line)
    assert hint("--learning_rate", "1e-6") is None  # chosen by the user, even if equal to TRL's
    (model / "config.json").write_text(json.dumps({**arch, "num_hidden_layers": 24}))  # another SmolLM2 size
    assert hint() is None
    gemma = {"model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18, "vocab_size": 262144}
    (model / "config.json").write_text(json.dumps(gemma))  # Gemma-3-270m: its recipe trains LoRA adapters
    (shipped / "gemma3-wordproblems.yaml").write_text("use_peft: true\nlora_r: 16\nlearning_rate: 1.0e-4\n"
                                                      "per_device_train_batch_size: 16\nmax_steps: 47\n")  # fmt: skip
    assert "(LoRA rank 16, learning rate 0.0001, 16 completions a step, 47 steps" in hint()
