"""Bad inputs to `eapo train`: one line naming the field and the fix, exit code 2, and the run folder untouched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from eapo.cli.train import main as train_main
from eapo.errors import InputError
from eapo.pipeline.checks import check_tokenizer
from eapo.world import BASE_MODEL_DIR

SAVED = {"max_steps": 8, "save_steps": 3, "eval_problems": 4, "eval_k": 1}  # the options a run saved


def _weights(path: Path, values: list[float]) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.tensor(values)}, str(path))


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run folder from an earlier run: config, step log, a complete and a half-written checkpoint."""
    run = tmp_path / "run"
    (run / "checkpoint-3").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"method": "eapo", **SAVED}))
    (run / "config.yaml").write_text(yaml.safe_dump(SAVED))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 0.1 * s}) + "\n" for s in range(1, 6)))
    (run / "checkpoint-3" / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    _weights(run / "checkpoint-3" / "model.safetensors", [1.0, 2.0])
    (run / ".staging" / "checkpoint-6").mkdir(parents=True)
    (run / ".staging" / "checkpoint-6" / "model.safetensors").write_bytes(b"half")
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _model_copy(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copytree(BASE_MODEL_DIR, path)
    return path


def _fails(argv: list[str], run_dir: Path, capsys, *needles: str) -> str:
    before = _snapshot(run_dir)
    capsys.readouterr()
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("eapo train: "), err
    for needle in needles:
        assert needle in err, err
    assert _snapshot(run_dir) == before, "the run folder changed"
    return err


@pytest.mark.parametrize(
    "flags, needles",
    [
        (["--method", "nope"], ["unknown method 'nope'", "eapo"]),
        (["--quadrants", "PHR,XYZ"], ["quadrants", "XYZ"]),
        (["--eapo_shaped_quadrants", "NHR,foo"], ["eapo_shaped_quadrants", "foo"]),
        (["--eapo_alpha", "-0.1"], ["eapo_alpha=-0.1", "use a value >= 0"]),
        (["--eapo_phi", "0"], ["eapo_phi=0.0", "use a value > 0"]),
        (["--num_generations", "1"], ["num_generations=1", "at least 2"]),
        (["--reward_error_policy", "ignore"], ["reward_error_policy='ignore'", "'zero'"]),
        (["--eval_k", "0"], ["eval_k=0", ">= 1"]),
    ],
)
def test_bad_option_exits_2_and_keeps_the_run_folder(flags, needles, run_dir, capsys):
    _fails(["--output_dir", str(run_dir), *flags], run_dir, capsys, *needles)
    _fails(["--resume", str(run_dir), *flags], run_dir, capsys, *needles)  # also when resuming


def test_missing_model_path(run_dir, tmp_path, capsys):
    missing = tmp_path / "nope"
    _fails(["--resume", str(run_dir), "--model_path", str(missing)], run_dir, capsys, "model_path=", "does not exist")


def test_model_path_that_is_a_file_or_has_no_config(run_dir, tmp_path, capsys):
    a_file = tmp_path / "weights.safetensors"
    a_file.write_bytes(b"x")
    _fails(["--resume", str(run_dir), "--model_path", str(a_file)], run_dir, capsys, "is a file, not a folder")
    no_config = _model_copy(tmp_path, "no_config")
    (no_config / "config.json").unlink()
    _fails(["--resume", str(run_dir), "--model_path", str(no_config)], run_dir, capsys, "no readable config.json")


def test_pickled_weights_are_refused(run_dir, tmp_path, capsys):
    model = _model_copy(tmp_path, "bin_only")
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    _fails(
        ["--resume", str(run_dir), "--model_path", str(model)],
        run_dir,
        capsys,
        "model_path=",
        "pytorch_model.bin",
        "safetensors only",
        "safe_serialization=True",
    )


def test_tokenizer_larger_than_the_model_vocabulary(run_dir, tmp_path, capsys):
    model = _model_copy(tmp_path, "small_vocab")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "vocab_size": 12}))
    _fails(
        ["--resume", str(run_dir), "--model_path", str(model)],
        run_dir,
        capsys,
        "the tokenizer has 20 tokens but the model's vocab_size is 12",
        "use the tokenizer saved with this model",
    )


