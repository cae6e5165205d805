"""`eapo.cli.runs`: the `eapo train` flags after `--` of `eapo compare` and `eapo ablate` may not set what the
command sets for every run itself (its tables would read runs trained otherwise), in a flag or a --config YAML."""

from __future__ import annotations

import pytest

from eapo.cli import main
from eapo.cli.runs import check_extra_flags
from eapo.cli.validate import ValidationError

OWNED = {"max_steps": 600, "eval_k": 8, "method": None, "seed": None}


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--", "--eval_k", "16"], "--eval_k after --: eapo compare sets it for every run itself"),
        (["--", "--max-steps=900"], "--max_steps after --"),
        (["--", "--method", "dapo"], "--method after --"),
    ],
)
def test_an_option_the_command_sets_is_refused_after_the_dashes(extra, needle):
    with pytest.raises(ValidationError) as err:
        check_extra_flags("compare", extra, OWNED)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_config_yaml_may_not_set_it_to_another_value(tmp_path):
    recipe = tmp_path / "stress.yaml"
    recipe.write_text("max_steps: 900\nlearning_rate: 2.0e-4\n")
    with pytest.raises(ValidationError, match=r"stress.yaml sets max_steps: 900, which eapo compare sets for every "
                                              r"run itself \(600\): give eapo compare --max_steps 900"):  # fmt: skip
        check_extra_flags("compare", ["--", "--config", str(recipe)], OWNED)
    recipe.write_text("seed: 3\n")
    with pytest.raises(ValidationError, match="sets seed: 3, which eapo compare sets for every run itself: leave it"):
        check_extra_flags("compare", [f"--config={recipe}"], OWNED)
    recipe.write_text("max_steps: 600\nlearning_rate: 2.0e-4\n")  # the same value, and options it leaves alone
    check_extra_flags("compare", ["--", "--config", str(recipe), "--learning_rate", "1e-4"], OWNED)
    check_extra_flags("compare", ["--", "--config", str(tmp_path / "missing.yaml")], OWNED)  # eapo train says it


def test_compare_and_ablate_refuse_before_training(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--output_dir", str(out), "--seeds", "1", "--", "--eval_k", "16"]) == 2
    assert "--eval_k after --" in capsys.readouterr().err and not out.exists()
    out = tmp_path / "abl"
    assert main(["ablate", "--output_dir", str(out), "--seeds", "1", "--", "--quadrants", "PHR"]) == 2  # a variant's
    assert "--quadrants after --: eapo ablate sets it" in capsys.readouterr().err and not out.exists()


def test_every_planned_run_is_checked_before_any_trains(tmp_path):
    """run_state parses a new run's flags too (a bad one used to surface when that run started training, after
    --output_dir was made), and names a file where a run folder should be."""
    from eapo.cli.runs import run_state

    with pytest.raises(ValidationError, match="unrecognised argument '--bogus'"):
        run_state(tmp_path / "new", ["--bogus", "1"])
    with pytest.raises(ValidationError, match=r"learning_rate=-1.0 is invalid"):
        run_state(tmp_path / "new", ["--learning_rate=-1"])
    assert run_state(tmp_path / "new", ["--max_steps", "3"]) == "new" and not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="file is a file, not a run folder: pass another --output_dir"):
        run_state(tmp_path / "file", ["--max_steps", "3"])


@pytest.mark.parametrize(("text", "needle"), [("bad: [", "cannot be read ("), ("- a\n", "a YAML list, not a mapping")])
def test_a_damaged_config_yaml_is_one_line(tmp_path, text, needle):
    from eapo.cli.runs import run_state

    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ValidationError) as err:
        run_state(tmp_path, ["--max_steps", "3"])
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'config.yaml'} cannot be read (") and needle in message
    assert message.endswith(f": delete {tmp_path} to train it again") and "\n" not in message


def test_read_finished_run_returns_the_files_as_written(tmp_path):
    """The check reads the files and hands them on unchanged: the tables compute what they did before."""
    import json

    from eapo.cli.runs import read_finished_run

    summary = {"after": {"avg@4": 0.5, "pass@1": 0.5, "pass@4": 0.75, "correct_per_problem": [2, 2]},
               "before": None, "train_seconds": 2.5, "steps": 2, "extra": [1, {"a": None}]}  # fmt: skip
    metrics = [{"step": 1, "reward": 0.5, "entropy/sampling_mean": 1.0}, {"step": 2, "entropy/sampling_mean": 0.5}]
    heldout = [{"step": 0, "k": 2, "avg@2": 0.25, "pass@2": 0.5}]
    (tmp_path / "eval.json").write_text(json.dumps(summary))
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in metrics) + '{"torn": \n')
    (tmp_path / "heldout.jsonl").write_text(json.dumps(heldout[0]) + "\n")
    run = read_finished_run(tmp_path, passes=lambda k: (1, k), summary_keys=("train_seconds",), before=True,
                            heldout=True)  # fmt: skip
    assert (run.summary, run.metrics, run.heldout, run.config) == (summary, metrics, heldout, {})
    assert read_finished_run(tmp_path, k=4).heldout == []  # read only when asked for
    with pytest.raises(ValidationError, match=r"eval.json cannot be read \(its after: no number avg@8\)"):
        read_finished_run(tmp_path, k=8)
    with pytest.raises(ValidationError, match=r"eval.json cannot be read \(no number wall_seconds\)"):
        read_finished_run(tmp_path, summary_keys=("wall_seconds",))
