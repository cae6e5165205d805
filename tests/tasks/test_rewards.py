"""`eapo.tasks.rewards.math_reward`: last `\\boxed{}` answer, checked with math-verify."""

from __future__ import annotations

import threading

import pytest

from eapo.tasks.rewards import format_scores, last_boxed, math_reward


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{\frac{1}{\sqrt{2}}}.", r"\frac{1}{\sqrt{2}}"),
        (r"\boxed{1} first, then \boxed{2}", "2"),
        (r"\boxed{1} then \fbox{3}", "3"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{\frac{1}{2}", None),  # unclosed
        (r"the answer is \boxed 7$", "7"),
        ("no box at all", None),
    ],
)
def test_last_boxed_balances_nested_braces(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize("form", [r"\frac{1}{2}", "0.5", "1/2", r"\dfrac{1}{2}", r"\frac12", "0.50"])
def test_equivalent_forms_of_one_half(form):
    assert math_reward([f"The answer is $\\boxed{{{form}}}$."], ["1/2"]) == [1.0]
    assert math_reward([r"\boxed{1/2}"], [form]) == [1.0]  # gold in any of these forms too


@pytest.mark.parametrize(
    ("completion", "gold"),
    [
        (r"\boxed{0.6}", "1/2"),
        (r"\boxed{2}", "1/2"),
        (r"\boxed{\frac{1}{3}}", r"\frac{1}{2}"),
        (r"\boxed{\sqrt{2}}", r"\frac{1}{\sqrt{2}}"),
        (r"\boxed{x+1}", "x+2"),
    ],
)
def test_wrong_answers_get_zero(completion, gold):
    assert math_reward([completion], [gold]) == [0.0]


def test_missing_or_empty_box_gets_zero_even_if_the_text_is_right():
    assert math_reward(["The answer is 1/2.", "0.5", r"\boxed{}", r"\boxed{ }"], ["1/2"] * 4) == [0.0] * 4


def test_nested_braces_and_equivalent_radicals():
    assert math_reward([r"hence \boxed{\frac{1}{\sqrt{2}}}"], [r"\frac{\sqrt{2}}{2}"]) == [1.0]
    assert math_reward([r"\boxed{\frac{\sqrt{2}}{2}}"], [r"\boxed{\frac{1}{\sqrt{2}}}"]) == [1.0]


def test_only_the_last_box_counts():
    assert math_reward([r"\boxed{1/2} no wait, \boxed{3}"], ["1/2"]) == [0.0]
    assert math_reward([r"\boxed{3} no wait, \boxed{1/2}"], ["1/2"]) == [1.0]


def test_conversational_completions():
    conv = [[{"role": "assistant", "content": r"so \boxed{42}"}], [{"role": "assistant", "content": "42"}]]
    assert math_reward(conv, ["42", "42"]) == [1.0, 0.0]


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        42,
        [],
        [{"role": "assistant"}],
        "\\boxed{" * 5000,
        "\\boxed{" + "1" * 5000 + "}",
        "x" * 200_001,
        r"\boxed{\frac{\frac{\frac{}{}}{}}{}}",
        "\\boxed{\x00\ud800}",
    ],
)
def test_garbage_never_raises(garbage):
    assert math_reward([garbage], ["1"]) == [0.0]


def test_works_outside_the_main_thread():
    out: list = []
    thread = threading.Thread(
        target=lambda: out.append(math_reward([r"\boxed{\frac{1}{2}}", r"\boxed{3}"], ["0.5"] * 2))
    )
    thread.start()
    thread.join(timeout=60)
    assert out == [[1.0, 0.0]]


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        math_reward(["a", "b"], ["1"])


def test_format_scores_on_a_hand_counted_case():
    # 2 problems x 3 samples: 4 well formatted (3 of them right), 1 right without an answer, 1 neither
    formatted = [[True, True, False], [True, True, False]]
    correct = [[True, False, True], [True, True, False]]
    assert format_scores(formatted, correct) == {
        "format_rate": 4 / 6,
        "accuracy": 4 / 6,
        "accuracy_formatted": 3 / 4,
    }
    assert format_scores([[False, False]], [[False, False]]) == {
        "format_rate": 0.0,
        "accuracy": 0.0,
        "accuracy_formatted": None,
    }
