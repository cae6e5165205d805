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


_FINAL_NUMBER = re.compile(r"=(\d{1,6})\s*$")


# The three numbers of a task whose answers can be read (an `extract_answer`): how often an answer could be read,
# how often it was right, and how often it was right when it could be read. A gain in accuracy with no gain in the
# last one is a gain in format, not in reasoning.
def format_scores(formatted: Sequence[Sequence[bool]], correct: Sequence[Sequence[bool]]) -> dict[str, float | None]:
    """`format_rate` (share of samples with an extractable answer), `accuracy` (share correct) and
    `accuracy_formatted` (share correct among samples with an answer; None when no sample has one), over all
    samples of all problems. A correct sample without an answer counts in `accuracy` only (a reward that reads
    answers differently from the extractor)."""
    pairs = [(bool(f), bool(c)) for fs, cs in zip(formatted, correct, strict=True) for f, c in zip(fs, cs, strict=True)]
    n, n_formatted = len(pairs), sum(f for f, _ in pairs)
    right_formatted = sum(f and c for f, c in pairs)
    return {
        "format_rate": n_formatted / n if n else 0.0,
        "accuracy": sum(c for _, c in pairs) / n if n else 0.0,
        "accuracy_formatted": right_formatted / n_formatted if n_formatted else None,
    }


def countdown_answer(completion: Any) -> str | None:
    """The final result of a countdown completion (`...=22` -> `"22"`), the answer majority votes on."""
    text = completion_text(completion)
    match = _FINAL_NUMBER.search(text.strip()) if text is not None else None
    return match.group(1) if match else None


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


# ----- math answers (`\boxed{}` + math-verify) ------------------------------------------------------------

MAX_MATH_COMPLETION_CHARS = 100_000  # longer completions get 0 without parsing (only their tail is searched)
MAX_MATH_ANSWER_CHARS = 1_000  # a boxed answer longer than this is not parsed
MATH_VERIFY_TIMEOUT_S = 5
_BOXED = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`) of `text`, braces balanced, or None.

    `"so \\boxed{\\frac{1}{\\sqrt{2}}}."` -> `"\\frac{1}{\\sqrt{2}}"`; an unclosed box gives None. Also
    accepts the brace-less form `\\boxed 5` (up to the next whitespace or `$`).
    """
    if not isinstance(text, str):
        return None
    start = max(text.rfind(tag) for tag in _BOXED)
    if start < 0:
        return None
    i = start + len(next(tag for tag in _BOXED if text.startswith(tag, start)))
    if text[i : i + 1] != "{":  # "\boxed 5"
        inline = re.match(r"\s+([^\s$]+)", text[i:])
        return inline.group(1) if inline else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def _verify_timeout() -> int | None:
    # math-verify's timeout is a SIGALRM, which only the main thread may set: elsewhere (a reward
    # computed in a worker thread) run without it; the length caps bound the work instead.
    import threading

    return MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def verify_math(completion: str, answer: str) -> bool:
    """Whether the last `\\boxed{}` answer of `completion` equals the gold `answer` (math-verify).

    The gold answer is parsed by math-verify as written (`"\\frac{1}{2}"`, `"0.5"`, `"$\\sqrt{2}$"`, a
    boxed solution...); the prediction is the last boxed expression only, so a completion with no box
    is wrong. Never raises.
    """
    from math_verify import parse, verify

    if not isinstance(completion, str) or len(completion) > MAX_MATH_COMPLETION_CHARS:
        return False
    boxed = last_boxed(completion)
    if boxed is None or not boxed.strip() or len(boxed) > MAX_MATH_ANSWER_CHARS:
        return False
    timeout = _verify_timeout()
    try:
        gold = parse(str(answer) if "\\boxed" in str(answer) else f"${answer}$", parsing_timeout=timeout)
        if not gold:
            gold = parse(str(answer), parsing_timeout=timeout)
        pred = parse(f"\\boxed{{{boxed}}}", parsing_timeout=timeout)
        return bool(gold) and bool(pred) and bool(verify(gold, pred, timeout_seconds=timeout))
    except Exception:  # math-verify and sympy raise many types on odd input; any of them is "not verified"
        return False


def math_reward(completions: Sequence[Any], answer: Sequence[Any], **kwargs: Any) -> list[float]:
    """TRL reward function: 1.0 when a completion's last `\\boxed{}` answer equals `answer`, else 0.0.

    `completions` are strings or conversational message lists (the last message's content is checked);
    `answer` is the per-sample gold-answer column. Checked with math-verify (`verify_math`), so equivalent
    forms match: `\\boxed{0.5}`, `\\boxed{\\frac{1}{2}}` and `\\boxed{1/2}` for the answer `1/2`.
    """
    rewards = []
    for completion, gold in zip(completions, answer, strict=True):
        text = completion_text(completion)
        rewards.append(1.0 if text is not None and verify_math(text, gold) else 0.0)
    return rewards
