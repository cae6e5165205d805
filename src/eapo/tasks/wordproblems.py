"""Multi-step arithmetic word problems with a short chain of thought: the real-model reasoning task.

A problem is a start quantity and 2-4 steps that change it (`+ n`, `- n`, `* n`), told as a story:

    Question: Omar has 8 marbles. Omar gets 2 more marbles. Then Omar buys 3 more marbles.
    How many marbles does Omar have now?
    Solution: 8 + 2 = 10. 10 + 3 = 13.
    Answer: 13

The prompt is an instruction, three worked examples of the same difficulty (fixed, and equivalent to no
problem of either split) and the question, ending in `Solution:`; the model writes the steps and the
result after the fixed marker `Answer:`. Plain text suits base and small instruct models alike (train
with `--prompt_format text`; a chat template wraps it as the user message otherwise).

**Difficulty** (`wordproblems:D`, D = 1..5, default 1) sets the number of steps, the size of the numbers
and the operations (`DIFFICULTIES`): 1 is two `+` steps of 1-4 from a start of 1-9 (70 distinct problems
up to equivalence), 2 is two or three `+`/`-` steps of 1-3 from a start of 5-30, 5 is three or four steps
with multiplication on numbers up to 50. Every intermediate value stays a non-negative integer. Measured
start (temperature 1, 48 held-out problems x 4 samples, 40 tokens, bf16, text prompts): SmolLM2-135M-Instruct
22% at D=1 and 2% at D=2; Gemma-3-270m 21% at D=1 and 5% at D=2 (docs/benchmarks.md).

**Splits share no equivalent problem.** Two problems are equivalent when they are the same sum of signed
terms (`8 + 2 + 3`, `3 + 8 + 2` and `8 + 3 + 2` are {8, 2, 3}; `9 - 2 + 6` and `9 + 6 - 2` are {9, -2, 6}),
whatever the names, objects and wording (`equivalence_key`; with a `*` step, any problem of the same numbers
and operations): this takes in reordered steps and commuted twins. A problem goes to the held-out split when
the SHA-256 of its key falls in the held-out share (40%), so no key is ever on both sides, whatever the
seed and the sizes. Within a split problems are distinct, but a small level has few keys: at D=1, 200
held-out problems are 27 keys told in different words (and the train split has 42).

**Reading an answer.** The answer is the number right after the first `Answer:` of the completion (a
base model that goes on to write another question is read at its first answer). A completion is *well
formatted* when it has one; the reward is 1.0 when that number equals the result, else 0.0. Three
numbers therefore describe a policy (`eapo.tasks.rewards.format_scores`): the format rate (share
of completions with an answer), accuracy, and accuracy among well-formatted completions; a gain counts as
reasoning only where the last one rises.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from datasets import Dataset

from eapo.tasks.rewards import completion_text

MARKER = "Answer:"
HELDOUT_SHARE = 0.4  # share of equivalence keys that belong to the held-out split
DEFAULT_DIFFICULTY = 1
SPLIT_SALT = "eapo-wordproblems-v1"  # part of the split's hash: the split is a property of the task
# A completion ends at the first blank line: the worked examples are separated by one, so a model that has
# written its answer goes on with the next "Question:" (kept out of the completion, its reward and its credit).
STOP_STRINGS = ("\n\n",)
_ANSWER = re.compile(r"Answer:\s*\**\s*(-?\d[\d,]*(?:\.\d+)?)")


@dataclass(frozen=True)
class Difficulty:
    """Steps per problem (`min_steps`..`max_steps`), numbers 1..`max_number` (the start may reach
    `max_start`), factors 2..`max_factor` for `*` steps, and the operations allowed."""

    min_steps: int
    max_steps: int
    max_number: int
    max_start: int
    ops: tuple[str, ...]
    max_factor: int = 3
    min_start: int = 2


DIFFICULTIES: dict[int, Difficulty] = {
    1: Difficulty(2, 2, 4, 9, ("+",), min_start=1),
    2: Difficulty(2, 3, 3, 30, ("+", "-"), min_start=5),
    3: Difficulty(2, 3, 20, 20, ("+", "-")),
    4: Difficulty(2, 4, 30, 30, ("+", "-", "*")),
    5: Difficulty(3, 4, 50, 50, ("+", "-", "*"), max_factor=4),
}

_NAMES = ("Mia", "Leo", "Ava", "Sam", "Noah", "Emma", "Liam", "Zoe", "Omar", "Ivy", "Ben", "Lily", "Raj", "Nina")
_OBJECTS = ("apples", "marbles", "stickers", "books", "coins", "shells", "pencils", "cards", "stamps", "cookies")
_PLUS = ("{p} buys {n} more {o}.", "{p} finds {n} more {o}.", "A friend gives {p} {n} {o}.", "{p} gets {n} more {o}.")
_MINUS = ("{p} gives {n} {o} to a friend.", "{p} loses {n} {o}.", "{p} sells {n} {o}.", "{p} uses {n} {o}.")
_TIMES = {
    2: ("The number of {o} {p} has doubles.",),
    3: ("The number of {o} {p} has triples.",),
    4: ("The number of {o} {p} has becomes four times as large.",),
}


@dataclass(frozen=True)
class WordProblem:
    """`start` followed by `steps` ((op, n) pairs applied in order), told about `person` and `objects`."""

    start: int
    steps: tuple[tuple[str, int], ...]
    person: str = "Mia"
    objects: str = "apples"
    wording: tuple[int, ...] = ()  # template index of each step (default: the first)

    def values(self) -> list[int]:
        """The running quantity: start, then after each step."""
        out = [self.start]
        for op, n in self.steps:
            out.append(_apply(out[-1], op, n))
        return out

    @property
    def result(self) -> int:
        return self.values()[-1]

    def question(self) -> str:
        sentences = [f"{self.person} has {self.start} {self.objects}."]
        for i, (op, n) in enumerate(self.steps):
            templates = _TIMES[n] if op == "*" else (_PLUS if op == "+" else _MINUS)
            choice = self.wording[i] if i < len(self.wording) else 0
            sentence = templates[choice % len(templates)].format(p=self.person, n=n, o=self.objects)
            if i > 0:
                keep = sentence.startswith(self.person)
                sentence = "Then " + (sentence if keep else sentence[0].lower() + sentence[1:])
            sentences.append(sentence)
        sentences.append(f"How many {self.objects} does {self.person} have now?")
        return " ".join(sentences)

    def solution(self) -> str:
        """The reference chain of thought, `a op n = b.` per step, and the answer line."""
        values = self.values()
        steps = " ".join(f"{values[i]} {op} {n} = {values[i + 1]}." for i, (op, n) in enumerate(self.steps))
        return f"{steps}\n{MARKER} {self.result}"


def _apply(value: int, op: str, n: int) -> int:
    if op == "+":
        return value + n
    if op == "-":
        return value - n
    if op == "*":
        return value * n
    raise ValueError(f"unknown operation {op!r}: use +, - or *")


def equivalence_key(problem: WordProblem) -> tuple[Any, ...]:
    """What equivalent problems share, whatever the names, objects and wording.

    A problem of `+` and `-` steps is a sum of signed terms (`7 + 5 - 3` is {+7, +5, -3}): its key is that
    multiset, so reordered steps and commuted twins (`7 + 5 - 3`, `5 + 7 - 3`, `7 - 3 + 5`) share it. With a
    `*` step the key is coarser: the sorted numbers and the sorted operations, so any reordering shares it.
    """
    if any(op == "*" for op, _ in problem.steps):
        numbers = sorted([problem.start, *(n for _, n in problem.steps)])
        return ("*", tuple(numbers), tuple(sorted(op for op, _ in problem.steps)))
    terms = [problem.start, *(n if op == "+" else -n for op, n in problem.steps)]
    return ("+", tuple(sorted(terms)))


def in_heldout(problem: WordProblem) -> bool:
    """Whether `problem`'s equivalence class belongs to the held-out split (a fixed hash of its key)."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{equivalence_key(problem)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_SHARE


