"""Sampling-based evaluation of a policy on a verifiable task: avg@k, pass@k and maj@k.

Definitions (n samples per problem, c of them correct):
- avg@k: the mean accuracy over k samples per problem (an unbiased estimate of pass@1).
- pass@k: `1 - C(n - c, k) / C(n, k)`, the unbiased estimator of the probability that at least one of
  k samples is correct (Chen et al., 2021), averaged over problems; with n = k it is "any correct".
- maj@k: majority vote over the answers of the first k samples (samples with no answer do not vote;
  a tie goes to the answer seen first); the problem counts as solved when the first sample giving the
  winning answer is correct. 0 when no sample has an answer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from `n` samples of which `c` are correct: `1 - C(n - c, k) / C(n, k)`.

    Computed as `1 - prod_{i = n - c + 1}^{n} (1 - k / i)`, which stays exact for large n.
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def maj_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool], k: int) -> float:
    """Majority-vote accuracy over the first `k` samples (see the module docstring).

    Args:
        answers: the extracted answer of each sample, `None` when it has none.
        correct: whether each sample is correct, aligned with `answers`.
        k: number of samples that vote (1 <= k <= len(answers)).
    """
    if len(answers) != len(correct):
        raise ValueError(f"answers and correct differ in length: {len(answers)} != {len(correct)}")
    if not 1 <= k <= len(answers):
        raise ValueError(f"maj_at_k needs 1 <= k <= {len(answers)}, got k={k}")
    votes = Counter(a for a in answers[:k] if a is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    winner = next(a for a in answers[:k] if a is not None and votes[a] == top)
    return float(correct[list(answers).index(winner)])


def score_samples(
    samples: Sequence[Sequence[str]],
    verify: Callable[[str, int], bool],
    k: int,
    extract: Callable[[str], Hashable | None] | None = None,
) -> dict[str, float]:
    """avg@k, pass@j for j = 1, 2, 4, ... up to k (unbiased, from the k samples), and maj@k when an
    answer `extract`or is given, averaged over problems. `samples[i]` holds problem i's completions."""
    n = max(len(samples), 1)
    flags = [[bool(verify(text, i)) for text in group[:k]] for i, group in enumerate(samples)]
    out = {f"avg@{k}": sum(sum(f) for f in flags) / (n * k)}
    for j in sorted({2**i for i in range(k.bit_length())} | {k}):  # 1, 2, 4, ... <= k, and k
        out[f"pass@{j}"] = sum(pass_at_k(k, sum(f), j) for f in flags) / n
    if extract is not None:
        out[f"maj@{k}"] = (
            sum(maj_at_k([extract(t) for t in g[:k]], f, k) for g, f in zip(samples, flags, strict=True)) / n
        )
    return out


def answer_columns(result: dict[str, Any]) -> dict[str, float | None]:
    """`format_rate` and `accuracy_formatted` of one evaluation (eval.json's `before` or `after`) where the task
    reads answers, to show beside its avg@k (which is `accuracy`); empty for a task that does not."""
    return {key: result.get(key) for key in ("format_rate", "accuracy_formatted") if key in result}
