"""Bad values of the flags of `eapo eval`, `credit`, `evalsuite`, `model` and `warmstart`: one line on stderr, exit
code 2, refused before any task, model or data loads, and nothing written (each case failed after the work, or
with a traceback, or was accepted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny import cli_error

# the smallest work each command could do, so that a check that comes too late fails fast
EVAL = ["eval", "--eval_k", "1", "--eval_problems", "1", "--max_completion_length", "2"]
CREDIT = ["credit", "--problems", "1", "--num_generations", "1", "--branch_completions", "1", "--positions", "1",
          "--m", "2", "--bootstrap", "10", "--max_completion_length", "2"]  # fmt: skip


def _tree(root: Path) -> list[tuple[str, bool]]:
    return sorted((str(p.relative_to(root)), p.is_dir()) for p in root.rglob("*"))


@pytest.fixture
def place(tmp_path, monkeypatch):
    """The working folder, with a file `F`, an empty folder `D`, a folder `N` holding a file, and a recipe."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "F").write_text("a file\n")
    (tmp_path / "D").mkdir()
    (tmp_path / "N").mkdir()
    (tmp_path / "N" / "keep.txt").write_text("mine\n")
    (tmp_path / "r.yaml").write_text("benchmarks:\n  a: {path: x.jsonl, k: 2}\n")
    return tmp_path


CASES = {
    "eval temperature nan": ([*EVAL, "--temperature", "nan"], "eapo eval: --temperature nan: use a finite value > 0"),
    "eval temperature inf": ([*EVAL, "--temperature", "inf"], "eapo eval: --temperature inf: use a finite value > 0"),
    "eval threshold nan": ([*EVAL, "--threshold", "nan"], "eapo eval: --threshold nan: use a finite number"),
    "eval threshold -inf": ([*EVAL, "--threshold=-inf"], "eapo eval: --threshold -inf: use a finite number"),
    "eval output folder": ([*EVAL, "--output", "D"], "eapo eval: --output 'D' is a folder: give a file name"),
    "eval output empty": ([*EVAL, "--output", ""], "eapo eval: --output '': give a file name"),
    "eval output_dir file": ([*EVAL, "--output_dir", "F"], "eapo eval: --output_dir 'F' is a file, not a folder"),
    "eval output_dir under a file": ([*EVAL, "--output_dir", "F/sub"], "its parent"),
    "credit temperature inf": ([*CREDIT, "--temperature", "inf"], "eapo credit: --temperature inf: use a finite"),
    "credit temperature nan": ([*CREDIT, "--temperature", "nan"], "eapo credit: --temperature nan: use a finite"),
    "credit threshold nan": ([*CREDIT, "--threshold", "nan"], "eapo credit: --threshold nan: use a finite number"),
    "credit output_dir file": ([*CREDIT, "--output_dir", "F"], "eapo credit: --output_dir 'F' is a file, not a"),
    "evalsuite limit 0": (["evalsuite", "r.yaml", "--model_path", "m", "--limit", "0"], "--limit 0: use at least 1"),
    "evalsuite batch_size 0": (
        ["evalsuite", "r.yaml", "--model_path", "m", "--batch_size", "0"],
        "eapo evalsuite: --batch_size 0: use at least 1",
    ),
    "evalsuite max_completion_length -1": (
        ["evalsuite", "r.yaml", "--model_path", "m", "--max_new_tokens", "-1"],
        "eapo evalsuite: --max_completion_length -1: use at least 1",
    ),
    "evalsuite output folder": (
        ["evalsuite", "r.yaml", "--model_path", "m", "--output", "D"],
        "eapo evalsuite: --output 'D' is a folder: give a file name",
    ),
    "evalsuite model empty": (["evalsuite", "r.yaml", "--model_path", ""], "--model_path '': give a model folder"),
    "model smollm2 cache_dir file": (
        ["model", "smollm2", "--cache_dir", "F"],
        "eapo model smollm2: --cache_dir 'F' is a file, not a folder",
    ),
    "model smollm2 output_dir empty": (
        ["model", "smollm2", "--cache_dir", "D", "--output_dir", ""],
        "eapo model smollm2: --output_dir '': give a folder",
    ),
    "model convert output_dir under a file": (
        ["model", "convert", "X.gguf", "--output_dir", "F/sub"],
        "eapo model convert: --output_dir 'F/sub': its parent",
    ),
    "model convert output_dir empty": (
        ["model", "convert", "X.gguf", "--output_dir", ""],
        "eapo model convert: --output_dir '': give a folder",
    ),
    "warmstart output_dir file": (
        ["warmstart", "--max_steps", "1", "--output_dir", "F"],
        "eapo warmstart: --output_dir 'F' is a file, not a folder",
    ),
    "warmstart output_dir empty": (
        ["warmstart", "--max_steps", "1", "--output_dir", ""],
        "eapo warmstart: --output_dir '': give a folder",
    ),
    "warmstart output_dir not empty": (
        ["warmstart", "--max_steps", "1", "--output_dir", "N"],
        "eapo warmstart: --output_dir 'N' is not empty: give a new or empty folder",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_flag_is_one_line_exit_2_and_writes_nothing(case, place, capsys):
    argv, expected = CASES[case]
    before = _tree(place)
    assert expected in cli_error(argv, capsys)
    assert _tree(place) == before, "nothing is written on bad input"
