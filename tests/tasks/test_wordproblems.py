"""The word-problem task: hand-computed problems and chains of thought, the answer marker, the split disjoint up to
equivalence (reordered and commuted twins included), determinism, and the task as `eapo train` loads it."""

from __future__ import annotations

import pytest

from eapo.tasks import wordproblems as wp
from eapo.tasks.registry import TaskError, load_task


def test_values_result_question_and_solution_are_hand_computed():
    problem = wp.WordProblem(8, (("+", 2), ("-", 3), ("*", 2)), "Omar", "marbles", (1, 0, 0))
    assert problem.values() == [8, 10, 7, 14] and problem.result == 14
    assert problem.question() == (
        "Omar has 8 marbles. Omar finds 2 more marbles. Then Omar gives 3 marbles to a friend. "
        "Then the number of marbles Omar has doubles. How many marbles does Omar have now?"
    )
    assert problem.solution() == "8 + 2 = 10. 10 - 3 = 7. 7 * 2 = 14.\nAnswer: 14"


@pytest.mark.parametrize(
    "text, answer",
    [
        (" 8 + 2 = 10. 10 + 3 = 13.\nAnswer: 13", 13),
        (" 3 + 3 = 6.\nAnswer: 6\n\nQuestion: Ben has 4 coins.\nSolution: 4 + 1 = 5.\nAnswer: 5", 6),  # the first
        ("Answer: **12**", 12),
        ("Answer:  1,204 apples", 1204),
        ("Answer: -3", -3),
        ("Answer: 2.5", 2.5),
        (" 8 + 2 = 10. 10 + 3 = 13.", None),  # no marker: not well formatted, though it ends on 13
        ("Answer: thirteen", None),
        ("answer: 13", None),  # the marker is case-sensitive, as written in the prompt
        ("", None),
        (None, None),
    ],
)
def test_the_answer_is_the_number_after_the_first_marker(text, answer):
    assert wp.extract_answer(text) == answer


def test_reward_on_hand_written_completions():
    completions = [
        " 8 + 2 = 10. 10 + 3 = 13.\nAnswer: 13",  # right
        " 8 + 2 = 10. 10 + 3 = 14.\nAnswer: 14",  # wrong answer
        " 8 + 2 = 10. 10 + 3 = 13.",  # right number, no marker
        [{"role": "assistant", "content": "Answer: 13"}],  # conversational, right
        "Answer: 12\nAnswer: 13",  # the first answer counts
    ]
    assert wp.wordproblem_reward(completions, ["13"] * 5) == [1.0, 0.0, 0.0, 1.0, 0.0]


def test_reordered_and_commuted_twins_share_a_key_and_different_sums_do_not():
    key = wp.equivalence_key
    base = wp.WordProblem(9, (("-", 2), ("+", 6)))
    assert key(base) == key(wp.WordProblem(9, (("+", 6), ("-", 2))))  # reordered steps
    assert key(base) == key(wp.WordProblem(6, (("+", 9), ("-", 2))))  # commuted start
    assert key(base) == key(wp.WordProblem(9, (("-", 2), ("+", 6)), "Zoe", "cards", (3, 1)))  # other words
    assert key(base) == key(wp.WordProblem(6, (("-", 2), ("+", 9))))  # 6 - 2 + 9 is 9 - 2 + 6 reordered
    assert key(base) != key(wp.WordProblem(9, (("+", 2), ("-", 6))))  # another sum of the same numbers
    assert key(base) != key(wp.WordProblem(9, (("-", 2), ("+", 5))))


def test_with_a_product_any_reordering_of_the_same_numbers_and_operations_is_equivalent():
    a = wp.WordProblem(4, (("+", 3), ("*", 2)))
    assert wp.equivalence_key(a) == wp.equivalence_key(wp.WordProblem(3, (("*", 2), ("+", 4))))
    assert wp.equivalence_key(a) != wp.equivalence_key(wp.WordProblem(4, (("-", 3), ("*", 2))))


