"""Token credit by branching rollouts (docs/method.md section 5, our extension).

For chosen positions `t` of sampled completions, the state is `s_t = (q, o_{<t})`. Its candidate tokens are
the policy's top-k tokens plus one "other" bucket (the remaining mass). From each candidate, `M`
continuations are sampled to the end of the completion budget and scored with the task's reward function;
the "other" bucket's `M` first tokens are drawn from `pi(. | s_t)` restricted to the non-top-k tokens and
renormalised, so its success rate is an unbiased estimate of `p(r | s_t, o_t not in top-k)`. The
`(k + 1) M` branches of many states go to `model.generate` together (left-padded chunks of
`batch_size` sequences). `eapo.core.credit.credit_with_interval` turns the counts into the credit
`I(o_t; r | s_t)` with a bootstrap interval, next to the entropy `H_{i,t}` (nats, same temperature).

Choices: rewards must be exactly 0 or 1 (a reward function returning anything else is an error, not
thresholded); sampling is plain temperature sampling (no top-p/top-k truncation: the credit is defined for
the policy `softmax(logits / T)`, the distribution whose entropy is `H`), so the checkpoint's own
`generation_config.json` (repetition_penalty, no_repeat_ngram_size, min_length, ...) is set aside; a
continuation gets the same completion budget as the sampled completion (`max_completion_length - t - 1`
tokens after the branch token); positions are the valid completion tokens, the EOS token included
(stopping is a choice too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from eapo.core.credit import CreditEstimate, credit_with_interval
from eapo.core.entropy import token_entropy
from eapo.evaluation.sampling import preserved_rng

# The bound compares a float32 entropy with a float64 credit: checked up to this rounding slack (nats).
BOUND_TOL = 1e-5


@dataclass
class RewardTask:
    """Prompts with a TRL reward function `f(prompts, completions, completion_ids, **columns) -> list[float]`.

    `columns` holds the per-prompt dataset columns the reward function needs (e.g. `numbers`, `target`).
    """

    prompts: list[str]
    reward_fn: Callable[..., list[float]]
    columns: dict[str, list[Any]] = field(default_factory=dict)

    def success(
        self, prompt_index: Sequence[int], completions: list[str], completion_ids: list[list[int]]
    ) -> list[bool]:
        """Whether each completion of `prompts[prompt_index[j]]` is rewarded (reward 1); rewards must be 0 or 1."""
        columns = {key: [values[i] for i in prompt_index] for key, values in self.columns.items()}
        prompts = [self.prompts[i] for i in prompt_index]
        rewards = self.reward_fn(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns)
        bad = [r for r in rewards if r not in (0, 1)]
        if bad:
            raise ValueError(f"credit needs a binary reward (0 or 1), got {bad[0]!r}: threshold the reward function")
        return [r == 1 for r in rewards]


@dataclass
class SampledCompletions:
    """Completions of a task's prompts: token ids (cut after the first EOS, which is kept), per-token entropy
    `H_{i,t}` and sampling distribution, and whether each completion is rewarded."""

    prompt_ids: list[list[int]]  # per prompt
    prompt_index: list[int]  # per completion, as are the fields below
    ids: list[list[int]]
    entropy: list[torch.Tensor]  # (L_i,) nats
    probs: list[torch.Tensor]  # (L_i, V) float32, softmax(logits / T)
    correct: list[bool]


def _cut_at_eos(ids: Sequence[int], eos: int, budget: int) -> list[int]:
    ids = list(ids[:budget])
    return ids[: ids.index(eos) + 1] if eos in ids else ids


@contextmanager
def _plain_sampling(model: Any) -> Iterator[None]:
    """Hide the model's `generation_config` during `generate`: transformers fills every option a call
    leaves unset from it, so a checkpoint's repetition_penalty or no_repeat_ngram_size would reshape the
    distribution. An empty `GenerationConfig` leaves only what the call sets."""
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


@torch.no_grad()
def _generate(
    model: Any, tokenizer: Any, prefixes: list[list[int]], max_new_tokens: int, temperature: float
) -> list[list[int]]:
    """One left-padded `model.generate` call; the `max_new_tokens` ids after each prefix."""
    if max_new_tokens <= 0:
        return [[] for _ in prefixes]
    width = max(len(p) for p in prefixes)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prefixes], device=model.device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prefixes], device=model.device)
    with _plain_sampling(model):
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
        )
    return out[:, width:].tolist()


@torch.no_grad()
def next_token_probs(
    model: Any, prompt_ids: list[int], completions: list[list[int]], temperature: float
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Entropy `(L_i,)` and distribution `(L_i, V)` at every completion position, one forward per prompt."""
    width = max(len(c) for c in completions)
    ids = torch.tensor([prompt_ids + c + [0] * (width - len(c)) for c in completions], device=model.device)
    mask = torch.tensor([[1] * (len(prompt_ids) + len(c)) + [0] * (width - len(c)) for c in completions])
    logits = model(input_ids=ids, attention_mask=mask.to(model.device)).logits.float()
    logits = logits[:, len(prompt_ids) - 1 : len(prompt_ids) - 1 + width]  # position t predicts token t
    entropy = token_entropy(logits, temperature=temperature).cpu()
    probs = torch.softmax(logits / temperature, dim=-1).cpu()
    lengths = [len(c) for c in completions]
    return [entropy[i, :n] for i, n in enumerate(lengths)], [probs[i, :n] for i, n in enumerate(lengths)]


