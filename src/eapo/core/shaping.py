"""Reward shaping applied before the advantages (docs/method.md section 8): DAPO's soft overlong punishment.

DAPO (arXiv 2503.14476, eq. 13) adds a length penalty to the reward of a completion of `L` tokens, with
`L_max` the completion budget and `L_cache` a buffer at its end:

    R_length(L) = 0                                   if L <= L_max - L_cache
                = ((L_max - L_cache) - L) / L_cache   if L_max - L_cache < L <= L_max
                = -1                                  if L > L_max

so the penalty grows linearly from 0 to -1 across the buffer. The paper uses `L_cache = 4,096` with
`L_max = 20,480` (an expected length of 16,384 plus the buffer), i.e. a buffer of 20% of the budget.

TRL 1.16 already implements this reward (`trl.rewards.get_soft_overlong_punishment`, one value per
completion, `L = len(completion_ids)`, the EOS token included): this module uses it rather than a copy.
The trainer adds it as one more reward function (weight 1), so TRL sums it into the reward before the
group-relative advantage and logs it as `rewards/soft_overlong_punishment_reward/mean`.

A shaping term only adjusts a task reward: a completion that no task reward function could score (all
None, NaN in TRL's table) gets no shaping either (`unscored_without_shaping`), so it stays unscorable and
its advantage is 0 (docs/method.md section 1), instead of being scored by its length alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def overlong_buffer_len(max_completion_length: int, ratio: float) -> int:
    """`L_cache` in tokens for a buffer `ratio` of the budget: `round(ratio * L_max)`, at least 1 when
    `ratio > 0` (0 turns the penalty off)."""
    if ratio <= 0:
        return 0
    return max(1, round(ratio * max_completion_length))


def overlong_reward(max_completion_length: int, buffer_len: int) -> Callable[..., list[float]]:
    """TRL's soft overlong punishment as a reward function `f(completion_ids, **kwargs) -> list[float]`.

    Args:
        max_completion_length: `L_max`, the completion budget in tokens.
        buffer_len: `L_cache`, the buffer at the end of the budget (`0 <= L_cache <= L_max`).
    """
    from trl.rewards import get_soft_overlong_punishment  # TRL is heavy to import: only when used

    if not 0 <= buffer_len <= max_completion_length:
        raise ValueError(f"buffer_len={buffer_len} must be between 0 and max_completion_length={max_completion_length}")
    return get_soft_overlong_punishment(max_completion_len=max_completion_length, soft_punish_cache=buffer_len)


def overlong_penalty(lengths: Sequence[int], max_len: int, buffer: int) -> list[float]:
    """`R_length(L)` of each completion length `L` in `lengths` (see the module docstring).

    Args:
        lengths: `(B,)` completion lengths in tokens, `L`.
        max_len: `L_max`. buffer: `L_cache`.

    Returns:
        `B` penalties in `[-1, 0]`.
    """
    # TRL's function only takes len() of each completion's ids: a range of that length stands for them.
    return overlong_reward(max_len, buffer)(completion_ids=[range(int(n)) for n in lengths])


def unscored_without_shaping(rewards_per_func: torch.Tensor, shaping_columns: Sequence[int]) -> torch.Tensor:
    """TRL's `(B, K)` reward table with the shaping columns set to NaN on the rows whose every task column is
    NaN (unscorable): those rows become all-NaN, which TRL gives advantage 0.

    Args:
        rewards_per_func: `(B, K)` reward of each completion under each reward function, NaN where None.
        shaping_columns: the columns that are shaping terms (the overlong penalty), not task rewards.
    """
    if not shaping_columns:
        return rewards_per_func
    task = [i for i in range(rewards_per_func.shape[1]) if i not in shaping_columns]
    unscored = torch.isnan(rewards_per_func[:, task]).all(dim=1, keepdim=True)  # (B, 1)
    shaping = torch.zeros(rewards_per_func.shape[1], dtype=torch.bool, device=rewards_per_func.device)
    shaping[list(shaping_columns)] = True
    return rewards_per_func.masked_fill(unscored & shaping, float("nan"))
