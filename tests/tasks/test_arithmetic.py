"""The arithmetic task: answer extraction and reward on hand-written completions, the split, determinism."""

from __future__ import annotations

import pytest

from eapo.tasks.arithmetic import (
    SYSTEM_PROMPT,
    ArithmeticProblem,
    arithmetic_dataset,
    arithmetic_reward,
    extract_answer,
    format_question,
    generate_problems,
    train_heldout_split,
)
from eapo.tasks.registry import load_task


def test_results_are_hand_computed():
    assert ArithmeticProblem(7, "+", 12).result == 19
    assert ArithmeticProblem(3, "-", 15).result == -12
    assert ArithmeticProblem(4, "*", 6).result == 24


@pytest.mark.parametrize(
    "text, value",
    [
        ("19", 19.0),
        ("7 + 12 = 19.", 19.0),
        ("To add 7 and 12, count on: 12, 13, ..., 19. So the answer is 19", 19.0),
        ("3 - 15 = -12", -12.0),
        ("The result is 19.0", 19.0),
        ("**Answer:** 19\n", 19.0),
        ("So, 7 + 12", 12.0),  # cut off before the result: its last number is an operand
        ("nineteen", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_answer_reads_the_last_number(text, value):
    assert extract_answer(text) == value


def test_reward_on_correct_wrong_and_malformed_completions():
    completions = [
        "7 + 12 = 19",  # correct
        "The answer is 19.",  # correct, with a full stop
        "7 + 12 = 18",  # wrong
        "19 is what you get when you add 7 and 12",  # the last number is 12: wrong
        "I cannot do that.",  # no number
        "To add 7 and 12, we first",  # cut off
    ]
    assert arithmetic_reward(completions, ["19"] * 6) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_reward_reads_conversational_completions_and_negative_results():
    completions = [[{"role": "assistant", "content": "3 - 15 = -12"}], [{"role": "assistant", "content": "12"}]]
    assert arithmetic_reward(completions, ["-12", "-12"]) == [1.0, 0.0]


def test_problems_are_every_pair_once():
    problems = generate_problems(max_operand=20, ops=("+", "-"))
    assert len(problems) == 2 * 21 * 21 == len(set(problems))
    with pytest.raises(ValueError, match="unknown operations"):
        generate_problems(ops=("^",))


def test_split_is_disjoint_complete_and_deterministic():
    problems = generate_problems()
    train, heldout = train_heldout_split(problems, heldout_size=50, seed=1234)
    assert len(heldout) == 50 and len(train) == len(problems) - 50 == 71
    assert not set(train) & set(heldout)
    assert set(train) | set(heldout) == set(problems)
    assert train_heldout_split(problems, 50, 1234) == (train, heldout)
    assert train_heldout_split(problems, 50, 99)[1] != heldout
    with pytest.raises(ValueError, match="heldout_size"):
        train_heldout_split(problems, heldout_size=len(problems))


def test_registered_task_has_disjoint_prompts_and_its_reward():
    task = load_task("arithmetic", eval_size=200)
    assert task.name == "arithmetic" and task.reward is arithmetic_reward
    assert len(task.heldout) == 50 and len(task.train) == 11 * 11 - 50
    assert task.system_prompt == SYSTEM_PROMPT
    assert not set(task.train["prompt"]) & set(task.heldout["prompt"])
    assert len(load_task("arithmetic", eval_size=20).heldout) == 20
    again = load_task("arithmetic", eval_size=200, seed=7)  # the split does not depend on the run seed
    assert again.heldout["prompt"] == task.heldout["prompt"] and again.train["prompt"] == task.train["prompt"]
    row = task.heldout[0]
    assert arithmetic_reward([f"= {row['answer']}"], [row["answer"]]) == [1.0]


def test_dataset_rows():
    data = arithmetic_dataset([ArithmeticProblem(7, "+", 12), ArithmeticProblem(3, "-", 15)])
    assert data["answer"] == ["19", "-12"]
    assert data["prompt"][0] == format_question(ArithmeticProblem(7, "+", 12))
    assert data["prompt"][0].startswith("What is 7 + 12?")