def sample_with_entropy(
    model: Any, tokenizer: Any, task: RewardTask, n: int, max_completion_length: int, temperature: float = 1.0
) -> SampledCompletions:
    """`n` completions per prompt (global torch RNG: seed it before), scored, with the entropy and distribution
    at every position (kept on the CPU: `L x V` floats per completion)."""
    out = SampledCompletions([], [], [], [], [], [])
    for i, prompt in enumerate(tqdm(task.prompts, desc="sampling", leave=False)):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        out.prompt_ids.append(prompt_ids)
        gen = _generate(model, tokenizer, [prompt_ids] * n, max_completion_length, temperature)
        ids = [_cut_at_eos(g, tokenizer.eos_token_id, max_completion_length) for g in gen]
        entropy, probs = next_token_probs(model, prompt_ids, ids, temperature)
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        out.prompt_index += [i] * n
        out.ids += ids
        out.entropy += entropy
        out.probs += probs
        out.correct += task.success([i] * n, texts, ids)
    return out


@dataclass
class Branching:
    """The buckets of one state: top-k token ids, bucket probabilities `(k + 1,)` (the last is "other") and
    the first tokens of the `(k + 1) M` branches (bucket-major)."""

    top_ids: list[int]
    pi: torch.Tensor
    first_tokens: list[int]
    bucket_of: list[int]


def branch_tokens(probs: torch.Tensor, top_k: int, m: int, generator: torch.Generator) -> Branching:
    """Top-k candidates of `probs` `(V,)` plus "other": `m` branches each; "other"'s first tokens are drawn from
    `probs` restricted to the non-top-k tokens, renormalised (no branch when that mass is 0)."""
    probs = probs.to(torch.float64)
    top = torch.topk(probs, top_k).indices
    rest = probs.clone()
    rest[top] = 0.0
    other_mass = rest.sum()
    pi = torch.cat([probs[top], other_mass.reshape(1)])
    pi = pi / pi.sum()
    first = [int(v) for v in top for _ in range(m)]
    bucket = [j for j in range(top_k) for _ in range(m)]
    if other_mass > 0:
        first += torch.multinomial(rest / other_mass, m, replacement=True, generator=generator).tolist()
        bucket += [top_k] * m
    return Branching(top.tolist(), pi, first, bucket)


def choose_positions(
    sample: SampledCompletions, per_prompt: int, per_completion: int, generator: torch.Generator
) -> list[tuple[int, int]]:
    """`(completion, position)` pairs: the first `per_prompt` completions of every prompt (0 = all), and in
    each `per_completion` positions drawn uniformly without replacement (0 = every position), in order."""
    seen: dict[int, int] = {}
    states = []
    for c, prompt in enumerate(sample.prompt_index):
        seen[prompt] = seen.get(prompt, 0) + 1
        if per_prompt and seen[prompt] > per_prompt:
            continue
        length = len(sample.ids[c])
        if per_completion and per_completion < length:
            chosen = sorted(torch.randperm(length, generator=generator)[:per_completion].tolist())
        else:
            chosen = list(range(length))
        states += [(c, t) for t in chosen]
    return states


def _chunks(sizes: list[int], batch_size: int) -> list[list[int]]:
    """Consecutive groups of indices whose sizes sum to at most `batch_size` (at least one index each)."""
    groups: list[list[int]] = [[]]
    total = 0
    for i, size in enumerate(sizes):
        if groups[-1] and total + size > batch_size:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += size
    return [g for g in groups if g]