@pytest.mark.parametrize("level", sorted(wp.DIFFICULTIES))
def test_splits_share_no_equivalent_problem_and_respect_the_level(level):
    train, heldout = wp.generate_split(level, train_size=2000, heldout_size=200, seed=3)
    assert len(heldout) == 200 and len(train) == 2000
    train_keys = {wp.equivalence_key(p) for p in train}
    assert not train_keys & {wp.equivalence_key(p) for p in heldout}
    assert len(set(heldout)) == len(heldout) and len(set(train)) == len(train)
    examples = {wp.equivalence_key(p) for p in wp.examples(level)}
    assert not examples & (train_keys | {wp.equivalence_key(p) for p in heldout})
    spec = wp.DIFFICULTIES[level]
    for problem in train + heldout:
        assert spec.min_steps <= len(problem.steps) <= spec.max_steps
        assert spec.min_start <= problem.start <= spec.max_start
        assert all(op in spec.ops for op, _ in problem.steps)
        assert min(problem.values()) >= 0


def test_a_reordered_twin_of_a_heldout_problem_is_never_drawn_for_training():
    """A brute-force check of the split's rule on every ordering of held-out problems' steps."""
    from itertools import permutations

    train, heldout = wp.generate_split(2, train_size=3000, heldout_size=50, seed=0)
    train_problems = {(p.start, tuple(sorted(p.steps))) for p in train}
    for p in heldout:
        terms = [("+", p.start), *p.steps]
        for order in permutations(terms):
            if order[0][0] != "+":
                continue  # a story starts from a quantity
            twin = (order[0][1], tuple(sorted(order[1:])))
            assert twin not in train_problems


def test_heldout_depends_on_the_level_only_and_train_on_the_seed():
    _, heldout_a = wp.generate_split(2, train_size=10, heldout_size=30, seed=0)
    train_b, heldout_b = wp.generate_split(2, train_size=10, heldout_size=30, seed=1)
    train_c, _ = wp.generate_split(2, train_size=10, heldout_size=30, seed=1)
    assert heldout_a == heldout_b and train_b == train_c
    assert wp.generate_split(2, train_size=10, heldout_size=0, seed=0)[0] != train_b


def test_the_prompt_holds_the_levels_examples_and_ends_at_solution():
    problem = wp.generate_split(1, train_size=0, heldout_size=1)[1][0]
    prompt = wp.format_prompt(problem, 1)
    assert prompt.startswith(wp.INSTRUCTION) and prompt.endswith(f"Question: {problem.question()}\nSolution:")
    assert prompt.count("Answer:") == 1 + wp.N_EXAMPLES  # the instruction names the marker once
    for example in wp.examples(1):
        assert f"Question: {example.question()}\nSolution: {example.solution()}" in prompt


def test_load_task_by_name_and_level():
    task = load_task("wordproblems:3", seed=0, train_size=40, eval_size=20)
    assert task.name == "wordproblems:3" and len(task.train) == 40 and len(task.heldout) == 20
    row = task.heldout[0]
    assert row["prompt"].endswith("Solution:") and task.reward([f"Answer: {row['answer']}"], [row["answer"]]) == [1.0]
    assert task.extract_answer("x\nAnswer: 7") == 7
    assert load_task("wordproblems", train_size=5, eval_size=5).name == f"wordproblems:{wp.DEFAULT_DIFFICULTY}"
    for bad in ("wordproblems:0", "wordproblems:x", "wordproblems:9"):
        with pytest.raises(TaskError, match="the difficulty must be one of 1, 2, 3, 4, 5"):
            load_task(bad, eval_size=5, train_size=5)


def test_completions_stop_at_the_blank_line_that_separates_the_examples_for_text_prompts_only():
    """The worked examples are separated by a blank line: a solution never holds one, so text prompts stop there
    (the answer is kept, the next "Question:" is not generated); chat prompts end at the template's own EOS."""
    from eapo.models.policy import render_prompts

    task = load_task("wordproblems:1", train_size=4, eval_size=4)
    assert task.stop_strings == ("\n\n",)
    assert all("\n\n" not in f"{e.solution()}" for e in wp.examples(1))
    assert all(wp.format_prompt(e, 1).count("\n\n") == wp.N_EXAMPLES + 1 for e in wp.examples(1))

    class Chat:  # a tokenizer with a chat template, as conversational() sees one
        chat_template = "{{ messages }}"

    render_prompts(task, Chat(), "chat", "auto")
    assert task.stop_strings == ()
