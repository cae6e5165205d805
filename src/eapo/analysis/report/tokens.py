"""Token view data: sampled groups of completions with each token's entropy, probability and quadrant.

The numbers are the ones the trainer computes, with the same library functions: the entropy `H` of the
sampling distribution (temperature applied) and the sampled token's probability, from one no-grad forward
over prompt and completion (`eapo.core.entropy.entropy_and_token_logprob`, as recorded during generation),
the completion mask up to and including the first EOS (TRL's), the reward of the task's verifier, and
quadrant labels from the advantage sign and `H` against the group mean entropy
(`eapo.core.quadrant_labels`). The advantage is the group-relative `A = r - mean_group(r)`; TRL's
scaling by the group std does not change its sign, so the quadrants are the trainer's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from eapo.core import Quadrant, quadrant_labels
from eapo.core.entropy import entropy_and_token_logprob
from eapo.evaluation.sampling import preserved_rng


@dataclass
class SampledCompletion:
    """One completion of the token view. Lists are aligned: one entry per completion token (EOS included)."""

    group: int
    prompt: str
    text: str
    tokens: list[str]
    entropy: list[float]
    prob: list[float]
    labels: list[str]
    reward: float
    advantage: float


_SENTENCEPIECE_BYTE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def readable_tokens(tokenizer: Any, ids: list[int]) -> list[str]:
    """Each token as the text it adds to the completion.

    Byte-level BPE (Llama-3, Qwen, SmolLM2): markers decoded (`Ġanswer` -> ` answer`, `Ċ` -> a newline), and a
    piece that is only part of a multi-byte character shown as its bytes (`<0xE2>`) rather than as a replacement
    character. SentencePiece (Gemma, Llama-2): `▁` shown as a space (also where a tokenizer drops it when decoding
    one piece alone), and a byte-fallback piece (`<0xF0>`, one byte of a character outside the vocabulary) shown
    as written, not as a replacement character.
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte <-> printable map

    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    out = []
    for token_id, raw in zip(ids, tokenizer.convert_ids_to_tokens(ids), strict=True):
        text = tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if raw and _SENTENCEPIECE_BYTE.fullmatch(raw):
            if "\ufffd" in text:  # a byte of a multi-byte character; an ASCII byte decodes as itself
                text = f"<0x{int(raw[3:5], 16):02X}>"
        elif raw and raw.startswith("\u2581") and not text.startswith(" "):
            text = raw.replace("\u2581", " ")
        elif "\ufffd" in text and raw and all(c in byte_of for c in raw):
            text = "".join(f"<0x{byte_of[c]:02X}>" for c in raw)
        out.append(text)
    return out


@torch.no_grad()
def _sample_group(
    model: Any, tokenizer: Any, prompt: str, group_size: int, temperature: float, max_new_tokens: int,
    stop_strings: tuple[str, ...] = (),
):  # fmt: skip
    """`(completion_ids (G, T), mask (G, T), entropy (G, T), token_logps (G, T))` for one prompt; a completion ends
    at its first EOS or the token completing one of `stop_strings`, as in training."""
    from eapo.trainer.generation import cut_at_stop, stop_criteria

    enc = tokenizer([prompt] * group_size, return_tensors="pt")
    # One prompt per batch: no left padding, so the forward below sees the positions generation saw.
    out = model.generate(
        **enc,
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        stopping_criteria=stop_criteria(tokenizer, stop_strings),
    )
    n_prompt = enc["input_ids"].shape[1]
    ids = out[:, n_prompt:]  # (G, T)
    is_eos = ids == tokenizer.eos_token_id
    first_eos = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full_like(ids[:, 0], ids.shape[1]))
    mask = (torch.arange(ids.shape[1]).unsqueeze(0) <= first_eos.unsqueeze(1)).long()  # (G, T), EOS included
    for row in range(ids.shape[0]) if stop_strings else ():
        n = int(mask[row].sum())
        mask[row, len(cut_at_stop(ids[row, :n].tolist(), tokenizer, stop_strings)) :] = 0
    logits = model(input_ids=out).logits[:, n_prompt - 1 : -1]  # (G, T, V): the logits that sampled ids
    entropy, logps = entropy_and_token_logprob(logits.flatten(0, 1), ids.flatten(), temperature)  # chunked
    return ids, mask, entropy.view(ids.shape), logps.view(ids.shape)


