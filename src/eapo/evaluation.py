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
import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm


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


@contextmanager
def preserved_rng(seed: int | None = None) -> Iterator[None]:
    """Run the body on forked generators, seeded with `seed` when given: torch (CPU and every CUDA device),
    `random` and NumPy are restored to their entry state on exit, whatever the body draws or reseeds."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@torch.no_grad()
def sample_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    k: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 24,
    batch_size: int = 512,
    seed: int = 0,
    progress: bool = False,
) -> list[list[str]]:
    """`k` sampled completions per prompt (plain transformers generation, left padding), in order."""
    was_training = model.training
    model.eval()
    flat = [p for p in prompts for _ in range(k)]
    texts: list[str] = []
    tokenizer.padding_side = "left"
    try:
        with preserved_rng(seed):
            for start in tqdm(range(0, len(flat), batch_size), desc="sampling", disable=not progress, leave=False):
                batch = tokenizer(flat[start : start + batch_size], return_tensors="pt", padding=True)
                batch = {key: value.to(model.device) for key, value in batch.items()}
                out = model.generate(
                    **batch,
                    do_sample=True,
                    temperature=temperature,
                    top_k=0,
                    top_p=top_p,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
                texts.extend(tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True))
    finally:
        model.train(was_training)
    return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]


def evaluate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    verify: Callable[[str, int], bool],
    k: int = 8,
    **sampling: Any,
) -> dict[str, float]:
    """avg@k (mean accuracy over all k samples of all prompts) and pass@k (share of prompts with at least
    one correct sample among its k). `verify(completion, prompt_index)` says whether a sample is correct."""
    samples = sample_completions(model, tokenizer, prompts, k, **sampling)
    return score_samples(samples, verify, k)


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
