"""Verifiable rewards: strict checkers of completion text, and their TRL reward-function wrappers.

A TRL reward function is called as ``f(prompts=..., completions=..., completion_ids=..., **columns)``
where every dataset column arrives as a per-sample list, and returns one float per completion.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from eapo.tasks.countdown import MAX_DIGITS, apply_op

MAX_COMPLETION_CHARS = 200  # longer completions are rejected before any parsing

# One step "a op b = c". ASCII [0-9] only (`\d` would accept "３"), no sign, no leading zeros, at most
# MAX_DIGITS digits, so a token is never converted to an int unless it is short.
_NUMBER = rf"(0|[1-9][0-9]{{0,{MAX_DIGITS - 1}}})"
_STEP_RE = re.compile(rf"{_NUMBER}([-+*/]){_NUMBER}={_NUMBER}")


def parse_countdown_steps(completion: str) -> list[tuple[int, str, int, int]] | None:
    """The steps `(a, op, b, c)` of a completion in the exact countdown format, or None.

    The completion is stripped of leading/trailing whitespace, then must be steps ``"{a}{op}{b}={c}"``
    joined by ``,`` with nothing else (no spaces, no empty step, no trailing comma). Arithmetic is not
    checked here.
    """
    if not isinstance(completion, str) or len(completion) > MAX_COMPLETION_CHARS:
        return None
    steps = []
    for part in completion.strip().split(","):
        match = _STEP_RE.fullmatch(part)
        if match is None:
            return None
        a, op, b, c = match.groups()
        steps.append((int(a), op, int(b), int(c)))
    return steps


def _take(pool: list[int], value: int) -> bool:
    """Consume one `value` from the multiset `pool` (a short list); False when none is available."""
    if value not in pool:
        return False
    pool.remove(value)
    return True


def verify_countdown(completion: str, numbers: Sequence[int], target: int) -> bool:
    """Whether `completion` solves the countdown problem (`numbers`, `target`).

    The rules are those of `eapo.tasks.countdown`:
    exact format (see `parse_countdown_steps`); each step's operands available (the given numbers as a
    multiset plus earlier results, each consumed once); arithmetic correct with non-negative integer
    results and exact division; exactly ``len(numbers) - 1`` steps, so every given number and every
    intermediate result is used; the last result equals `target`. Never raises on any `completion`,
    and rejects long inputs before parsing them.
    """
    steps = parse_countdown_steps(completion)
    if steps is None or len(steps) != len(numbers) - 1:
        return False
    pool = [int(x) for x in numbers]
    for a, op, b, c in steps:
        if not (_take(pool, a) and _take(pool, b)) or apply_op(a, op, b) != c:
            return False
        pool.append(c)
    # n values, n - 1 steps each consuming two and adding one: the pool now holds only the last result.
    return steps[-1][3] == target


def completion_text(completion: Any) -> str | None:
    """The text of a TRL completion: the string itself, or the last message's content of a conversational one."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        return content if isinstance(content, str) else None
    return None


def countdown_reward(
    completions: Sequence[Any], numbers: Sequence[Sequence[int]], target: Sequence[int], **kwargs: Any
) -> list[float]:
    """TRL reward function: 1.0 per completion that `verify_countdown` accepts, else 0.0.

    `completions` are strings or conversational message lists (the last message's content is
    checked); `numbers` and `target` are the per-sample dataset columns. Other TRL arguments are ignored.
    """
    rewards = []
    for completion, nums, tgt in zip(completions, numbers, target, strict=True):
        text = completion_text(completion)
        rewards.append(1.0 if text is not None and verify_countdown(text, nums, tgt) else 0.0)
    return rewards


def countdown_verifier(problems: Sequence[Any]) -> Callable[[str, int], bool]:
    """`verify(completion, i)`: whether `completion` solves `problems[i]` (a `CountdownProblem`)."""

    def verify(completion: str, i: int) -> bool:
        return verify_countdown(completion, problems[i].numbers, problems[i].target)

    return verify