def _pad(rows: list[torch.Tensor], width: int, value: float) -> torch.Tensor:
    return torch.stack([torch.nn.functional.pad(r, (0, width - r.shape[-1]), value=value) for r in rows])


Scorer = Callable[[list[int], list[str]], list[float]]  # (group index per sample, completion texts) -> rewards


def sample_token_view(
    model: Any,
    tokenizer: Any,
    problems: list[Any],
    group_size: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 24,
    seed: int = 0,
    progress: bool = False,
) -> list[SampledCompletion]:
    """`group_size` seeded samples for each countdown problem, scored and labelled as the trainer does."""
    from eapo.tasks.countdown import format_prompt
    from eapo.tasks.rewards import countdown_reward

    def score(groups: list[int], texts: list[str]) -> list[float]:
        return countdown_reward(texts, [problems[g].numbers for g in groups], [problems[g].target for g in groups])

    prompts = [format_prompt(p) for p in problems]
    return sample_prompt_view(model, tokenizer, prompts, score, group_size, temperature, max_new_tokens, seed, progress)


def sample_prompt_view(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    score: Scorer,
    group_size: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 24,
    seed: int = 0,
    progress: bool = False,
    stop_strings: tuple[str, ...] = (),
) -> list[SampledCompletion]:
    """`group_size` seeded samples for each prompt text (already rendered: chat template applied), scored by
    `score(group_index_per_sample, completion_texts)` and labelled as the trainer does; completions end at the
    task's `stop_strings` as in training."""
    model.eval()
    with preserved_rng(seed):
        parts = [
            _sample_group(model, tokenizer, prompt, group_size, temperature, max_new_tokens, stop_strings)
            for prompt in tqdm(prompts, desc="token view: sampling", disable=not progress, leave=False)
        ]
    width = max(p[0].shape[1] for p in parts)
    ids = _pad([p[0] for p in parts], width, tokenizer.pad_token_id).flatten(0, 1)  # (N*G, T)
    mask = _pad([p[1] for p in parts], width, 0).flatten(0, 1)
    entropy = _pad([p[2] for p in parts], width, 0.0).flatten(0, 1)
    logps = _pad([p[3] for p in parts], width, 0.0).flatten(0, 1)
    group_index = torch.arange(len(prompts)).repeat_interleave(group_size)  # (N*G,)
    texts = tokenizer.batch_decode(ids * mask, skip_special_tokens=True)
    rewards = torch.tensor([float(r) for r in score(group_index.tolist(), texts)])  # (N*G,)
    advantages = rewards - rewards.view(-1, group_size).mean(1).repeat_interleave(group_size)  # (N*G,)
    labels = quadrant_labels(advantages, entropy, mask, group_index)  # (N*G, T)
    out = []
    for row in range(ids.shape[0]):
        n = int(mask[row].sum())
        g = int(group_index[row])
        out.append(
            SampledCompletion(
                group=g,
                prompt=prompts[g],
                text=texts[row],
                tokens=readable_tokens(tokenizer, ids[row, :n].tolist()),
                entropy=entropy[row, :n].tolist(),
                prob=[math.exp(v) for v in logps[row, :n].tolist()],
                labels=[Quadrant(v).name for v in labels[row, :n].tolist()],
                reward=float(rewards[row]),
                advantage=float(advantages[row]),
            )
        )
    return out


def pick_groups(samples: list[SampledCompletion], show: int) -> list[int]:
    """Up to `show` group ids for display: mixed groups first (some completions right, some wrong, so the
    quadrants are non-empty), then the others, each in sampling order."""
    rewards: dict[int, set[bool]] = {}
    for sample in samples:
        rewards.setdefault(sample.group, set()).add(sample.reward > 0)
    mixed = [g for g, seen in rewards.items() if len(seen) == 2]
    return (mixed + [g for g in rewards if g not in mixed])[:show]