def rollout_counts(
    model: Any,
    tokenizer: Any,
    task: RewardTask,
    sample: SampledCompletions,
    states: list[tuple[int, int]],
    branchings: list[Branching],
    max_completion_length: int,
    temperature: float = 1.0,
    batch_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewarded continuations and continuations per bucket, each `(S, k + 1)`: every branch of every state
    is continued to the end of its budget (global torch RNG) and scored."""
    k1 = len(branchings[0].pi) if branchings else 0
    successes = torch.zeros(len(states), k1)
    trials = torch.zeros(len(states), k1)
    eos = tokenizer.eos_token_id
    for group in tqdm(_chunks([len(b.first_tokens) for b in branchings], batch_size), desc="branching", leave=False):
        owners, buckets, prefixes, heads = [], [], [], []
        for s in group:
            c, t = states[s]
            head = sample.ids[c][:t]
            for first, bucket in zip(branchings[s].first_tokens, branchings[s].bucket_of, strict=True):
                owners.append(s)
                buckets.append(bucket)
                heads.append([*head, first])
                prefixes.append(sample.prompt_ids[sample.prompt_index[c]] + heads[-1])
        budget = max(max_completion_length - states[s][1] - 1 for s in group)
        tails = _generate(model, tokenizer, prefixes, budget, temperature)
        # a continuation longer than its own budget is cut: sampling is autoregressive, so the first n tokens
        # of a longer run are distributed as a run of n tokens
        ids = [_cut_at_eos(h + tail, eos, max_completion_length) for h, tail in zip(heads, tails, strict=True)]
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        prompt_index = [sample.prompt_index[states[s][0]] for s in owners]
        won = torch.tensor(task.success(prompt_index, texts, ids), dtype=torch.float32)
        rows, cols = torch.tensor(owners), torch.tensor(buckets)
        successes.index_put_((rows, cols), won, accumulate=True)
        trials.index_put_((rows, cols), torch.ones_like(won), accumulate=True)
    return successes, trials


def estimate_credit(
    model: Any,
    tokenizer: Any,
    task: RewardTask,
    sample: SampledCompletions,
    states: list[tuple[int, int]],
    top_k: int = 3,
    m: int = 32,
    max_completion_length: int = 24,
    temperature: float = 1.0,
    batch_size: int = 1024,
    confidence: float = 0.95,
    replicates: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One record per state `(completion, position)`: its entropy, credit (plug-in, bias-corrected and
    interval, nats) and buckets. `sample` must come from the same model at the same `temperature`."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    try:
        with preserved_rng(seed):
            branchings = [branch_tokens(sample.probs[c][t], top_k, m, generator) for c, t in states]
            successes, trials = rollout_counts(
                model, tokenizer, task, sample, states, branchings, max_completion_length, temperature, batch_size
            )
    finally:
        model.train(was_training)
    pi = torch.stack([b.pi for b in branchings])  # (S, k + 1)
    est = credit_with_interval(pi, successes, trials, confidence=confidence, replicates=replicates, seed=seed)
    return [
        _record(tokenizer, sample, states[s], branchings[s], successes[s], trials[s], est, s)
        for s in range(len(states))
    ]


def _record(
    tokenizer: Any,
    sample: SampledCompletions,
    state: tuple[int, int],
    branching: Branching,
    successes: torch.Tensor,
    trials: torch.Tensor,
    est: CreditEstimate,
    s: int,
) -> dict[str, Any]:
    """The output row of state `s`; `buckets` lists `token:pi:successes/trials` per bucket."""
    c, t = state
    names = tokenizer.convert_ids_to_tokens(branching.top_ids) + ["other"]
    p_hat = (successes / trials.clamp(min=1)).tolist()
    entropy = float(sample.entropy[c][t])
    credit = float(est.credit[s])
    return {
        "problem": sample.prompt_index[c],
        "completion": c,
        "position": t,
        "token": tokenizer.convert_ids_to_tokens(sample.ids[c][t]),
        "correct": sample.correct[c],
        "entropy": entropy,
        "credit": credit,
        "credit_bc": float(est.credit_bc[s]),
        "ci_low": float(est.low[s]),
        "ci_high": float(est.high[s]),
        "within_bound": credit <= entropy + BOUND_TOL,
        "within_bound_ci": float(est.low[s]) <= entropy + BOUND_TOL,
        "p_state": float((branching.pi * torch.tensor(p_hat, dtype=torch.float64)).sum()),
        "buckets": " ".join(
            f"{name}:{pi:.3f}:{int(n_s)}/{int(n)}"
            for name, pi, n_s, n in zip(names, branching.pi.tolist(), successes.tolist(), trials.tolist(), strict=True)
        ),
    }
