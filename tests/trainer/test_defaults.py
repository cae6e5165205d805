"""Which defaults `eapo train` applies: the tiny world's for the tiny world, the real-model set for any other
model, and explicit flags (and YAML) over both."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from eapo.cli.train import main as train_main
from eapo.cli.train import parse_args
from eapo.trainer.defaults import (
    REAL_MODEL,
    REAL_MODEL_DEFAULTS,
    TINY_WORLD,
    TINY_WORLD_DEFAULTS,
    defaults_for,
    is_tiny_world,
)
from eapo.world import BASE_MODEL_DIR
from tiny import ascii_model_dir


@pytest.fixture(scope="module")
def real_model(tmp_path_factory):
    """A model that is not the tiny world: a random Qwen2 over printable ASCII (other sizes, other vocabulary)."""
    return ascii_model_dir(tmp_path_factory.mktemp("ascii-model"))


def test_the_two_sets_differ_where_a_real_model_needs_it():
    assert TINY_WORLD_DEFAULTS["max_completion_length"] == 24 and REAL_MODEL_DEFAULTS["max_completion_length"] > 128
    assert TINY_WORLD_DEFAULTS["per_device_train_batch_size"] == 64
    assert REAL_MODEL_DEFAULTS["learning_rate"] == 1e-6  # TRL's GRPOConfig default
    budget = REAL_MODEL_DEFAULTS["max_steps"] * REAL_MODEL_DEFAULTS["per_device_train_batch_size"]
    evals = 2 * REAL_MODEL_DEFAULTS["eval_problems"] * REAL_MODEL_DEFAULTS["eval_k"]
    periodic = REAL_MODEL_DEFAULTS["max_steps"] // REAL_MODEL_DEFAULTS["heldout_eval_steps"] + 1
    evals += periodic * REAL_MODEL_DEFAULTS["heldout_eval_problems"] * REAL_MODEL_DEFAULTS["heldout_eval_k"]
    assert evals <= 0.3 * budget  # sampled evaluation completions vs training completions (see the module docstring)


def test_defaults_for_tells_the_tiny_world_from_other_models(real_model, tmp_path):
    assert defaults_for(None) == (TINY_WORLD, TINY_WORLD_DEFAULTS)
    assert defaults_for(BASE_MODEL_DIR)[0] == TINY_WORLD
    checkpoint = tmp_path / "checkpoint"  # a trained copy of the tiny world: same architecture
    shutil.copytree(BASE_MODEL_DIR, checkpoint)
    assert is_tiny_world(checkpoint)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(checkpoint)}))
    assert is_tiny_world(adapter)
    assert defaults_for(real_model) == (REAL_MODEL, REAL_MODEL_DEFAULTS)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(real_model)}))
    assert not is_tiny_world(adapter)
    defaults_for(real_model)[1]["max_steps"] = 1  # a copy: the module's dict is unchanged
    assert REAL_MODEL_DEFAULTS["max_steps"] == 100


def test_real_model_gets_the_real_model_defaults(real_model, tmp_path):
    config, run = parse_args(["--output_dir", str(tmp_path), "--model_path", str(real_model)])
    assert run.defaults == REAL_MODEL
    assert config.max_completion_length == REAL_MODEL_DEFAULTS["max_completion_length"]
    assert config.max_steps == REAL_MODEL_DEFAULTS["max_steps"] and config.learning_rate == 1e-6
    assert config.per_device_train_batch_size == 8 and not config.bf16
    assert (run.eval_problems, run.eval_k) == (REAL_MODEL_DEFAULTS["eval_problems"], REAL_MODEL_DEFAULTS["eval_k"])
    assert run.heldout_eval_steps == REAL_MODEL_DEFAULTS["heldout_eval_steps"]
    _, again = parse_args([f"--model_path={real_model}", "--output_dir", str(tmp_path)])
    assert again.defaults == REAL_MODEL


def test_tiny_world_keeps_its_defaults(tmp_path):
    config, run = parse_args(["--output_dir", str(tmp_path)])
    assert run.defaults == TINY_WORLD
    assert config.max_completion_length == 24 and config.max_steps == 600 and config.learning_rate == 5e-5
    assert (run.eval_problems, run.eval_k, run.heldout_eval_steps) == (200, 8, 100)
    _, run = parse_args(["--output_dir", str(tmp_path), "--model_path", str(BASE_MODEL_DIR)])
    assert run.defaults == TINY_WORLD


def test_explicit_flags_and_yaml_win_over_both_sets(real_model, tmp_path):
    flags = ["--max_completion_length", "40", "--learning_rate", "3e-5", "--eval_problems", "5", "--max_steps", "7"]
    for model in ([], ["--model_path", str(real_model)]):
        config, run = parse_args(["--output_dir", str(tmp_path), *model, *flags])
        assert (config.max_completion_length, config.learning_rate, config.max_steps) == (40, 3e-5, 7)
        assert run.eval_problems == 5
    recipe = tmp_path / "run.yaml"
    recipe.write_text(yaml.safe_dump({"model_path": str(real_model), "max_completion_length": 64}))
    config, run = parse_args(["--config", str(recipe), "--output_dir", str(tmp_path)])
    assert run.defaults == REAL_MODEL and config.max_completion_length == 64  # the YAML's model picks the set
    assert config.max_steps == REAL_MODEL_DEFAULTS["max_steps"]
    config, _ = parse_args(["--config", str(recipe), "--output_dir", str(tmp_path), "--max_completion_length", "9"])
    assert config.max_completion_length == 9


def test_saved_options_keep_a_value_equal_to_the_field_default(real_model, tmp_path):
    """A real-model run given `--eval_problems 200` (the field's default, not the real-model set's 16) saves it in
    config.yaml, so that `--resume` and `--config RUN/config.yaml` evaluate 200 problems, not 16 (a resumed Gemma-3
    run once evaluated 16)."""
    flags = ["--model_path", str(real_model), "--eval_problems", "200", "--heldout_eval_problems", "100"]
    _, run = parse_args(["--output_dir", str(tmp_path / "run"), *flags])
    assert (run.inputs["eval_problems"], run.inputs["heldout_eval_problems"]) == (200, 100)
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(run.inputs))
    _, again = parse_args(["--config", str(saved), "--output_dir", str(tmp_path / "run")])
    assert (again.eval_problems, again.heldout_eval_problems, again.eval_k) == (200, 100, REAL_MODEL_DEFAULTS["eval_k"])


def test_a_resume_keeps_the_run_options_it_started_with(real_model, tmp_path):
    """`--resume` of a folder whose config.yaml lacks `eval_problems` (as one written before 5c0a3ee: the value was
    the field default) takes it from config.json (what the run resolved), not from the real-model defaults (16);
    a flag still wins; without a readable config.json, config.yaml and the defaults apply as before."""
    run_dir = tmp_path / "run"
    flags = ["--model_path", str(real_model), "--eval_problems", "200", "--heldout_eval_problems", "100"]
    config, run = parse_args(["--output_dir", str(run_dir), *flags])
    run_dir.mkdir()
    old_yaml = {k: v for k, v in run.inputs.items() if k not in ("eval_problems", "heldout_eval_problems")}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(old_yaml))
    resolved = {**config.resolved(), **vars(run), "resume": None}
    (run_dir / "config.json").write_text(json.dumps(resolved, default=str))
    _, again = parse_args(["--resume", str(run_dir)])
    assert (again.eval_problems, again.heldout_eval_problems, again.resume) == (200, 100, str(run_dir))
    _, flagged = parse_args(["--resume", str(run_dir), "--eval_problems", "50"])
    assert flagged.eval_problems == 50
    (run_dir / "config.json").write_text("{not json")
    _, bare = parse_args(["--resume", str(run_dir)])
    assert bare.eval_problems == REAL_MODEL_DEFAULTS["eval_problems"] == 16


def test_config_yaml_stays_as_started_through_every_resume(real_model, tmp_path, monkeypatch):
    """Each `--resume` writes config.yaml back with the options the run started with (and the flags given at the
    resume), not with every option config.json filled in: after two resumes, `eapo ablate`'s check of the folder
    against its planned flags still finds the same run ("unfinished"), where a rewritten config.yaml (60 options
    for 38) made it refuse the folder as "a run with other options"."""
    import eapo.trainer.checkpoint as checkpoint_module
    from eapo.cli.runs import run_state
    from eapo.pipeline.training import _start_run_folder

    run_dir = tmp_path / "run"
    flags = ["--model_path", str(real_model), "--eval_problems", "200", "--max_steps", "7"]
    config, run = parse_args([*flags, "--output_dir", str(run_dir)])
    _start_run_folder(run_dir, config, run, None)
    started = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert started == run.inputs and len(json.loads((run_dir / "config.json").read_text())) > len(started)
    monkeypatch.setattr(checkpoint_module, "prepare_resume", lambda folder: folder / "checkpoint-3")
    for _ in range(2):
        config, run = parse_args(["--resume", str(run_dir)])
        assert _start_run_folder(run_dir, config, run, run_dir / "checkpoint-3") == run_dir / "checkpoint-3"
        assert yaml.safe_load((run_dir / "config.yaml").read_text()) == started
    assert run_state(run_dir, flags) == "unfinished"
    config, run = parse_args(["--resume", str(run_dir), "--max_steps", "9"])  # a flag given at a resume is kept
    _start_run_folder(run_dir, config, run, run_dir / "checkpoint-3")
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == {**started, "max_steps": 9}
    assert parse_args(["--resume", str(run_dir)])[0].max_steps == 9


@pytest.mark.slow
def test_config_json_records_the_defaults(real_model, tmp_path):
    out = tmp_path / "run"
    flags = ["--model_path", str(real_model), "--output_dir", str(out), "--max_steps", "1", "--save_strategy", "no",
             "--max_completion_length", "8", "--eval_problems", "2", "--eval_k", "2", "--heldout_eval_steps", "0",
             "--task", "arithmetic", "--report", "false", "--disable_tqdm", "true"]  # fmt: skip
    assert train_main(flags) == 0
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["defaults"] == REAL_MODEL
    assert resolved["per_device_train_batch_size"] == 8 and resolved["max_completion_length"] == 8


def test_a_gguf_file_as_model_path_is_one_line(tmp_path, capsys):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    assert train_main(["--model_path", str(model), "--output_dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a GGUF file: convert it once with `eapo model convert" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_fp16_given_drops_the_bf16_default(tmp_path, monkeypatch):
    """On a GPU a real model's default is bf16 (world_defaults); a user's --fp16 true replaces it instead of being
    refused by TRL for setting both (the GPU stood in for by a bf16 default on every world)."""
    from eapo.pipeline import options

    world = options.world_defaults
    monkeypatch.setattr(options, "world_defaults", lambda path: (world(path)[0], {**world(path)[1], "bf16": True}))
    config, _ = parse_args(["--output_dir", str(tmp_path / "a")])
    assert config.bf16 is True and config.fp16 is False
    config, _ = parse_args(["--fp16", "true", "--output_dir", str(tmp_path / "b")])
    assert config.fp16 is True and config.bf16 is False


def test_config_yaml_leaves_out_the_machines_use_cpu(real_model, tmp_path):
    """`use_cpu` is this machine's (no GPU here), not the run's: config.yaml leaves it out unless given, so that
    `--config RUN/config.yaml` on a GPU trains there; a folder whose config.yaml (written before) records it is
    still the same run for `eapo ablate`."""
    from eapo.cli.runs import run_state
    from eapo.pipeline.training import _start_run_folder

    config, run = parse_args(["--model_path", str(real_model), "--output_dir", str(tmp_path / "a")])
    assert config.use_cpu is True and "use_cpu" not in run.inputs
    _, given = parse_args(["--use_cpu", "true", "--output_dir", str(tmp_path / "b")])
    assert given.inputs["use_cpu"] is True
    run_dir = tmp_path / "old"
    flags = ["--model_path", str(real_model), "--max_steps", "7"]
    config, run = parse_args([*flags, "--output_dir", str(run_dir)])
    _start_run_folder(run_dir, config, run, None)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**saved, "use_cpu": True}))  # as written before
    assert run_state(run_dir, flags) == "unfinished"
