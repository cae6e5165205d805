"""Held-out accuracy of a policy on any task, scored by the task's own TRL reward function, and over
training steps (`HeldoutEvalCallback`, `RUN_DIR/heldout.jsonl`).

k completions are sampled per held-out prompt (`eapo.evaluation.sample_completions`); each is scored
by calling the reward as TRL does (`reward(prompts=..., completions=..., completion_ids=None,
**columns)`), and counts as correct when its reward is >= `threshold` (1.0: a full score). Reported:
`avg@k` (mean correctness) and `pass@j` (unbiased, j = 1, 2, 4, .. k), as for the tiny world.

Held-out accuracy over training steps: a TrainerCallback that samples the held-out problems every
N optimizer steps (and at step 0) and appends one JSON line per evaluation to `RUN_DIR/heldout.jsonl`.

Each line is `{"step": <int>, "k": <int>, "avg@<k>": <float>, "pass@<k>": <float>}` (plus the other
`pass@j`, and for a task that reads answers maj@k, `format_rate`, `accuracy` and `accuracy_formatted`), flushed
and fsynced, written by the main process only.

The evaluation does not touch the training's randomness: the global torch (CPU and CUDA), Python and
NumPy generator states are saved before sampling and restored after, so a run with periodic evaluation
takes exactly the same training steps as one without (tested). The model is put back in train mode.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import TrainerCallback

from eapo.evaluation.metrics import maj_at_k, score_samples
from eapo.evaluation.sampling import preserved_rng, sample_completions
from eapo.io import append_jsonl
from eapo.models.policy import prompt_text
from eapo.tasks.rewards import format_scores
from eapo.trainer.reliability import GuardedReward


class HeldoutEvalCallback(TrainerCallback):
    """Evaluates `evaluate_fn(model)` (a dict such as `countdown_accuracy`'s, with `avg@k`/`pass@k`) at
    step 0 and every `every` optimizer steps, and at the last step; one line per evaluation in `path`.

    Args:
        path: the JSON-lines file appended to (`RUN_DIR/heldout.jsonl`).
        evaluate_fn: model -> metrics dict; it may sample freely (the generators are restored after); an
            empty dict (an evaluation that failed) writes no line.
        every: evaluation period in optimizer steps (>= 1).
        k: samples per problem, written as `"k"` on every line.
    """

    def __init__(self, path: Path, evaluate_fn: Callable[[Any], dict[str, float]], every: int, k: int):
        if every < 1:
            raise ValueError(f"HeldoutEvalCallback needs every >= 1, got {every}")
        self.path, self.evaluate_fn, self.every, self.k = Path(path), evaluate_fn, every, k
        self.done: set[int] = set()
        self.step = 0  # the optimizer step being evaluated (for evaluate_fn's messages)

    def _evaluate(self, state: Any, model: Any) -> None:
        if not state.is_world_process_zero or model is None or state.global_step in self.done:
            return
        was_training = model.training
        self.step = state.global_step
        try:
            with preserved_rng():
                metrics = self.evaluate_fn(model)
        finally:
            model.train(was_training)
        self.done.add(state.global_step)
        if metrics:  # an evaluation that failed (and said so) writes no line
            append_jsonl(self.path, {"step": state.global_step, "k": self.k, **metrics})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0:  # a resumed run already has its step-0 line (and the ones up to its checkpoint)
            self._evaluate(state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step >= state.max_steps:
            self._evaluate(state, model)


def as_completions(texts: Sequence[str], conversational: bool) -> list[Any]:
    """Completion texts in the form a TRL reward function receives: assistant messages for conversational
    prompts, plain strings otherwise."""
    return [[{"role": "assistant", "content": t}] for t in texts] if conversational else list(texts)


def guarded(reward: Callable[..., Any], reward_error_policy: str = "raise") -> GuardedReward:
    """`reward` behind the guard training uses (`eapo.trainer.reliability.GuardedReward`): an exception, NaN/inf or
    the wrong number of values is a `RewardFunctionError` naming the sample ("raise") or scores 0 ("zero")."""
    if isinstance(reward, GuardedReward):
        return reward
    name = getattr(reward, "__name__", type(reward).__name__)
    return GuardedReward(reward, name, reward_error_policy)


def score_with_reward(
    reward: Callable[..., list[float]],
    rows: Dataset,
    samples: Sequence[Sequence[str]],
    threshold: float = 1.0,
    reward_error_policy: str = "raise",
) -> tuple[list[list[float]], list[list[bool]]]:
    """Per-sample rewards and correctness of `samples[i]` (the completions of `rows[i]`), through the same reward
    guard and `reward_error_policy` as training (`guarded`)."""
    reward = guarded(reward, reward_error_policy)
    columns = [c for c in rows.column_names if c != "prompt"]
    rewards, correct = [], []
    for row, group in zip(rows, samples, strict=True):
        completions = as_completions(group, conversational=not isinstance(row["prompt"], str))
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
    per_problem: bool = False,
    reward_error_policy: str = "raise",
    extract_answer: Callable[[str], Any] | None = None,
    **sampling: Any,
) -> dict[str, Any]:
    """avg@k and pass@j of `model` on the held-out `rows` (sampling options as in
    `sample_completions`: temperature, top_p, max_new_tokens, batch_size, seed, progress, desc); with
    `per_problem`, also the problems evaluated (`problem_record`). The reward is guarded as in training
    (`score_with_reward`); samples scored 0 under `reward_error_policy="zero"` are counted in `invalid_rewards`.
    With the task's `extract_answer`, also maj@k and the three numbers of `format_scores` (format rate,
    accuracy, accuracy among well-formatted samples)."""
    if len(rows) == 0:
        return {}
    prompts = [prompt_text(tokenizer, p) for p in rows["prompt"]]
    samples = sample_completions(model, tokenizer, prompts, k, **sampling)
    guard = guarded(reward, reward_error_policy)
    invalid = guard.invalid
    _, correct = score_with_reward(guard, rows, samples, threshold)
    scores: dict[str, Any] = scores_from_correct(correct, k)
    if extract_answer is not None:
        scores |= answer_scores(samples, correct, k, extract_answer)
    if guard.invalid > invalid:
        scores["invalid_rewards"] = guard.invalid - invalid
    return scores | problem_record(prompts, correct) if per_problem else scores


def answer_scores(
    samples: Sequence[Sequence[str]], correct: Sequence[Sequence[bool]], k: int, extract_answer: Callable[[str], Any]
) -> dict[str, float | None]:
    """maj@k and the three numbers of `format_scores` from the samples' answers read by the task's `extract_answer`
    (None: no answer) and their correctness."""
    answers = [[extract_answer(text) for text in group] for group in samples]
    majority = sum(maj_at_k(a, c, k) for a, c in zip(answers, correct, strict=True)) / len(answers)
    return {f"maj@{k}": majority, **format_scores([[a is not None for a in group] for group in answers], correct)}


def problem_record(prompts: Sequence[str], correct: Sequence[Sequence[bool]]) -> dict[str, Any]:
    """What an evaluation needs for its own standard error and for pairing runs: `problems` (N),
    `correct_per_problem` (correct samples of each problem, in order) and `problems_sha256` (a digest of
    the prompt texts: runs that evaluated the same problems in the same order have the same one)."""
    digest = hashlib.sha256(json.dumps(list(prompts)).encode()).hexdigest()
    counts = [sum(bool(f) for f in flags) for flags in correct]
    return {"problems": len(prompts), "correct_per_problem": counts, "problems_sha256": digest}


def scores_from_correct(correct: Sequence[Sequence[bool]], k: int) -> dict[str, float]:
    """avg@k and pass@j (j = 1, 2, 4, .. k) from the correctness of k samples per problem."""
    placeholders = [[str(j) for j in range(len(flags))] for flags in correct]  # sample j of problem i is "j"
    return score_samples(placeholders, lambda text, i: correct[i][int(text)], k)