def test_unloadable_tokenizer(run_dir, tmp_path, capsys):
    model = _model_copy(tmp_path, "broken_tokenizer")
    (model / "tokenizer.json").write_text("{not json")
    _fails(["--resume", str(run_dir), "--model_path", str(model)], run_dir, capsys, "tokenizer does not load")


class _IdsTokenizer:
    """A tokenizer stub that maps every text to fixed ids."""

    def __init__(self, size: int, ids: list[int]):
        self.size, self.ids = size, ids

    def __len__(self) -> int:
        return self.size

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": self.ids}


def test_task_token_ids_must_fit_the_embedding():
    check_tokenizer(_IdsTokenizer(10, [0, 9]), 10, ["3,5,7>22:"])
    with pytest.raises(InputError) as err:  # a library error (a ValueError); the CLI makes it exit code 2
        check_tokenizer(_IdsTokenizer(10, [3, 10]), 10, ["3,5,7>22:"])
    assert "token id 10" in str(err.value) and "vocab_size 10" in str(err.value)


def test_resume_needs_a_run_folder_with_a_complete_checkpoint(run_dir, tmp_path, capsys):
    _fails(["--resume", str(tmp_path / "nope")], run_dir, capsys, "resume=", "not an `eapo train` run folder")
    shutil.rmtree(run_dir / "checkpoint-3")  # only the half-written one is left
    _fails(["--resume", str(run_dir)], run_dir, capsys, "no complete checkpoint", f"eapo train --config {run_dir}")
    (run_dir / "config.yaml").unlink()
    _fails(["--resume", str(run_dir)], run_dir, capsys, "no config.yaml")


def test_fresh_run_into_a_non_empty_folder_is_refused(run_dir, tmp_path, capsys):
    needles = ("is not empty", f"--resume {run_dir}", "--overwrite_output_dir")
    _fails(["--output_dir", str(run_dir)], run_dir, capsys, *needles)
    other = tmp_path / "other"  # any non-empty folder, not only one with checkpoints (compare's run folders had none)
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    _fails(["--output_dir", str(other)], other, capsys, "is not empty", "--overwrite_output_dir")


@pytest.mark.parametrize(
    "flags, needles",
    [
        (["--max_steps", "-5"], ["max_steps=-5 is invalid", "positive"]),  # TRL would train a whole epoch
        (["--max_steps", "0"], ["max_steps=0 is invalid"]),
        (["--per_device_train_batch_size", "0"], ["per_device_train_batch_size=0 is invalid"]),
        (["--max_completion_length", "0"], ["max_completion_length=0 is invalid"]),
        (["--gradient_accumulation_steps", "0"], ["gradient_accumulation_steps=0 is invalid"]),
        (["--learning_rate", "-1"], ["learning_rate=-1.0 is invalid"]),
        (["--max_steps", "abc"], ["invalid int value: 'abc'", "eapo train --help"]),
        (["--report_to", "definitely_not_a_tracker_pkg"], ["definitely_not_a_tracker_pkg", "not installed", "none"]),
        (["--model_revision", "v2"], ["model_revision=v2", "local model folder", "has no revisions"]),  # was unused
        # non-finite numbers passed every range rule (inf) or TRL's own int conversion (a traceback)
        (["--learning_rate", "nan"], ["learning_rate=nan is invalid: use a finite number"]),
        (["--logging_steps", "inf"], ["logging_steps=inf is invalid: use a finite number"]),
        (["--eapo_phi", "inf"], ["eapo_phi=inf is invalid: use a finite number"]),
        (["--max_train_minutes", "nan"], ["max_train_minutes=nan is invalid: use a finite number"]),
        # TRL's sampling and optimizer options and eapo's evaluation ones, out of range, were accepted
        (["--temperature", "0"], ["temperature=0.0 is invalid: use a value > 0"]),
        (["--top_p", "2"], ["top_p=2.0 is invalid: use a fraction in (0, 1]"]),
        (["--adam_beta1", "1"], ["adam_beta1=1.0 is invalid: use a fraction in [0, 1)"]),
        (["--epsilon", "-0.2"], ["epsilon=-0.2 is invalid: use a value > 0"]),
        (["--eval_top_p", "0"], ["eval_top_p=0.0 is invalid: use a fraction in (0, 1]"]),
        (["--eval_max_new_tokens", "0"], ["eval_max_new_tokens=0 is invalid: use a value >= 1"]),
        (["--lora_r", "0"], ["lora_r=0 is invalid: use a rank >= 1"]),
        (["--model_path", ""], ["model_path='' is invalid: give a path, or leave --model_path out"]),
        (["--config", ""], ["--config needs a YAML file"]),
    ],
)
def test_counts_types_and_trackers(flags, needles, run_dir, capsys):
    _fails(["--output_dir", str(run_dir / "new"), *flags], run_dir, capsys, *needles)
    assert not (run_dir / "new").exists()


