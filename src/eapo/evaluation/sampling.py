"""Sampling completions from a policy for evaluation: plain transformers generation on forked, seeded
random generators (the caller's random state is left as it was), or vLLM from a model folder
(`sample_with_vllm`, when vLLM is installed and a GPU is present)."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from eapo.evaluation.metrics import score_samples


def sample_with_vllm(
    model_dir: str, prompts: Sequence[str], k: int, *, temperature: float, top_p: float, max_new_tokens: int, seed: int,
    stop_strings: Sequence[str] = (), dtype: str | None = None,
) -> list[list[str]]:
    """`k` completions of each prompt (texts, prompts in order) sampled by vLLM from the model folder `model_dir`
    in `dtype` (None: vLLM's auto), each ending at the first of `stop_strings` (kept, as `sample_completions` keeps
    it). vLLM batches the prompts itself."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_dir, seed=seed, dtype=dtype or "auto")
    stops = {"stop": list(stop_strings), "include_stop_str_in_output": True} if stop_strings else {}
    params = SamplingParams(n=k, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, **stops)
    return [[o.text for o in out.outputs] for out in llm.generate(list(prompts), params)]


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
    desc: str = "sampling",
    stop_strings: Sequence[str] = (),
) -> list[list[str]]:
    """`k` sampled completions per prompt (plain transformers generation, left padding, the k samples of a prompt
    sharing one forward over it: `shared_prompt_batch`), in order; `desc` labels
    the progress bar (e.g. "held-out eval (before)"); each completion ends at the first of `stop_strings` (the
    task's, kept in the text), as in training (`eapo.trainer.generation.stop_criteria`)."""
    from eapo.trainer.generation import cut_text_at_stop, stop_criteria

    was_training = model.training
    model.eval()
    flat = [p for p in prompts for _ in range(k)]
    texts: list[str] = []
    tokenizer.padding_side = "left"
    try:
        with preserved_rng(seed):
            for start in tqdm(range(0, len(flat), batch_size), desc=desc, disable=not progress, leave=False):
                batch = shared_prompt_batch(model, tokenizer, flat[start : start + batch_size])
                out = model.generate(
                    **batch,
                    do_sample=True,
                    temperature=temperature,
                    top_k=0,
                    top_p=top_p,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    stopping_criteria=stop_criteria(tokenizer, tuple(stop_strings)),
                )
                decoded = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
                texts.extend(cut_text_at_stop(text, tuple(stop_strings)) for text in decoded)
    finally:
        model.train(was_training)
    return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]


def shared_prompt_batch(model: Any, tokenizer: Any, batch: Sequence[str]) -> dict[str, Any]:
    """`model.generate`'s inputs for `batch` (left-padded), each distinct prompt's tokens but its last run through
    the model once and its KV cache repeated for the rows that hold it, so that generation starts from the cache
    (the prompt's forward is most of the sampling's cost when k samples share it: 16 rows of one prompt cost one
    forward, not 16). Rows, padding and positions are those of the batch tokenized whole, so the samples are the
    same (tested); a batch of distinct prompts, or of one-token prompts, gets the plain tokenized batch."""
    unique = {prompt: i for i, prompt in enumerate(dict.fromkeys(batch))}
    enc = tokenizer(list(unique), return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device)
    rows = torch.tensor([unique[prompt] for prompt in batch], device=model.device)
    inputs = {"input_ids": ids[rows], "attention_mask": mask[rows]}
    if len(unique) == len(batch) or ids.shape[1] < 2:
        return inputs
    from eapo.trainer.generation import generating_module, generation_position_ids, takes_generation_positions

    # the positions generate gives the rows, where the model takes them (else it counts them from the cache)
    positions = {"position_ids": generation_position_ids(mask[:, :-1])} if takes_generation_positions(model) else {}
    # the cache's keyword: `cache` in recent transformers, `past_key_values` before
    forward = inspect.signature(generating_module(model).forward).parameters
    name = "cache" if "cache" in forward else "past_key_values"
    out = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], use_cache=True, **positions)
    cache = out[name]
    cache.reorder_cache(rows)
    return inputs | {name: cache}


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