def difficulty(level: int) -> Difficulty:
    if level not in DIFFICULTIES:
        raise ValueError(f"difficulty {level}: use one of {', '.join(map(str, DIFFICULTIES))}")
    return DIFFICULTIES[level]


def random_problem(rng: random.Random, level: Difficulty) -> WordProblem:
    """One problem of `level`, every intermediate value a non-negative integer."""
    n_steps = rng.randint(level.min_steps, level.max_steps)
    value = rng.randint(level.min_start, level.max_start)
    start, steps = value, []
    for _ in range(n_steps):
        ops = [op for op in level.ops if op != "-" or value >= 1]
        if value > level.max_number * 2:  # keep results small enough for a small model
            ops = [op for op in ops if op != "*"] or ["-"]
        op = rng.choice(ops)
        if op == "*":
            n = rng.randint(2, level.max_factor)
        elif op == "-":
            n = rng.randint(1, min(value, level.max_number))
        else:
            n = rng.randint(1, level.max_number)
        steps.append((op, n))
        value = _apply(value, op, n)
    wording = tuple(rng.randrange(4) for _ in steps)
    return WordProblem(start, tuple(steps), rng.choice(_NAMES), rng.choice(_OBJECTS), wording)


def _stream(level: int, seed: int, heldout: bool) -> Iterator[WordProblem]:
    """Distinct problems of one split in a seeded order, never an example's equivalent; stops when the
    level's problems run out (20,000 draws in a row without a new one)."""
    rng, seen, misses = random.Random(seed), set(), 0
    excluded = {equivalence_key(example) for example in examples(level)}
    while misses < 20_000:
        problem = random_problem(rng, difficulty(level))
        if in_heldout(problem) != heldout or problem in seen or equivalence_key(problem) in excluded:
            misses += 1
            continue
        misses = 0
        seen.add(problem)
        yield problem


