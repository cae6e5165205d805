"""DAPO's soft overlong punishment (`eapo.core.shaping`, TRL's reward function) on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from eapo.core.shaping import overlong_buffer_len, overlong_penalty, overlong_reward, unscored_without_shaping


def test_overlong_penalty_hand_computed():
    # L_max = 10, L_cache = 4: free up to 6 tokens, then -1/4 per token, -1 at 10 and beyond
    lengths = [0, 3, 6, 7, 8, 9, 10, 11, 40]
    expected = [0.0, 0.0, 0.0, -0.25, -0.5, -0.75, -1.0, -1.0, -1.0]
    assert overlong_penalty(lengths, max_len=10, buffer=4) == pytest.approx(expected)


def test_paper_setting_and_no_buffer():
    # the DAPO paper: L_cache = 4,096 of L_max = 20,480 (expected length 16,384)
    assert overlong_buffer_len(20_480, 0.2) == 4096
    assert overlong_penalty([16_384, 16_385, 18_432, 20_480, 20_481], 20_480, 4096) == pytest.approx(
        [0.0, -1 / 4096, -0.5, -1.0, -1.0]
    )
    # no buffer: only completions over the budget are penalised
    assert overlong_penalty([9, 10, 11], max_len=10, buffer=0) == [0.0, 0.0, -1.0]


def test_buffer_length_from_the_ratio():
    assert overlong_buffer_len(24, 0.2) == 5  # round(4.8)
    assert overlong_buffer_len(6, 0.2) == 1
    assert overlong_buffer_len(3, 0.1) == 1  # at least one token when on
    assert overlong_buffer_len(1024, 0.0) == 0  # off


def test_reward_function_is_trls_and_checks_its_buffer():
    from trl.rewards import get_soft_overlong_punishment

    reward = overlong_reward(10, 4)
    assert type(reward) is type(get_soft_overlong_punishment(10, 4))
    assert reward(completion_ids=[[1] * 8, [1] * 2]) == pytest.approx([-0.5, 0.0])
    with pytest.raises(ValueError, match="buffer_len=11 must be between 0 and max_completion_length=10"):
        overlong_reward(10, 11)


def test_unscored_rows_get_no_shaping():
    nan = math.nan
    table = torch.tensor([[1.0, nan, -0.5], [nan, nan, -1.0], [nan, 0.0, 0.0], [nan, nan, 0.0]])
    out = unscored_without_shaping(table, [2])
    expected = torch.tensor([[1.0, nan, -0.5], [nan, nan, nan], [nan, 0.0, 0.0], [nan, nan, nan]])
    torch.testing.assert_close(out, expected, equal_nan=True)
    assert unscored_without_shaping(table, []) is table
