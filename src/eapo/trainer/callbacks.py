"""Training callbacks of `eapo train` that watch TRL's logged metrics.

`NoLearningSignalCallback` says once, in one line, when every group of several consecutive steps had
uniform rewards (TRL's `frac_reward_zero_std` = 1): such steps give every token a zero advantage, so
the policy does not change, for every method. The line says what to change, read from the same logs
(the mean reward and share of cut-off completions over those steps):

- mean reward 0 and most completions cut off (`completions/clipped_ratio` >= 0.5): completions end at
  `max_completion_length` before their answer: raise it;
- mean reward 0 otherwise: the reward never fires: the task is too hard for this model, or its answers
  are not in the form the reward reads;
- mean reward at its maximum: the task is too easy (every completion is rewarded);
- rewards that differ between groups but not within one: more completions per group or a higher
  temperature.

With dynamic sampling the step's metrics average all its rounds, so a step counts as uniform only when
every round was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

ZERO_STD_KEY = "frac_reward_zero_std"
CLIPPED_KEY = "completions/clipped_ratio"
REWARD_KEY = "reward"
_EPS = 1e-6


def no_signal_advice(reward_mean: float, clipped_ratio: float | None, max_reward: float = 1.0) -> str:
    """What to change when all groups are uniform, from the mean reward and the share of cut-off completions."""
    if reward_mean <= _EPS:
        if clipped_ratio is not None and clipped_ratio >= 0.5:
            return (
                f"completions cut off: {clipped_ratio:.0%} of them reach max_completion_length before an answer; "
                "raise --max_completion_length"
            )
        return (
            "the reward never fires: the task is too hard for this model or the reward does not read its "
            "answers (check the answer format and --reward, or use an easier task)"
        )
    if reward_mean >= max_reward - _EPS:
        return "every completion is rewarded: the task is too easy for this model; use harder problems"
    return "rewards differ between prompts but never within a group: raise --num_generations or --temperature"


class NoLearningSignalCallback(TrainerCallback):
    """Warns once when `patience` consecutive logged steps had all groups uniform (no learning signal).

    Args:
        patience: consecutive uniform steps before the warning (>= 1).
        max_reward: the reward of a fully correct completion (1 for the shipped tasks).
        emit: where the one-line message goes (default: this module's logger, level WARNING).
    """

    def __init__(self, patience: int = 3, max_reward: float = 1.0, emit: Callable[[str], None] | None = None):
        if patience < 1:
            raise ValueError(f"NoLearningSignalCallback needs patience >= 1, got {patience}")
        self.patience, self.max_reward = patience, max_reward
        self.emit = emit if emit is not None else logger.warning
        self.streak = 0
        self.warned = False
        self.rewards: list[float] = []  # of the current streak of uniform steps
        self.clipped: list[float] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any):
        if not logs or ZERO_STD_KEY not in logs or self.warned or not state.is_world_process_zero:
            return
        if logs[ZERO_STD_KEY] < 1 - _EPS:
            self.streak, self.rewards, self.clipped = 0, [], []
            return
        self.streak += 1
        self.rewards.append(float(logs.get(REWARD_KEY, 0.0)))
        if CLIPPED_KEY in logs:
            self.clipped.append(float(logs[CLIPPED_KEY]))
        if self.streak < self.patience:
            return
        self.warned = True
        clipped = sum(self.clipped) / len(self.clipped) if self.clipped else None
        advice = no_signal_advice(sum(self.rewards) / len(self.rewards), clipped, self.max_reward)
        self.emit(
            f"no learning signal: every group had equal rewards for {self.streak} steps (up to step "
            f"{state.global_step}), so no token gets an advantage: {advice}"
        )
