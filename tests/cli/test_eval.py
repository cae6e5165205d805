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
    assert result["accuracy"] == result["avg@4"] and 0.0 <= result["format_rate"] <= 1.0  # the format numbers
    formatted = result["accuracy_formatted"]
    assert formatted is None or formatted * result["format_rate"] <= result["accuracy"] + 1e-9
    bad = subprocess.run(
        [sys.executable, "-m", "eapo", "eval", str(tmp_path), "--k", "0"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "eapo eval: --eval_k 0: use at least 1"


def test_eval_on_a_reasoning_gym_task_scores_with_its_reward(tmp_path, capsys):
    """Any task of `eapo train`: reasoning-gym's prompts, scored by its own scorer. An untrained policy over
    printable ASCII never writes a right <answer>, so every score is 0; no answer extractor, so no maj@k."""
    from eapo.cli import main
    from tiny import ascii_model_dir

    model = ascii_model_dir(tmp_path / "model")
    argv = ["eval", "--model_path", str(model), "--task", "rg:basic_arithmetic", "--system_prompt", "none",
            "--eval_k", "2", "--eval_problems", "3", "--max_new_tokens", "6", "--output_dir", str(tmp_path / "out")]
    assert main(argv) == 0
    result = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert result["task"] == "rg:basic_arithmetic" and result["problems"] == 3 and result["k"] == 2
    assert result["avg@2"] == 0.0 and result["pass@2"] == 0.0 and "maj@2" not in result


def test_eval_on_a_data_file_with_a_user_reward(tmp_path, monkeypatch):
    """A jsonl file with mapped columns and a `module:function` reward: the score is that reward's (here: a
    reward scores every completion 1, so avg@k must be exactly 1)."""
    from eapo.cli import main
    from tiny import ascii_model_dir

    model = ascii_model_dir(tmp_path / "model")
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps({"question": f"{i}+1=", "solution": str(i + 1)}) + "\n" for i in range(10)))
    (tmp_path / "always_right.py").write_text(
        "def reward(completions, **kwargs):\n    return [1.0 for _ in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["eval", "--model_path", str(model), "--task", str(data), "--prompt_column", "question",
            "--answer_column", "solution", "--reward", "always_right:reward", "--system_prompt", "none",
            "--eval_k", "2", "--eval_problems", "4", "--max_new_tokens", "3", "--output", str(tmp_path / "e.json")]
    assert main(argv) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["problems"] == 4 and result["avg@2"] == 1.0 and result["pass@1"] == 1.0
    assert result["stop_strings"] == []  # a data file's task stops at EOS only



def test_eval_takes_train_s_max_completion_length(capsys):
    """Issue 26, point 11: the same flag for tokens per sample in eapo train and eapo eval (--max_new_tokens stays)."""
    from eapo.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["eval", "--max_completion_length", "16"]).max_new_tokens == 16
    assert parser.parse_args(["eval", "--max_new_tokens", "12"]).max_new_tokens == 12


def test_eval_of_a_run_still_training_points_to_its_newest_checkpoint(tmp_path, capsys):
    """Issue 26, point 5: `eapo eval RUN_DIR` on a run with no model/ yet names its newest checkpoint in one line
    (not "config.json has no integer vocab_size"), and the command it gives works as written; with no checkpoint
    either, the line says so. `eapo train --model_path RUN_DIR` says the same."""
    import re
    import shlex
    import shutil

    from eapo.cli import main
    from tiny import cli_error

    run = tmp_path / "run"
    shutil.copytree(eapo.world.BASE_MODEL_DIR, run / "checkpoint-1")
    (run / "checkpoint-1" / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    (run / "config.json").write_text(json.dumps({"method": "eapo", "max_steps": 100}))
    (run / "config.yaml").write_text("max_steps: 100\n")
    err = cli_error(["eval", str(run), "--eval_k", "1", "--eval_problems", "2"], capsys)
    assert "still training" in err and f"--model_path {run / 'checkpoint-1'}" in err
    fix = shlex.split(re.search(r"(--model_path \S+)$", err).group(1))
    assert main(["eval", *fix, "--eval_k", "1", "--eval_problems", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == str(run / "checkpoint-1")
    err = cli_error(["train", "--model_path", str(run), "--output_dir", str(tmp_path / "other")], capsys)
    assert f"--model_path {run / 'checkpoint-1'}" in err
    shutil.rmtree(run / "checkpoint-1")
    assert "no model/ and no checkpoint yet" in cli_error(["eval", str(run)], capsys)


def test_eval_samples_in_the_dtype_asked_for(capsys, monkeypatch):
    """`--dtype bfloat16` loads the weights in bf16 for sampling (and says so in the result)."""
    import torch

    from eapo.cli import main
    from eapo.evaluation import sampling

    seen = []
    real = sampling.sample_completions

    def spy(model, *args, **kwargs):
        seen.append(next(model.parameters()).dtype)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(sampling, "sample_completions", spy)
    assert main(["eval", "--k", "2", "--problems", "2", "--dtype", "bfloat16"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dtype"] == "bfloat16" and seen == [torch.bfloat16]
    assert main(["eval", "--dtype", "float8"]) == 2
    assert "invalid choice: 'float8'" in capsys.readouterr().err


def test_eval_offset_evaluates_a_later_window_and_records_which(tmp_path):
    """`--eval_offset N` evaluates held-out problems N.. as `eapo train --eval_offset N` does: its problems_sha256
    is the digest of those problems' prompts (so it pairs with a run's eval.json), not of the first ones."""
    from eapo.cli import main
    from eapo.evaluation.heldout import problem_record
    from eapo.tasks.registry import load_task
    from tiny import ascii_model_dir

    model = ascii_model_dir(tmp_path / "model")
    digests = {}
    for offset in (0, 3):
        out = tmp_path / f"out{offset}"
        argv = ["eval", str(model), "--task", "wordproblems:1", "--prompt_format", "text", "--eval_k", "1",
                "--eval_problems", "2", "--eval_offset", str(offset), "--max_new_tokens", "2",
                "--output_dir", str(out)]  # fmt: skip
        assert main(argv) == 0
        result = json.loads((out / "eval.json").read_text())
        assert (result["eval_offset"], result["problems"], len(result["correct_per_problem"])) == (offset, 2, 2)
        digests[offset] = result["problems_sha256"]
    window = load_task("wordproblems:1", seed=0, eval_size=2, eval_offset=3).heldout["prompt"]
    assert digests[3] == problem_record(window, [[False], [False]])["problems_sha256"] != digests[0]


def test_a_negative_eval_offset_is_one_line(tmp_path, capsys):
    from tiny import cli_error

    message = cli_error(["eval", "--eval_offset", "-1", "--eval_k", "1"], capsys)
    assert message == "eapo eval: --eval_offset -1: use a value >= 0"
