"""Held-out accuracy of a policy on any task, scored by the task's own TRL reward function.

k completions are sampled per held-out prompt (`eapo.evaluation.sample_completions`); each is scored
by calling the reward as TRL does (`reward(prompts=..., completions=..., completion_ids=None,
**columns)`), and counts as correct when its reward is >= `threshold` (1.0: a full score). Reported:
`avg@k` (mean correctness) and `pass@j` (unbiased, j = 1, 2, 4, .. k), as for the tiny world.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from datasets import Dataset

from eapo.evaluation import sample_completions, score_samples
from eapo.policy import prompt_text


def score_with_reward(
    reward: Callable[..., list[float]], rows: Dataset, samples: Sequence[Sequence[str]], threshold: float = 1.0
) -> tuple[list[list[float]], list[list[bool]]]:
    """Per-sample rewards and correctness of `samples[i]` (the completions of `rows[i]`)."""
    columns = [c for c in rows.column_names if c != "prompt"]
    rewards, correct = [], []
    for row, group in zip(rows, samples, strict=True):
        conversational = not isinstance(row["prompt"], str)
        completions = [[{"role": "assistant", "content": t}] for t in group] if conversational else list(group)
        extra = {c: [row[c]] * len(group) for c in columns}
        values = reward(prompts=[row["prompt"]] * len(group), completions=completions, completion_ids=None, **extra)
        values = [float(v) if v is not None else 0.0 for v in values]
        rewards.append(values)
        correct.append([v >= threshold - 1e-9 for v in values])
    return rewards, correct


def task_accuracy(
    model: Any,
    tokenizer: Any,
    rows: Dataset,
    reward: Callable[..., list[float]],
    k: int,
    threshold: float = 1.0,
    **sampling: Any,
) -> dict[str, float]:
    """avg@k and pass@j of `model` on the held-out `rows` (sampling options as in
    `sample_completions`: temperature, top_p, max_new_tokens, batch_size, seed, progress)."""
    if len(rows) == 0:
        return {}
    prompts = [prompt_text(tokenizer, p) for p in rows["prompt"]]
    samples = sample_completions(model, tokenizer, prompts, k, **sampling)
    _, correct = score_with_reward(reward, rows, samples, threshold)
    return scores_from_correct(correct, k)


def scores_from_correct(correct: Sequence[Sequence[bool]], k: int) -> dict[str, float]:
    """avg@k and pass@j (j = 1, 2, 4, .. k) from the correctness of k samples per problem."""
    placeholders = [[str(j) for j in range(len(flags))] for flags in correct]  # sample j of problem i is "j"
    return score_samples(placeholders, lambda text, i: correct[i][int(text)], k)
