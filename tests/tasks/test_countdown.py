"""The countdown task: hand-written completions, exact solution sets, the generator, the TRL reward and fuzzing."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from eapo.tasks import (
    CountdownProblem,
    countdown_dataset,
    format_prompt,
    format_solution,
    generate_problems,
    problem_key,
    solutions,
    train_heldout_split,
)
from eapo.tasks.rewards import countdown_reward, verify_countdown

# (numbers, target, completion), all valid.
VALID = [
    ((3, 5, 7), 22, "3*5=15,15+7=22"),
    ((3, 5, 7), 22, "5*3=15,7+15=22"),
    ((7, 5, 3), 22, "3*5=15,7+15=22"),
    ((3, 5, 7), 9, "5-3=2,2+7=9"),
    ((1, 2, 4, 8), 15, "1+2=3,3+4=7,7+8=15"),
    ((1, 2, 4, 8), 15, "4+8=12,1+2=3,12+3=15"),
    ((1, 2, 4, 8), 15, "8+4=12,12+1=13,13+2=15"),
    ((1, 2, 4, 8), 15, "1+2=3,4+8=12,3+12=15"),
    ((8, 4, 3), 6, "8/4=2,2*3=6"),
    ((3, 3, 5), 11, "3+3=6,6+5=11"),
    ((3, 3, 5), 11, "3+5=8,8+3=11"),
    ((3, 3, 5), 0, "3-3=0,0/5=0"),  # 0 divided by something is fine
    ((3, 3, 5), 0, "3-3=0,0*5=0"),
    ((2, 3, 5), 4, "5-3=2,2*2=4"),  # one given 2 and one intermediate 2
    ((6, 6), 1, "6/6=1"),
    ((3, 5, 7), 22, "  3*5=15,15+7=22\n"),  # leading/trailing whitespace is stripped
]

# (numbers, target, completion), all invalid.
INVALID = {
    "wrong arithmetic": ((3, 5, 7), 22, "3*5=16,16+7=22"),
    "wrong final arithmetic": ((3, 5, 7), 23, "3*5=15,15+7=23"),
    "wrong arithmetic hitting the target": ((3, 5, 6), 22, "3*5=16,16+6=22"),
    "wrong target": ((3, 5, 7), 21, "3*5=15,15+7=22"),
    "reused number": ((3, 5, 7), 16, "3*3=9,9+7=16"),
    "reused intermediate": ((3, 5, 7), 30, "3*5=15,15+15=30"),
    "number not given": ((3, 5, 7), 22, "3*6=18,18+4=22"),
    "not all numbers used": ((3, 5, 7), 15, "3*5=15"),
    "unused intermediate": ((1, 2, 4, 8), 12, "1+2=3,4+8=12"),
    "extra step": ((3, 5, 7), 22, "3*5=15,15+7=22,22*1=22"),
    "extra text before": ((3, 5, 7), 22, "Answer: 3*5=15,15+7=22"),
    "extra text after": ((3, 5, 7), 22, "3*5=15,15+7=22 done"),
    "extra line after": ((3, 5, 7), 22, "3*5=15,15+7=22\n3*5=15"),
    "prompt echoed": ((3, 5, 7), 22, "3,5,7>22:3*5=15,15+7=22"),
    "space in step": ((3, 5, 7), 22, "3 * 5=15,15+7=22"),
    "space after comma": ((3, 5, 7), 22, "3*5=15, 15+7=22"),
    "trailing comma": ((3, 5, 7), 22, "3*5=15,15+7=22,"),
    "leading comma": ((3, 5, 7), 22, ",3*5=15,15+7=22"),
    "double comma": ((3, 5, 7), 22, "3*5=15,,15+7=22"),
    "other separator": ((3, 5, 7), 22, "3*5=15;15+7=22"),
    "x for times": ((3, 5, 7), 22, "3x5=15,15+7=22"),
    "division by zero": ((3, 3, 5), 0, "3-3=0,5/0=0"),
    "inexact division": ((7, 2, 3), 6, "7/2=3,3+3=6"),
    "inexact division rounded up": ((7, 2, 1), 5, "7/2=4,4+1=5"),
    "negative intermediate written": ((3, 5, 7), 5, "3-5=-2,7+-2=5"),
    "negative intermediate unwritten": ((3, 5, 7), 9, "3-5=2,2+7=9"),
    "sign": ((3, 5, 7), 22, "+3*5=15,15+7=22"),
    "leading zero operand": ((3, 5, 7), 22, "03*5=15,15+7=22"),
    "leading zero result": ((3, 5, 7), 22, "3*5=015,015+7=22"),
    "negative zero": ((3, 3, 5), 0, "3-3=-0,-0*5=0"),
    "unicode digit": ((3, 5, 7), 22, "\uff13*5=15,15+7=22"),
    "arabic-indic digit": ((3, 5, 7), 22, "\u0663*5=15,15+7=22"),
    "fullwidth operator": ((3, 5, 7), 22, "3\uff0a5=15,15+7=22"),
    "decimal point": ((3, 5, 7), 22, "3.0*5=15,15+7=22"),
    "huge numbers": ((3, 5, 7), 22, f"{10**50}*0=0,0+22=22"),
    "seven digits": ((1000000, 1), 1000001, "1000000+1=1000001"),
    "ten thousand digits": ((3, 5, 7), 22, "1" * 10_000),
    "long but valid prefix": ((3, 5, 7), 22, "3*5=15,15+7=22" + " " * 1000),
    "empty": ((3, 5, 7), 22, ""),
    "whitespace only": ((3, 5, 7), 22, " \n\t "),
    "equals only": ((3, 5, 7), 22, "="),
    "missing result": ((3, 5, 7), 22, "3*5=15,15+7"),
    "chained equals": ((3, 5, 7), 22, "3*5=15=15,15+7=22"),
    "one-number problem, no steps": ((22,), 22, ""),
}


@pytest.mark.parametrize(("numbers", "target", "completion"), VALID)
def test_valid_completions(numbers, target, completion):
    assert verify_countdown(completion, numbers, target)
    assert verify_countdown(completion, list(numbers), target)  # as the dataset column arrives


@pytest.mark.parametrize(("numbers", "target", "completion"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_completions(numbers, target, completion):
    assert not verify_countdown(completion, numbers, target)


@pytest.mark.parametrize("completion", [None, 22, b"3*5=15,15+7=22", ["3*5=15,15+7=22"]])
def test_non_string_completions_are_rejected(completion):
    assert not verify_countdown(completion, (3, 5, 7), 22)


def test_formats():
    p = CountdownProblem((3, 5, 7), 22)
    assert format_prompt(p) == "3,5,7>22:"
    assert format_solution([(3, "*", 5, 15), (15, "+", 7, 22)]) == "3*5=15,15+7=22"
    assert problem_key(CountdownProblem((7, 3, 5), 22)) == problem_key(p) == ((3, 5, 7), 22)


@pytest.mark.parametrize(("numbers", "target"), [((3,), 3), ((3, 5), -1), ((3, -5), 2), ((3, 10**6), 2), ((3, 5), 2.0)])
def test_bad_problems_are_refused(numbers, target):
    with pytest.raises(ValueError):
        CountdownProblem(numbers, target)


def test_solutions_of_fixed_problems():
    assert solutions(CountdownProblem((3, 5, 7), 22)) == sorted(
        ["3*5=15,15+7=22", "3*5=15,7+15=22", "5*3=15,15+7=22", "5*3=15,7+15=22"]
    )
    assert solutions(CountdownProblem((6, 6), 1)) == ["6/6=1"]
    assert solutions(CountdownProblem((6, 6), 5)) == []
    for numbers, target, _ in VALID:
        found = solutions(CountdownProblem(tuple(numbers), target))
        assert found == sorted(set(found))
        assert all(verify_countdown(s, numbers, target) for s in found)
    hand = {(numbers, target, c.strip()) for numbers, target, c in VALID}
    for numbers, target, completion in hand:
        assert completion in solutions(CountdownProblem(numbers, target))


def test_every_solution_of_generated_problems_verifies():
    for problem in generate_problems(300, seed=1) + generate_problems(15, seed=2, num_numbers=4):
        found = solutions(problem)
        assert found, problem
        for s in found:
            assert s.count(",") == len(problem.numbers) - 2
            assert verify_countdown(s, problem.numbers, problem.target), (problem, s)
            assert not verify_countdown(s, problem.numbers, problem.target + 1)
            assert not verify_countdown(s + ",", problem.numbers, problem.target)


def _all_step_strings(values: range) -> list[str]:
    return [f"{a}{op}{b}={c}" for a, b, c in itertools.product(values, repeat=3) for op in "+-*/"]


@pytest.mark.parametrize(("numbers", "targets"), [((6, 3), (0, 2, 3, 9, 18, 5)), ((0, 4), (0, 4))])
def test_solutions_complete_two_numbers(numbers, targets):
    """Every one-step string with values in 0..19: the verifier accepts exactly `solutions`."""
    strings = _all_step_strings(range(20))
    for target in targets:
        accepted = {s for s in strings if verify_countdown(s, numbers, target)}
        assert accepted == set(solutions(CountdownProblem(numbers, target))), target


@pytest.mark.parametrize(("numbers", "target", "max_value"), [((1, 1, 2), 4, 4), ((0, 1, 2), 2, 3)])
def test_solutions_complete_three_numbers(numbers, target, max_value):
    """Every two-step string with values in 0..max_value (which bounds every value reachable from `numbers`).

    The verifier accepts exactly `solutions`, which is non-trivial.
    """
    steps = _all_step_strings(range(max_value + 1))
    accepted = {f"{s1},{s2}" for s1 in steps for s2 in steps if verify_countdown(f"{s1},{s2}", numbers, target)}
    expected = set(solutions(CountdownProblem(numbers, target)))
    assert len(expected) >= 4
    assert accepted == expected


def _generate_kwargs_cases():
    return [{}, {"num_numbers": 4}, {"num_numbers": 2, "max_number": 20, "max_target": 50}]


@pytest.mark.parametrize("kwargs", _generate_kwargs_cases())
def test_generate_problems(kwargs):
    problems = generate_problems(200, seed=7, **kwargs)
    assert problems == generate_problems(200, seed=7, **kwargs)
    assert problems != generate_problems(200, seed=8, **kwargs)
    assert problems[:50] == generate_problems(50, seed=7, **kwargs)
    assert len(problems) == 200 and len({problem_key(p) for p in problems}) == 200
    num_numbers, max_number = kwargs.get("num_numbers", 3), kwargs.get("max_number", 9)
    for p in problems:
        assert len(p.numbers) == num_numbers and all(1 <= x <= max_number for x in p.numbers)
        assert 1 <= p.target <= kwargs.get("max_target", 99)
    for p in problems[:20]:
        assert solutions(p)


def test_generate_problems_refuses_an_impossible_count():
    # Two numbers in 1..2 give exactly 7 distinct problems with a target >= 1.
    assert len(generate_problems(7, seed=0, num_numbers=2, max_number=2)) == 7
    with pytest.raises(ValueError, match="distinct problems"):
        generate_problems(8, seed=0, num_numbers=2, max_number=2)
    with pytest.raises(ValueError):
        generate_problems(3, seed=0, num_numbers=1)


def test_train_heldout_split():
    train, heldout = train_heldout_split(300, 100, seed=3)
    assert (len(train), len(heldout)) == (300, 100)
    assert not {problem_key(p) for p in train} & {problem_key(p) for p in heldout}
    assert (train, heldout) == train_heldout_split(300, 100, seed=3)
    assert train_heldout_split(300, 100, seed=4) != (train, heldout)
    train4, heldout4 = train_heldout_split(50, 20, seed=3, num_numbers=4)
    assert all(len(p.numbers) == 4 for p in train4 + heldout4)
    assert not {problem_key(p) for p in train4} & {problem_key(p) for p in heldout4}


def test_countdown_dataset():
    problems = generate_problems(5, seed=0)
    ds = countdown_dataset(problems)
    assert ds.column_names == ["prompt", "numbers", "target"]
    assert len(ds) == 5
    assert ds[0] == {
        "prompt": format_prompt(problems[0]),
        "numbers": list(problems[0].numbers),
        "target": problems[0].target,
    }
    assert len(countdown_dataset([])) == 0


def test_countdown_reward_plain_and_conversational():
    numbers = [[3, 5, 7], [3, 5, 7], [8, 4, 3], [1, 2, 4, 8]]
    target = [22, 22, 6, 15]
    plain = ["3*5=15,15+7=22", "3*5=16,16+7=22", "8/4=2,2*3=6 ", "1+2=3,4+8=12"]
    assert countdown_reward(plain, numbers, target) == [1.0, 0.0, 1.0, 0.0]
    conversational = [[{"role": "assistant", "content": c}] for c in plain]
    conversational[0] = [{"role": "user", "content": "ignored"}, {"role": "assistant", "content": plain[0]}]
    kwargs = {"prompts": ["x"] * 4, "completion_ids": [[0]] * 4, "trainer_state": None}
    assert countdown_reward(conversational, numbers, target, **kwargs) == [1.0, 0.0, 1.0, 0.0]
    odd = [[], [{"role": "assistant"}], [{"role": "assistant", "content": None}], None]
    assert countdown_reward(odd, numbers, target) == [0.0] * 4
    assert countdown_reward([], [], []) == []
    with pytest.raises(ValueError):
        countdown_reward(plain, numbers[:2], target[:2])


def _fuzz_strings(rng: random.Random) -> list[str]:
    alphabet = "0123456789+-*/=,>: "
    seeds = ["3*5=15,15+7=22", "5*3=15,7+15=22", "1+2=3,3+4=7,7+8=15"]
    out = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(80))).decode("utf-8", errors="replace")
        for _ in range(700)
    ]
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(40))) for _ in range(700)]
    for _ in range(500):  # one to three random edits of a valid completion
        chars = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        out.append("".join(chars))
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(150, 250))) for _ in range(50)]
    out += ["9" * 100_000, "1+" * 100_000, "=" * 10**6, "3*5=15," * 40, "\x00" * 300]
    return out


def test_fuzz_countdown_reward():
    rng = random.Random(0)
    strings = _fuzz_strings(rng)
    assert len(strings) >= 1900
    n = len(strings)
    start = time.perf_counter()
    rewards = countdown_reward(strings, [[3, 5, 7]] * n, [22] * n)
    rewards += countdown_reward(strings, [[1, 2, 4, 8]] * n, [15] * n)
    elapsed = time.perf_counter() - start
    assert set(rewards) <= {0.0, 1.0}
    assert elapsed < 1.0
    # An accepted fuzz string is a true solution.
    for s, r in zip(strings + strings, rewards, strict=True):
        if r == 1.0:
            assert s.strip() in solutions(CountdownProblem((3, 5, 7), 22)) + solutions(
                CountdownProblem((1, 2, 4, 8), 15)
            )
