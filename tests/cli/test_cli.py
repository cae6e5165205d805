"""Every `eapo` command: `--help` renders and answers fast (no torch import), bad input is one line and exit
code 2, and `eapo train --help` is the live parser's help (shipped pre-rendered)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from eapo.cli import COMMANDS, build_parser, main
from eapo.world import BASE_MODEL_DIR
from tiny import cli_error

NAMES = [name for name, _, _ in COMMANDS]


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in NAMES)
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(NAMES)  # noqa: SLF001


@pytest.mark.parametrize("name", [n for n in NAMES if n != "train"])
def test_command_help_renders(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: eapo {name}" in capsys.readouterr().out


def test_train_help_is_the_live_parsers_and_groups_eapo_first(capsys):
    from eapo.cli.train import HELP_FILE, render_help

    fix = "python scripts/generate_docs.py"
    assert HELP_FILE.read_text() == render_help(), f"train_help.txt is stale: {fix}"
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--config YAML" in out and "--quadrants" in out
    run_group = out.index("eapo train: run, task, model and evaluation options")
    method_group = out.index("eapo method options (EAPOConfig)")
    trl_group = out.index("TRL options (GRPOConfig")
    assert method_group < run_group < trl_group
    assert out.index("--method METHOD") > method_group and out.index("--learning_rate") > trl_group


def test_train_help_puts_eapo_first_one_flag_per_concept_both_worlds_defaults(capsys):
    """Issue 26, point 9: eapo's method, run, task, model and evaluation options come before TRL's model loading,
    LoRA and bitsandbytes options; --model_name_or_path and the --no_X flags are not listed (they still parse);
    defaults that differ between the tiny world and a real model show both."""
    from eapo.cli.train import parse_args

    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    first = {flag: next(i for i, line in enumerate(lines) if line.lstrip().startswith(flag)) for flag in
             ("--method", "--model_path", "--task", "--eval_problems", "--use_peft", "--load_in_4bit")}  # fmt: skip
    assert first["--method"] < 20
    assert max(first["--method"], first["--model_path"], first["--task"], first["--eval_problems"]) < min(
        first["--use_peft"], first["--load_in_4bit"]
    )
    assert not any(line.lstrip().startswith(("--model_name_or_path", "--no_", "--no-")) for line in lines)
    assert "--max-steps" not in out and "--max_steps MAX_STEPS" in out
    flat = " ".join(out.split())
    assert "tiny world 200; real model 16" in flat and "tiny world 600; real model 100" in flat
    config, run = parse_args(["--no_report", "--model_name_or_path", str(BASE_MODEL_DIR), "--max-steps", "3"])
    assert run.report is False and run.model_path == str(BASE_MODEL_DIR) and config.max_steps == 3  # TRL's name


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in NAMES]], ids=lambda a: " ".join(a))
def test_help_answers_in_under_a_second(argv):
    """Measured in a fresh interpreter (the best of 3, as a loaded CI machine makes single runs noisy): the
    command line imports neither torch nor TRL to print help."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "eapo", *argv], capture_output=True, text=True, timeout=120)
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
    check = "import sys, eapo.cli as c; c.build_parser(); print('torch' in sys.modules, 'trl' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.split() == [
        "False",
        "False",
    ]
    assert best < 1.0, f"eapo {' '.join(argv)} took {best:.2f} s"


BAD_INPUT = {
    "train": (["train", "--max_steps", "abc"], "invalid int value: 'abc'"),
    "eval": (["eval", "--eval_k", "0"], "--eval_k 0: use at least 1"),
    "compare": (["compare", "--methods", "nope"], "unknown method 'nope'"),
    "ablate": (["ablate", "--seeds", "0"], "must be >= 1"),
    "credit": (["credit", "--m", "1"], "--m 1: use at least 2"),
    "report": (["report", "/nonexistent/run"], "/nonexistent/run"),
    "evalsuite": (["evalsuite", "/nonexistent.yaml", "--model_path", "x"], "nonexistent.yaml"),
    "methods": (["methods", "--bogus"], "unrecognized arguments: --bogus"),
    "model": (["model", "convert", "/nonexistent.gguf", "--output_dir", "out"], "/nonexistent.gguf"),
    "warmstart": (["warmstart", "--max_steps", "0"], "--max_steps 0: use at least 1"),
    "version": (["version", "--bogus"], "unrecognized arguments: --bogus"),
}


def test_every_command_has_a_bad_input_case():
    assert set(BAD_INPUT) == set(NAMES)


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, expected = BAD_INPUT[name]
    assert expected in cli_error(argv, capsys)
    assert not any(tmp_path.iterdir()), "nothing is written on bad input"
