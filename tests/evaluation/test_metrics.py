"""pass@k and maj@k against hand-computed cases; `eapo eval` and `eapo compare` as a user runs them."""

from __future__ import annotations

from itertools import combinations

import pytest

import eapo
import eapo.world
from eapo.evaluation.metrics import score_samples
from eapo.tasks.rewards import countdown_answer


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 3, 1, 0.3),
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (5, 0, 3, 0.0),
        (5, 5, 1, 1.0),
        (8, 6, 3, 1.0),  # n - c < k: every 3-subset holds a correct sample
        (100, 1, 10, 0.1),
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert eapo.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_equals_subset_enumeration():
    for n in range(1, 8):
        for c in range(n + 1):
            flags = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(combinations(flags, k))
                assert eapo.pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match="pass_at_k needs"):
        eapo.pass_at_k(n, c, k)


def test_maj_at_k_hand_computed():
    answers = ["7", "9", "7", None, "9", "9"]
    correct = [False, True, False, False, True, True]
    assert eapo.maj_at_k(answers, correct, 3) == 0.0  # "7" wins 2-1, and "7" is wrong
    assert eapo.maj_at_k(answers, correct, 6) == 1.0  # "9" wins 3-2
    assert eapo.maj_at_k(answers, correct, 2) == 0.0  # tie 1-1: the answer seen first ("7")
    assert eapo.maj_at_k([None, "5", None], [False, True, False], 3) == 1.0  # no-answer samples don't vote
    assert eapo.maj_at_k([None, None], [True, True], 2) == 0.0
    with pytest.raises(ValueError):
        eapo.maj_at_k(["1"], [True, False], 1)


def test_score_samples_and_countdown_answer():
    samples = [["3*5=15,15+7=22", "1+1=3"], ["x", "y"]]
    solutions = {(0, "3*5=15,15+7=22")}
    scores = score_samples(samples, lambda text, i: (i, text) in solutions, 2, extract=countdown_answer)
    # problem 0: tie "22" vs "3", the first seen ("22") is correct; problem 1: no answer at all
    assert scores == {"avg@2": 0.25, "pass@1": 0.25, "pass@2": 0.5, "maj@2": 0.5}
    assert countdown_answer("3*5=15,15+7=22 ") == "22" and countdown_answer("abc") is None


def test_task_accuracy_reports_the_three_numbers_of_hand_made_completions(monkeypatch):
    """Completions stand in for the sampler: the reward, the marker and the counts are all the task's own."""
    from datasets import Dataset

    from eapo.evaluation import heldout
    from eapo.tasks.wordproblems import extract_answer, wordproblem_reward

    samples = [
        [" 3 + 4 = 7. 7 + 1 = 8.\nAnswer: 8", " 3 + 4 = 7. 7 + 1 = 9.\nAnswer: 9", " 3 + 4 = 7. 7 + 1 = 8."],
        ["Answer: 5", "Answer: 5", "I do not know"],
    ]
    monkeypatch.setattr(heldout, "sample_completions", lambda model, tok, prompts, k, **kw: samples)
    rows = Dataset.from_dict({"prompt": ["p1", "p2"], "answer": ["8", "6"]})
    scores = heldout.task_accuracy(None, None, rows, wordproblem_reward, 3, extract_answer=extract_answer)
    assert scores["avg@3"] == scores["accuracy"] == 1 / 6
    assert scores["format_rate"] == 4 / 6 and scores["accuracy_formatted"] == 1 / 4
    # majority vote: problem 1's 8 and 9 tie and the first seen (8) wins, right; problem 2 votes 5, wrong
    assert scores["maj@3"] == 0.5
    without = heldout.task_accuracy(None, None, rows, wordproblem_reward, 3)
    assert "format_rate" not in without and without["avg@3"] == 1 / 6
