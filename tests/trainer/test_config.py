"""EAPOConfig: presets, validation messages, command-line flags."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
from transformers import HfArgumentParser

from eapo import METHODS, EAPOConfig, get_method
from eapo.trainer.config import ConfigError

warnings.filterwarnings("ignore")
BASE = dict(
    output_dir="unused", use_cpu=True, bf16=False, report_to="none", num_generations=4, per_device_train_batch_size=4
)


def test_presets_apply_only_to_fields_left_at_default():
    eapo = EAPOConfig(**BASE, method="eapo")
    assert (eapo.loss_type, eapo.epsilon, eapo.epsilon_high, eapo.dynamic_sampling) == ("dapo", 0.2, 0.28, True)
    grpo = EAPOConfig(**BASE, method="grpo")
    assert (grpo.loss_type, grpo.epsilon_high, grpo.dynamic_sampling) == ("grpo", None, False)
    assert grpo.applied_preset == {"loss_type": "grpo"}
    explicit = EAPOConfig(**BASE, method="eapo", epsilon_high=0.3, dynamic_sampling=False)
    assert (explicit.epsilon_high, explicit.dynamic_sampling) == (0.3, False)
    kept = EAPOConfig(**BASE, method="grpo", apply_method_preset=False)
    assert kept.loss_type == "dapo" and kept.applied_preset == {}
    drgrpo = EAPOConfig(**BASE, method="dr_grpo")
    assert (drgrpo.loss_type, drgrpo.scale_rewards) == ("dr_grpo", "none")
    assert EAPOConfig(**BASE, method="entropy_bonus").entropy_coef == pytest.approx(1e-3)
    assert EAPOConfig(**BASE, method="forking", forking_scope="micro_batch").top_entropy_quantile == 0.2
    rho = EAPOConfig(**BASE, method="forking", forking_scope="micro_batch", forking_rho=0.3)
    assert rho.top_entropy_quantile == 0.3 and dataclasses.replace(rho).top_entropy_quantile == 0.3  # a copy agrees


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"method": "ppo"}, "unknown method 'ppo': valid methods are clip_cov, dapo"),
        ({"eapo_alpha": -0.1}, "eapo_alpha=-0.1 is invalid: use a value >= 0"),
        ({"eapo_phi": 0.0}, "eapo_phi=0.0 is invalid: use a value > 0"),
        ({"quadrants": "PHR,PXR"}, "quadrants: unknown quadrant 'PXR': valid quadrants are PHR, PLR, NLR, NHR"),
        ({"eapo_shaped_quadrants": ""}, "eapo_shaped_quadrants: no quadrant given"),
        ({"forking_rho": 0.0}, "forking_rho=0.0 is invalid: use a fraction in"),
        ({"forking_scope": "global"}, "forking_scope='global' is invalid: use 'batch', 'sequence' or 'micro_batch'"),
        ({"entropy_stats_scope": "token"}, "entropy_stats_scope='token' is invalid"),
        ({"clip_cov_lb": 6.0}, "clip_cov_lb=6.0 is invalid: it must be below clip_cov_ub=5.0"),
        ({"dynamic_sampling_max_rounds": 0}, "dynamic_sampling_max_rounds=0 is invalid"),
        ({"method": "kl_cov", "beta": 0.04}, "method='kl_cov' replaces the token loss and needs: beta must be 0"),
        ({"method": "clip_cov", "loss_type": "sapo"}, "loss_type='sapo'"),
        ({"top_entropy_quantile": 0.2}, "use a method that sets it from its own options (forking)"),
        ({"method": "forking", "forking_scope": "micro_batch", "forking_normalizer": "kept"}, "normalises over all"),
        ({"method": "forking", "forking_scope": "micro_batch", "top_entropy_quantile": 0.5},
         "top_entropy_quantile=0.5 would be replaced by method forking's own setting (0.2, from its options)"),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_field(overrides, message):
    with pytest.raises(ValueError, match=None) as err:
        EAPOConfig(**{**BASE, **overrides})
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"method": "w_reinforce", "dynamic_sampling": True}, "set dynamic_sampling=False"),
        ({"method": "kl_cov", "delta": 1.5}, "TRL's two-sided clipping must be off (delta=None)"),
        ({"method": "clip_cov", "delta": 1.5}, "TRL's two-sided clipping must be off (delta=None)"),
        ({"method": "kl_cov", "off_policy_mask_threshold": 0.5}, "off_policy_mask_threshold=None"),
        ({"method": "clip_cov", "off_policy_mask_threshold": 0.5}, "off_policy_mask_threshold=None"),
    ],
)
def test_combinations_that_would_not_work_are_refused(overrides, message):
    """Before (issue 28, point 5): accepted; W-REINFORCE's filler rows got its advantages and its all-equal groups
    were dropped, and KL-Cov / Clip-Cov silently ignored TRL's delta and off-policy mask."""
    with pytest.raises(ConfigError) as err:
        EAPOConfig(**{**BASE, **overrides})
    assert message in str(err.value) and len(str(err.value).splitlines()) == 1
    assert EAPOConfig(**{**BASE, "method": "w_reinforce"}).dynamic_sampling is False  # its default still works


def test_a_refused_combination_exits_2_with_one_line(capsys):
    from tiny import cli_error

    err = cli_error(["train", "--method", "w_reinforce", "--dynamic_sampling", "true", "--max_steps", "1"], capsys)
    assert "method='w_reinforce' trains groups whose rewards are all equal" in err


def test_get_method_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_method("nope")
    assert ", ".join(sorted(METHODS)) in str(err.value)
    assert set(METHODS) >= {  # the paper's methods; a new one needs no change here
        "grpo",
        "dapo",
        "dr_grpo",
        "forking",
        "entropy_bonus",
        "entroadv",
        "kl_cov",
        "clip_cov",
        "w_reinforce",
        "eapo",
    }


def test_command_line_flags_and_lists():
    (args,) = HfArgumentParser(EAPOConfig).parse_args_into_dataclasses(
        [
            "--output_dir",
            "x",
            "--use_cpu",
            "--bf16",
            "false",
            "--report_to",
            "none",
            "--method",
            "forking",
            "--forking_rho",
            "0.3",
            "--quadrants",
            "PHR,NHR",
            "--num_generations",
            "4",
            "--per_device_train_batch_size",
            "4",
        ]
    )
    assert (args.method, args.forking_rho, args.quadrants, args.loss_type) == ("forking", 0.3, "PHR,NHR", "dapo")
    assert [q.name for q in args.quadrant_set] == ["PHR", "NHR"]
    from_yaml_list = EAPOConfig(**BASE, quadrants=["nhr", "phr"])
    assert from_yaml_list.quadrants == "nhr,phr" and [q.name for q in from_yaml_list.quadrant_set] == ["PHR", "NHR"]
