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
