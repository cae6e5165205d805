"""Sampling-based evaluation of a policy on a verifiable task: avg@k and pass@k."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def sample_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    k: int,
    temperature: float = 1.0,
    max_new_tokens: int = 24,
    batch_size: int = 512,
    seed: int = 0,
    progress: bool = False,
) -> list[list[str]]:
    """`k` sampled completions per prompt (plain transformers generation, left padding), in order."""
    was_training = model.training
    model.eval()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    flat = [p for p in prompts for _ in range(k)]
    texts: list[str] = []
    tokenizer.padding_side = "left"
    try:
        for start in tqdm(range(0, len(flat), batch_size), desc="sampling", disable=not progress, leave=False):
            batch = tokenizer(flat[start : start + batch_size], return_tensors="pt", padding=True)
            batch = {key: value.to(model.device) for key, value in batch.items()}
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            texts.extend(tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True))
    finally:
        torch.random.set_rng_state(generator_state)
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
    correct = [sum(verify(text, i) for text in group) for i, group in enumerate(samples)]
    n = max(len(prompts), 1)
    return {f"avg@{k}": sum(correct) / (n * k), f"pass@{k}": sum(c > 0 for c in correct) / n}