def generate_split(
    level: int = DEFAULT_DIFFICULTY, train_size: int = 5000, heldout_size: int = 200, seed: int = 0
) -> tuple[list[WordProblem], list[WordProblem]]:
    """(train, held-out) problems of difficulty `level`: distinct problems, and no held-out problem has an
    equivalent in the train split. The held-out problems depend on `level` only (not on `seed`), the train
    problems' draw on `seed`. Fewer are returned when the level has fewer distinct problems."""
    difficulty(level)  # a ValueError for an unknown level
    heldout = list(islice(_stream(level, 10_007 * level, heldout=True), heldout_size))
    train = list(islice(_stream(level, seed * 7919 + level, heldout=False), train_size))
    return train, heldout


INSTRUCTION = f"Solve the problem. Write each step, then the final answer after '{MARKER}'."
N_EXAMPLES = 3
EXAMPLE_SEED = 99


def examples(level: int) -> tuple[WordProblem, ...]:
    """The worked examples in every prompt of difficulty `level`: `N_EXAMPLES` problems of that level with
    distinct keys, drawn from a fixed generator; no problem of either split is equivalent to one of them."""
    rng, found, keys = random.Random(EXAMPLE_SEED + level), [], set()
    while len(found) < N_EXAMPLES:
        problem = random_problem(rng, difficulty(level))
        if equivalence_key(problem) not in keys:
            keys.add(equivalence_key(problem))
            found.append(problem)
    return tuple(found)


def format_prompt(problem: WordProblem, level: int = DEFAULT_DIFFICULTY) -> str:
    """The prompt: the instruction, the level's worked examples, the question, and `Solution:` to continue."""
    shots = "\n\n".join(f"Question: {e.question()}\nSolution: {e.solution()}" for e in examples(level))
    return f"{INSTRUCTION}\n\n{shots}\n\nQuestion: {problem.question()}\nSolution:"


def extract_answer(text: str | None) -> int | float | None:
    """The number after the first `Answer:` ("... = 9.\\nAnswer: 9" -> 9), None when there is none."""
    if not text:
        return None
    match = _ANSWER.search(text)
    if match is None:
        return None
    value = float(match.group(1).replace(",", ""))
    return int(value) if value.is_integer() else value


def wordproblem_reward(completions: Sequence[Any], answer: Sequence[Any], **kwargs: Any) -> list[float]:
    """TRL reward function: 1.0 when the number after the completion's first `Answer:` equals `answer`."""
    scores = []
    for completion, expected in zip(completions, answer, strict=True):
        value = extract_answer(completion_text(completion))
        scores.append(1.0 if value is not None and float(value) == float(expected) else 0.0)
    return scores


def wordproblem_dataset(problems: Sequence[WordProblem], level: int = DEFAULT_DIFFICULTY) -> Dataset:
    """A TRL dataset: `prompt` (text, with the worked examples of `level`) and `answer` (the result as a string)."""
    return Dataset.from_dict(
        {"prompt": [format_prompt(p, level) for p in problems], "answer": [str(p.result) for p in problems]}
    )