def test_missing_tracker_package_is_refused_before_loading(run_dir, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    _fails(["--output_dir", str(run_dir / "new"), "--report_to", "tensorboard"], run_dir, capsys,
           "report_to=tensorboard: the tensorboard package is not installed: pip install tensorboard")  # fmt: skip


@pytest.mark.parametrize(
    "yaml_text, needles",
    [
        ("max_steps: ten\n", ["max_steps: expected an integer, got 'ten'"]),
        ("learning_rate: [1, 2]\n", ["learning_rate: expected one value"]),
        ("use_peft: maybe\n", ["use_peft: expected true or false, got 'maybe'"]),
        ("max_stepz: 3\n", ["unknown option 'max_stepz'", "did you mean 'max_steps'"]),
        ("lr_scheduler_type: nope\n", ["lr_scheduler_type: expected one of"]),
        ("- a\n- b\n", ["expected a mapping"]),
    ],
)
def test_yaml_errors_name_the_file_and_the_key(yaml_text, needles, run_dir, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    _fails(["--config", str(config), "--output_dir", str(run_dir / "new")], run_dir, capsys, str(config), *needles)


def test_yaml_values_are_converted_like_flags(tmp_path):
    """PyYAML reads 1e-5 as a string; TRL's parser would pass it on as one. It arrives as the float."""
    from eapo.cli.train import parse_args

    config = tmp_path / "ok.yaml"
    config.write_text("learning_rate: 1e-5\nmax_steps: '7'\nquadrants: PHR,NHR\n")
    args, run = parse_args(["--config", str(config), "--output_dir", str(tmp_path / "run")])
    assert args.learning_rate == 1e-5 and args.max_steps == 7 and args.quadrants == "PHR,NHR"
    assert run.inputs["learning_rate"] == 1e-5


def test_the_old_name_of_activation_checkpointing_turns_it_on(run_dir, tmp_path, capsys):
    """transformers 5 reads `gradient_checkpointing` only where `activation_checkpointing` is unset, and the
    world defaults set it: without the move onto the new name the old one would be dropped without a word."""
    from eapo.cli.train import parse_args

    config, run = parse_args(["--gradient_checkpointing", "true", "--output_dir", str(tmp_path / "a")])
    assert config.activation_checkpointing is True and config.gradient_checkpointing is True
    assert run.inputs["activation_checkpointing"] is True and "gradient_checkpointing" not in run.inputs
    yaml_file = tmp_path / "old.yaml"
    yaml_file.write_text("gradient_checkpointing: true\ngradient_checkpointing_kwargs: {use_reentrant: false}\n")
    config, _ = parse_args(["--config", str(yaml_file), "--output_dir", str(tmp_path / "b")])
    assert config.activation_checkpointing is True
    assert config.activation_checkpointing_kwargs == {"use_reentrant": False}
    config, _ = parse_args(["--output_dir", str(tmp_path / "c")])
    assert config.activation_checkpointing is False and config.gradient_checkpointing is False  # the default
    _fails(["--gradient_checkpointing", "true", "--activation_checkpointing", "false", "--output_dir",
            str(run_dir / "new")], run_dir, capsys, "gradient_checkpointing=True and activation_checkpointing=False "
           "disagree", "give only activation_checkpointing")  # fmt: skip
    # a flag beats the YAML and a run's saved options under either name (each layer is renamed before merging)
    config, _ = parse_args(["--config", str(yaml_file), "--activation_checkpointing", "false", "--output_dir",
                            str(tmp_path / "d")])  # fmt: skip
    assert config.activation_checkpointing is False
    new_yaml = tmp_path / "new.yaml"
    new_yaml.write_text("activation_checkpointing: true\n")
    config, _ = parse_args(["--config", str(new_yaml), "--gradient_checkpointing", "false", "--output_dir",
                            str(tmp_path / "e")])  # fmt: skip
    assert config.activation_checkpointing is False
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "config.yaml").write_text(yaml.safe_dump(parse_args(["--output_dir", str(saved)])[1].inputs))
    assert "activation_checkpointing: false" in (saved / "config.yaml").read_text()
    config, run = parse_args(["--resume", str(saved), "--gradient_checkpointing", "true"])
    assert config.activation_checkpointing is True and run.inputs["activation_checkpointing"] is True


def test_trls_name_of_the_model_beats_a_yaml_model_path(run_dir, tmp_path, capsys):
    """`--model_name_or_path` (TRL's name of `--model_path`) is a flag: it beats a --config YAML's `model_path` (the
    YAML won before: `run.model_path or run.model_name_or_path`), and both names with two folders are refused."""
    from eapo.cli.train import parse_args

    copy = tmp_path / "copy"
    shutil.copytree(BASE_MODEL_DIR, copy)
    yaml_file = tmp_path / "model.yaml"
    yaml_file.write_text(f"model_path: {BASE_MODEL_DIR}\n")
    _, run = parse_args(["--config", str(yaml_file), "--model_name_or_path", str(copy), "--output_dir",
                         str(tmp_path / "a")])  # fmt: skip
    assert run.model_path == str(copy) and run.inputs["model_path"] == str(copy)
    assert "model_name_or_path" not in run.inputs
    yaml_file.write_text(f"model_name_or_path: {copy}\n")
    _, run = parse_args(["--config", str(yaml_file), "--model_path", str(BASE_MODEL_DIR), "--output_dir",
                         str(tmp_path / "b")])  # fmt: skip
    assert run.model_path == str(BASE_MODEL_DIR)
    _fails(["--model_path", str(BASE_MODEL_DIR), "--model_name_or_path", str(copy), "--output_dir",
            str(run_dir / "new")], run_dir, capsys, "disagree: model_name_or_path is another name of model_path",
           "give only model_path")  # fmt: skip


def test_a_resume_refuses_another_output_dir(run_dir, capsys):
    """`--resume RUN` continues RUN in its folder: another --output_dir (or --overwrite_output_dir) would be dropped
    without a word, so it is refused."""
    saved = run_dir.parent / "saved"
    saved.mkdir()
    from eapo.cli.train import parse_args

    (saved / "config.yaml").write_text(yaml.safe_dump(parse_args(["--output_dir", str(saved)])[1].inputs))
    _fails(["--resume", str(saved), "--output_dir", str(run_dir / "other")], run_dir, capsys,
           f"--resume continues the run in its own folder {saved}: leave out --output_dir")  # fmt: skip
    _fails(["--resume", str(saved), "--overwrite_output_dir", "true"], run_dir, capsys,
           "leave out --overwrite_output_dir")  # fmt: skip


def test_a_resume_refuses_a_learning_rate_its_checkpoint_would_overrule(run_dir, capsys):
    """The checkpoint's optimizer and scheduler state (param groups, base rates) are restored over a new
    --learning_rate: `eapo train --resume RUN --learning_rate X` recorded X and trained at the old rate (measured: a
    run at 5e-05 resumed with 0.001 logged 5e-05 at the new step), so a changed one is refused; the same is not."""
    from eapo.cli.train import parse_args

    saved = run_dir.parent / "saved"
    saved.mkdir()
    config, run = parse_args(["--output_dir", str(saved), "--learning_rate", "5e-05"])
    (saved / "config.yaml").write_text(yaml.safe_dump(run.inputs))
    resolved = {**config.resolved(), **vars(run), "resume": None}
    (saved / "config.json").write_text(json.dumps(resolved, default=str))
    _fails(["--resume", str(saved), "--learning_rate", "0.001"], run_dir, capsys,
           "resume: --learning_rate 0.001 differs from the run's 5e-05", "leave --learning_rate out")  # fmt: skip
    _fails(["--resume", str(saved), "--optim", "sgd"], run_dir, capsys, "--optim sgd differs from the run's adamw")
    config, _ = parse_args(["--resume", str(saved), "--learning_rate", "5e-5", "--max_steps", "9"])
    assert config.learning_rate == 5e-05 and config.max_steps == 9  # the same rate, and options it can change


def test_lora_without_peft_installed_is_one_line(run_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # a base install: no `lora` extra
    _fails(["--use_peft", "true", "--output_dir", str(run_dir / "new")], run_dir, capsys,
           "use_peft (a LoRA adapter) needs the `peft` package: pip install 'eapo[lora]'")  # fmt: skip


def _corrupt_model(tmp_path: Path, how: str) -> Path:
    model = _model_copy(tmp_path, f"model-{how}")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    if how == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        weights.write_bytes(b"\x00" * 7)
    elif how == "bad_header":
        weights.write_bytes((100).to_bytes(8, "little") + b"{not json" + data[17:])
    return model


@pytest.mark.parametrize("how", ["truncated", "garbage", "bad_header"])
def test_corrupt_weights_in_every_command_that_loads_a_model(how, run_dir, tmp_path, capsys):
    from tiny import cli_error

    model = _corrupt_model(tmp_path, how)
    _fails(["--output_dir", str(run_dir / "new"), "--model_path", str(model)], run_dir, capsys, "model.safetensors")
    assert not (run_dir / "new").exists()
    out = tmp_path / "out"
    for argv in (["eval", str(model)], ["credit", "--model_path", str(model)]):
        err = cli_error([*argv, "--output_dir", str(out)], capsys)
        assert "model.safetensors is" in err and ("truncated" in err or "corrupt" in err), err
        assert not out.exists()


def test_files_that_are_not_text_are_one_line(run_dir, tmp_path, capsys):
    """A --config YAML or a model's config.json that is not UTF-8 raised UnicodeDecodeError (a traceback)."""
    from tiny import cli_error

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00lr")
    _fails(["--config", str(binary), "--output_dir", str(run_dir / "new")], run_dir, capsys,
           f"config: cannot read {binary}: it is not UTF-8 text")  # fmt: skip
    model = _model_copy(tmp_path, "model-binary-config")
    (model / "config.json").write_bytes(b"\xff\xfe{}")
    _fails(["--output_dir", str(run_dir / "new"), "--model_path", str(model)], run_dir, capsys,
           "config.json is not UTF-8 text")  # fmt: skip
    err = cli_error(["eval", str(model), "--output_dir", str(tmp_path / "o")], capsys)
    assert "config.json is not UTF-8 text" in err, err
    assert not (tmp_path / "o").exists()


def test_a_run_folder_where_a_model_folder_is_expected(tmp_path, capsys):
    from tiny import cli_error

    run = tmp_path / "run"
    shutil.copytree(BASE_MODEL_DIR, run / "model")
    (run / "config.json").write_text(json.dumps({"method": "eapo", "output_dir": str(run)}))
    (run / "metrics.jsonl").write_text("")
    for argv in (["eval", str(run)], ["credit", "--model_path", str(run)]):
        err = cli_error([*argv, "--output_dir", str(tmp_path / "out")], capsys)
        assert "is an `eapo train` run folder" in err and str(run / "model") in err
    before = _snapshot(run)
    assert train_main(["--output_dir", str(tmp_path / "new"), "--model_path", str(run)]) == 2
    assert str(run / "model") in capsys.readouterr().err and _snapshot(run) == before


def test_empty_task_file(run_dir, tmp_path, capsys):
    for name, text in (("empty.jsonl", ""), ("blank.csv", "prompt,answer\n")):
        data = tmp_path / name
        data.write_text(text)
        _fails(["--output_dir", str(run_dir / "new"), "--task", str(data)], run_dir, capsys, str(data))


def test_exit_status_2_and_no_traceback_from_the_command_line(run_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "eapo", "train", "--output_dir", str(run_dir), "--eapo_phi", "-1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    expected = "eapo train: eapo_phi=-1.0 is invalid: use a value > 0 (the paper uses 2.0)"
    assert proc.stderr.strip().splitlines()[-1] == expected


# ----- safety --------------------------------------------------------------------------------------------


def test_remote_code_is_off_by_default(tmp_path):
    from eapo.cli.train import parse_args

    config, _ = parse_args(["--output_dir", str(tmp_path)])
    assert config.trust_remote_code is False


def test_load_base_never_runs_model_folder_code_nor_pickles(tmp_path):
    from eapo.world import load_base

    model = _model_copy(tmp_path, "remote_code")
    marker = tmp_path / "code_ran"
    (model / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    config = json.loads((model / "config.json").read_text())
    auto_map = {"AutoModelForCausalLM": "modeling_evil.Evil", "AutoConfig": "modeling_evil.EvilConfig"}
    (model / "config.json").write_text(json.dumps({**config, "auto_map": auto_map}))
    try:
        load_base(model)
    except (OSError, ValueError):
        pass  # refusing is fine too; running the folder's code is not
    assert not marker.exists()

    pickled = _model_copy(tmp_path, "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(OSError):
        load_base(pickled)


def test_missing_dataset_column_and_bad_task(run_dir, tmp_path, capsys):
    """A data file without the mapped columns, an unknown task, a bad reward: exit 2 before any model loads."""
    import datasets

    datasets.disable_progress_bars()  # the loader's own progress lines are not part of the message
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps({"question": f"{i}+1=", "solution": str(i + 1)}) + "\n" for i in range(8)))
    _fails(
        ["--resume", str(run_dir), "--task", str(data), "--prompt_column", "problem"],
        run_dir, capsys, "no column 'problem'", "columns: question, solution", "--prompt_column",
    )  # fmt: skip
    _fails(["--resume", str(run_dir), "--task", "rg:nope"], run_dir, capsys, "unknown reasoning-gym task 'nope'")
    _fails(["--resume", str(run_dir), "--reward", "no_such_module_xyz:f"], run_dir, capsys, "no_such_module_xyz")
    datasets.enable_progress_bars()


@pytest.mark.parametrize("extra", [[], ["--gradient_accumulation_steps", "2"]])
def test_group_size_error_names_the_users_flags_and_its_fix_works(extra, run_dir, capsys):
    """Issue 26, point 11: TRL's "generation_batch_size (4) must be divisible by num_generations (3)" names a field
    the user never set; eapo's line names the user's flags, and the fix it gives, followed literally, parses."""
    import re

    from eapo.cli.train import parse_args

    argv = ["--output_dir", str(run_dir / "new"), "--per_device_train_batch_size", "4", "--num_generations", "3"]
    err = _fails([*argv, *extra], run_dir, capsys, "per_device_train_batch_size=4", "num_generations=3")
    assert "generation_batch_size (" not in err
    fix = re.search(r"use (--per_device_train_batch_size \d+)", err).group(1).split()
    config, _ = parse_args([*argv, *extra, *fix])
    assert config.generation_batch_size % 3 == 0
