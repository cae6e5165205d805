"""Countdown: a tiny verifiable arithmetic reasoning task (the task of eapo's embedded tiny world).

A problem is a multiset of small non-negative integers and a target. A solution is a sequence of
steps, each combining two available values with one of ``+ - * /``:

- every given number is used exactly once (as a multiset: a number given twice is used twice);
- each step consumes two available values (given numbers or earlier results) and makes its result
  available; every result must be consumed by a later step, except the last one, which must equal
  the target. A problem with ``n`` numbers is therefore solved in exactly ``n - 1`` steps;
- every result (intermediate and final) is a non-negative integer: ``a - b`` needs ``a >= b``,
  ``a / b`` needs ``b != 0`` and ``b`` dividing ``a``;
- every number is written in plain ASCII decimal, without sign or leading zeros (except ``0``
  itself), and has at most `MAX_DIGITS` digits.

Text format (kept tiny and regular for a character-level model):

- prompt: the numbers joined by ``,``, then ``>``, the target and ``:``, e.g. ``"3,5,7>22:"``;
- solution: the steps joined by ``,``, each ``"{a}{op}{b}={c}"``, e.g. ``"3*5=15,15+7=22"``.

`solutions` lists every valid solution string of a problem (every order of steps and of operands),
so the policy meets genuine forks; `eapo.tasks.rewards.verify_countdown` checks one completion against
these rules.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import Dataset

OPS = "+-*/"
MAX_DIGITS = 6  # longest number token accepted anywhere (problems, solutions, completions)
MAX_VALUE = 10**MAX_DIGITS - 1

Step = tuple[int, str, int, int]  # (a, op, b, c): "a op b = c"


@dataclass(frozen=True)
class CountdownProblem:
    """Use every number of `numbers` exactly once to reach `target` (see the module docstring)."""

    numbers: tuple[int, ...]
    target: int

    def __post_init__(self) -> None:
        if len(self.numbers) < 2:
            raise ValueError(f"a countdown problem needs at least 2 numbers, got {self.numbers}")
        for value in (*self.numbers, self.target):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_VALUE:
                raise ValueError(f"numbers and target must be integers in [0, {MAX_VALUE}], got {value!r}")


def apply_op(a: int, op: str, b: int) -> int | None:
    """`a op b` under the countdown rules, or None when the step is not allowed.

    None for a negative difference, a division by zero or an inexact division, a result with more
    than `MAX_DIGITS` digits, or an unknown operator.
    """
    if op == "+":
        c = a + b
    elif op == "-":
        c = a - b
    elif op == "*":
        c = a * b
    elif op == "/":
        if b == 0 or a % b:
            return None
        c = a // b
    else:
        return None
    return c if 0 <= c <= MAX_VALUE else None


def problem_key(problem: CountdownProblem) -> tuple[tuple[int, ...], int]:
    """`(sorted numbers, target)`: two problems with the same key are the same problem."""
    return tuple(sorted(problem.numbers)), problem.target


def format_prompt(problem: CountdownProblem) -> str:
    """``"3,5,7>22:"``: the numbers (in the problem's order), ``>``, the target, ``:``."""
    return ",".join(str(x) for x in problem.numbers) + f">{problem.target}:"


def format_step(step: Step) -> str:
    """``(3, "*", 5, 15)`` -> ``"3*5=15"``."""
    a, op, b, c = step
    return f"{a}{op}{b}={c}"


def format_solution(steps: Sequence[Step]) -> str:
    """``[(3, "*", 5, 15), (15, "+", 7, 22)]`` -> ``"3*5=15,15+7=22"``."""
    return ",".join(format_step(s) for s in steps)


def legal_steps(pool: Sequence[int]) -> Iterator[tuple[int, int, Step]]:
    """Every allowed step on the available values `pool`: `(i, j, step)` with `step` using `pool[i]`, `pool[j]`.

    Operands are ordered (``3*5`` and ``5*3`` are both listed); equal values at different positions
    give repeated steps, which callers deduplicate.
    """
    for i, a in enumerate(pool):
        for j, b in enumerate(pool):
            if i == j:
                continue
            for op in OPS:
                c = apply_op(a, op, b)
                if c is not None:
                    yield i, j, (a, op, b, c)


def after_step(pool: Sequence[int], i: int, j: int, result: int) -> tuple[int, ...]:
    """`pool` without its `i`-th and `j`-th values, plus `result`."""
    return tuple(x for k, x in enumerate(pool) if k not in (i, j)) + (result,)


def _solution_paths(pool: tuple[int, ...], target: int, prefix: tuple[Step, ...]) -> Iterator[tuple[Step, ...]]:
    """Every step sequence that reduces `pool` to the single value `target` (with repeats)."""
    if len(pool) == 1:
        if prefix and pool[0] == target:
            yield prefix
        return
    for i, j, step in legal_steps(pool):
        yield from _solution_paths(after_step(pool, i, j, step[3]), target, prefix + (step,))


def solutions(problem: CountdownProblem) -> list[str]:
    """All valid solution strings of `problem`, deduplicated and sorted (brute force; fine for n <= 4)."""
    paths = _solution_paths(tuple(problem.numbers), problem.target, ())
    return sorted({format_solution(p) for p in paths})


def random_path_result(numbers: Sequence[int], rng: random.Random) -> int:
    """The final value of a uniformly random legal step at each stage (always exists: ``a + b`` is legal)."""
    pool = tuple(numbers)
    while len(pool) > 1:
        i, j, step = rng.choice(list(legal_steps(pool)))
        pool = after_step(pool, i, j, step[3])
    return pool[0]


def generate_problems(
    n: int, seed: int, num_numbers: int = 3, max_number: int = 9, max_target: int = 99
) -> list[CountdownProblem]:
    """`n` distinct solvable problems, deterministic in `seed`.

    Each problem draws `num_numbers` numbers uniformly from ``[1, max_number]``, then a random legal
    solution path; its result is the target, redrawn when outside ``[1, max_target]`` or when the
    `problem_key` was already drawn. Raises ValueError when `n` distinct problems cannot be found
    (the space is too small for `n`).
    """
    if num_numbers < 2 or max_number < 1 or max_target < 1 or n < 0:
        raise ValueError(f"bad arguments: n={n}, {num_numbers=}, {max_number=}, {max_target=}")
    rng = random.Random(seed)
    seen: set[tuple[tuple[int, ...], int]] = set()
    problems: list[CountdownProblem] = []
    max_attempts = 100 * n + 10_000
    for _ in range(max_attempts):
        if len(problems) == n:
            break
        numbers = tuple(rng.randint(1, max_number) for _ in range(num_numbers))
        target = random_path_result(numbers, rng)
        problem = CountdownProblem(numbers, target) if 1 <= target <= max_target else None
        if problem is not None and problem_key(problem) not in seen:
            seen.add(problem_key(problem))
            problems.append(problem)
    if len(problems) < n:
        raise ValueError(
            f"found only {len(problems)} distinct problems of the {n} asked in {max_attempts} draws "
            f"(num_numbers={num_numbers}, max_number={max_number}, max_target={max_target})"
        )
    return problems


def train_heldout_split(
    n_train: int, n_heldout: int, seed: int, **gen_kwargs: int
) -> tuple[list[CountdownProblem], list[CountdownProblem]]:
    """`n_train` training and `n_heldout` held-out problems, disjoint by `problem_key`, deterministic in `seed`.

    `gen_kwargs` go to `generate_problems` (`num_numbers`, `max_number`, `max_target`).
    """
    problems = generate_problems(n_train + n_heldout, seed, **gen_kwargs)
    return problems[:n_train], problems[n_train:]


# The tiny world's problems (`eapo.world`): one fixed, seeded split shared by the warm start, `eapo train`,
# evaluation and the report, and the completion budget the shipped policy was trained for.
TASK_SEED = 2026
TASK = {"num_numbers": 3, "max_number": 13, "max_target": 99}
N_TRAIN, N_HELDOUT = 3000, 200
MAX_COMPLETION_LENGTH = 24


def tiny_world_split() -> tuple[list[CountdownProblem], list[CountdownProblem]]:
    """(train, held-out) countdown problems of the tiny world; no problem is in both."""
    return train_heldout_split(N_TRAIN, N_HELDOUT, seed=TASK_SEED, **TASK)


def countdown_dataset(problems: Sequence[CountdownProblem]) -> Dataset:
    """A `datasets.Dataset` with columns `prompt` (`format_prompt`), `numbers` (list[int]) and `target` (int)."""
    # Deferred: `eapo.tasks.rewards` imports this module. `Sequence` (not `List`) also exists in datasets 3.x.
    from datasets import Dataset, Features, Value
    from datasets import Sequence as SequenceFeature

    features = Features(
        {"prompt": Value("string"), "numbers": SequenceFeature(Value("int64")), "target": Value("int64")}
    )
    columns = {
        "prompt": [format_prompt(p) for p in problems],
        "numbers": [list(p.numbers) for p in problems],
        "target": [p.target for p in problems],
    }
    return Dataset.from_dict(columns, features=features)
