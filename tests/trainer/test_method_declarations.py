"""A method acts through what it declares (`eapo.core.methods.Method`), never through its name.

The toy method `keep_even`, registered here as a user would register a new method, returns a loss mask that keeps
the tokens at even completion positions. It must train on exactly those tokens (the loss's gradient with respect to
every other token's log-probability is zero) in every batch layout, through `EAPOTrainer` and through `eapo train`.
Before methods declared `masks_tokens`, the trainer applied a method inside the loss forward in the default layout
(one micro-batch per generation, one iteration), after TRL had read the loss mask: every token was trained.

A method's options are declared with it (`MethodOption`): registered with the option `toy_coef`, the toy method has
an `EAPOConfig` field, a YAML key and an `eapo train --toy_coef` flag, whose range rule refuses a bad value in one
line; removed, they are gone. (Before, an option meant a hand-written `EAPOConfig` field and range rule.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from eapo import EAPOConfig, EAPOTrainer, Quadrant
from eapo.core.methods import DAPO_LOSS, METHODS, RolloutBatch, TokenUpdate, register_method, unregister_method
from eapo.core.options import MethodOption
from eapo.errors import ConfigError
from tiny import ascii_model_dir, cli_error, tiny_dataset, tiny_run, train_tiny

# (name, EAPOConfig overrides) of the layouts in which a generation batch reaches the loss.
LAYOUTS = [
    ("one_micro_batch", {"per_device_train_batch_size": 8}),
    ("split_generation_batch", {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}),
    ("num_iterations_2", {"per_device_train_batch_size": 8, "num_iterations": 2}),
]


def keep_even(batch: RolloutBatch, args: Any) -> TokenUpdate:
    """Plain advantages; the loss mask keeps the completion tokens at even positions."""
    even = (torch.arange(batch.mask.shape[1], device=batch.mask.device) % 2 == 0).expand_as(batch.mask)
    return TokenUpdate(batch.plain_advantages(), loss_mask=even & batch.mask.bool())


@pytest.fixture
def toy_method():
    register_method("keep_even", summary="Toy: loss on even completion positions only.", preset=DAPO_LOSS,
                    masks_tokens=True)(keep_even)  # fmt: skip
    yield "keep_even"
    del METHODS["keep_even"]


@pytest.fixture
def probe(monkeypatch):
    """Every log-probability tensor of a loss forward (grad enabled), with its gradient kept."""
    seen: list[torch.Tensor] = []
    forward = EAPOTrainer._get_per_token_logps_and_entropies

    def recording(self, *args, **kwargs):
        logps, entropy, aux = forward(self, *args, **kwargs)
        if torch.is_grad_enabled() and logps.requires_grad:
            logps.retain_grad()
            seen.append(logps)
        return logps, entropy, aux

    monkeypatch.setattr(EAPOTrainer, "_get_per_token_logps_and_entropies", recording)
    return seen


def assert_trained_on_even_positions_only(seen: list[torch.Tensor]) -> None:
    assert seen, "no loss forward was recorded"
    grads = [logps.grad for logps in seen]
    assert all(g is not None for g in grads)
    odd = torch.cat([g[:, 1::2].flatten() for g in grads])
    even = torch.cat([g[:, 0::2].flatten() for g in grads])
    assert (odd == 0).all(), f"{int((odd != 0).sum())} masked tokens got a gradient"
    assert (even != 0).sum() > 0  # the kept tokens do train


@pytest.mark.parametrize(("layout", "overrides"), LAYOUTS, ids=[name for name, _ in LAYOUTS])
def test_a_new_method_trains_on_exactly_its_masked_tokens(layout, overrides, toy_method, probe, tmp_path):
    trainer, delta = train_tiny(EAPOTrainer, EAPOConfig, tmp_path, method=toy_method, **overrides)
    assert_trained_on_even_positions_only(probe)
    assert delta.abs().sum() > 0
    assert (trainer.last_labels[:, 1::2] == Quadrant.NONE).all()  # the quadrants describe the masked gradient


@pytest.mark.parametrize(("layout", "overrides"), LAYOUTS, ids=[name for name, _ in LAYOUTS])
def test_eapo_train_trains_a_new_method_on_exactly_its_masked_tokens(layout, overrides, toy_method, probe, tmp_path):
    from eapo.cli import main

    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in tiny_dataset(32)))
    flags = [f"--{k}={v}" for k, v in overrides.items()]
    argv = tiny_run(ascii_model_dir(tmp_path / "model"), tmp_path / "run", *flags)
    code = main(["train", *argv, "--method", toy_method, "--task", str(data), "--reward", "tiny:parity_reward",
                 "--eval_before", "false", "--heldout_eval_steps", "0", "--report", "false"])  # fmt: skip
    assert code == 0
    assert_trained_on_even_positions_only(probe)


def test_a_loss_mask_the_method_does_not_declare_is_an_error(probe, tmp_path):
    """A method that returns a loss mask without declaring `masks_tokens` fails at its first step, naming the fix."""
    register_method("undeclared_mask", summary="Toy.", preset=DAPO_LOSS)(keep_even)
    try:
        with pytest.raises(ValueError, match="does not declare masks_tokens"):
            train_tiny(EAPOTrainer, EAPOConfig, tmp_path, method="undeclared_mask", per_device_train_batch_size=8)
    finally:
        del METHODS["undeclared_mask"]


TOY_COEF = MethodOption("toy_coef", 0.5, ">= 0", "Toy: a coefficient the toy method does not use.", note="0 is off")
BASE = dict(output_dir="unused", use_cpu=True, report_to="none", num_generations=4, per_device_train_batch_size=4)


@pytest.fixture
def toy_with_option():
    register_method("keep_even_coef", summary="Toy: loss on even positions.", preset=DAPO_LOSS, masks_tokens=True,
                    options=(TOY_COEF,))(keep_even)  # fmt: skip
    yield "keep_even_coef"
    unregister_method("keep_even_coef")


def test_a_new_methods_option_is_a_config_field_a_yaml_key_and_a_flag(toy_with_option, tmp_path):
    from eapo.cli.train import parse_args, render_help

    assert EAPOConfig(**BASE, method=toy_with_option).toy_coef == 0.5  # its default
    assert EAPOConfig(**BASE, method=toy_with_option, toy_coef=2.0).toy_coef == 2.0
    config, _ = parse_args(["--method", toy_with_option, "--toy_coef", "1.5"])
    assert (config.method, config.toy_coef) == (toy_with_option, 1.5)
    (tmp_path / "run.yaml").write_text("method: keep_even_coef\ntoy_coef: 3\n")
    assert parse_args(["--config", str(tmp_path / "run.yaml")])[0].toy_coef == 3.0
    flat = " ".join(render_help().split())
    assert "--toy_coef TOY_COEF keep_even_coef: Toy: a coefficient the toy method does not use. Valid: >= 0." in flat


def test_a_new_methods_range_rule_refuses_a_bad_value_in_one_line(toy_with_option, capsys):
    with pytest.raises(ConfigError) as err:
        EAPOConfig(**BASE, method=toy_with_option, toy_coef=-1.0)
    assert str(err.value) == "toy_coef=-1.0 is invalid: use a value >= 0 (0 is off)"
    err = cli_error(["train", "--method", toy_with_option, "--toy_coef", "-2"], capsys)
    assert err == "eapo train: toy_coef=-2.0 is invalid: use a value >= 0 (0 is off)"


def test_a_removed_methods_option_is_gone_and_names_are_unique(capsys):
    register_method("keep_even_coef", summary="Toy.", preset=DAPO_LOSS, masks_tokens=True, options=(TOY_COEF,))(
        keep_even
    )
    try:
        with pytest.raises(ValueError, match="option 'toy_coef' is already declared by method 'keep_even_coef'"):
            register_method("other", summary="Toy.", preset=DAPO_LOSS, options=(TOY_COEF,))(keep_even)
        assert "other" not in METHODS
    finally:
        unregister_method("keep_even_coef")
    with pytest.raises(TypeError):
        EAPOConfig(**BASE, toy_coef=1.0)
    assert "unrecognised argument '--toy_coef'" in cli_error(["train", "--toy_coef", "1"], capsys)
    taken = MethodOption("learning_rate", 0.1, None, "Clashes with TRL's field.")
    with pytest.raises(ValueError, match="'learning_rate' is already a field of EAPOConfig"):
        register_method("clash", summary="Toy.", preset=DAPO_LOSS, options=(taken,))(keep_even)
    assert "clash" not in METHODS and EAPOConfig(**BASE).learning_rate > 0


def test_another_methods_option_is_named_at_the_start_of_a_run(tmp_path, capsys):
    """`--method grpo --eapo_alpha 0.5` trains plain GRPO: the run says so in one line per such option (it passed
    without a word); the method's own options and the other methods' defaults say nothing."""
    from eapo.cli import main
    from eapo.core.methods import options_of_other_methods

    given = {"eapo_alpha": 0.5, "forking_rho": 0.3, "learning_rate": 1e-5}
    assert options_of_other_methods("grpo", given) == [("forking_rho", "forking"), ("eapo_alpha", "eapo")]
    assert options_of_other_methods("eapo", given) == [("forking_rho", "forking")]
    argv = tiny_run(ascii_model_dir(tmp_path / "model"), tmp_path / "run", "--max_steps", "1", "--eval_problems", "0")
    assert main(["train", *argv, "--method", "grpo", "--eapo_alpha", "0.5", "--heldout_eval_steps", "0",
                 "--report", "false"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "--eapo_alpha is an option of method eapo; method grpo does not use it" in err
    assert "--eapo_phi" not in err and "forking" not in err
