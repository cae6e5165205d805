"""`eapo train`'s work as a library function, `eapo.pipeline.train(config, run) -> TrainResult`: a notebook."""

from __future__ import annotations

import json

import pytest

from eapo.pipeline import TrainResult, train, train_options


def test_a_notebook_trains_through_the_library_and_reads_the_result(tmp_path):
    config, run = train_options(
        method="grpo", max_steps=2, per_device_train_batch_size=8, num_generations=4, eval_problems=4, eval_k=2,
        heldout_eval_steps=0, report=False, disable_tqdm=True, output_dir=str(tmp_path / "run"),
    )  # fmt: skip
    assert config.learning_rate > 0 and run.defaults == "tiny-world"  # the world's defaults fill the rest
    result = train(config, run)
    assert isinstance(result, TrainResult) and result.run_dir == tmp_path / "run" and result.steps == 2
    assert set(result.before) >= {"avg@2", "pass@2"} and 0.0 <= result.after["avg@2"] <= 1.0
    assert result.failed == {} and (result.model_dir / "model.safetensors").is_file()
    assert json.loads((result.run_dir / "eval.json").read_text()) == result.summary


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "nope"}, "unknown method 'nope'"),
        ({"max_stpes": 3}, "unknown option 'max_stpes' (did you mean 'max_steps'?)"),
        ({"heldout_eval_k": 0}, "heldout_eval_k=0"),
        ({"model_path": "/nonexistent/model"}, "model_path='/nonexistent/model' does not exist"),
    ],
)
def test_bad_options_are_value_errors_a_notebook_catches(fields, message, tmp_path):
    """The library raises `eapo.errors.EapoError` (a ValueError), never the CLI's SystemExit, and writes nothing."""
    with pytest.raises(ValueError) as err:
        train(*train_options(output_dir=str(tmp_path / "run"), **fields))
    assert message in str(err.value) and not isinstance(err.value, SystemExit)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("eval_problems", [2, 0])
def test_the_periodic_evaluation_takes_its_own_number_of_problems(eval_problems, tmp_path):
    """--heldout_eval_problems 3 with --eval_problems 2 (or 0: no final evaluation) evaluates 3 problems every step
    (it drew from the final evaluation's 2 before, and from none at 0); the final evaluation keeps its first 2."""
    config, run = train_options(
        method="grpo", max_steps=1, per_device_train_batch_size=8, num_generations=4, eval_problems=eval_problems,
        eval_k=2, heldout_eval_steps=1, heldout_eval_problems=3, heldout_eval_k=2, report=False, disable_tqdm=True,
        save_strategy="no", output_dir=str(tmp_path / "run"),
    )  # fmt: skip
    result = train(config, run)
    lines = [json.loads(line) for line in (result.run_dir / "heldout.jsonl").read_text().splitlines()]
    assert [(line["step"], line["problems"]) for line in lines] == [(0, 3), (1, 3)]
    assert result.summary["problems"] == eval_problems
    if eval_problems:
        assert result.before["problems"] == result.after["problems"] == 2
    else:
        assert result.before is None and result.after == {}
