"""Token entropies and `log pi_old` recorded during transformers generation, from the logits it computes.

EAPO needs, for every sampled completion token `o_t`, the entropy `H_t` of the sampling distribution and
`log pi_old(o_t)`. Generation already computes the logits of every decoding step; `record_sampling` reads
them there, so no forward is added after generation.

Which distribution, exactly: `softmax(logits / T)` over the full vocabulary, where `logits` is the model's
own output at the step (`outputs.logits[:, -1]`, before any logits processor) and `T` the trainer's
`temperature`. That is method.md's "sampling distribution" (section 2: after the temperature, full
vocabulary) and what TRL's `log pi_old` / loss forward computes (its fused LM head divides the logits by
`temperature` and applies no processor), so all of EAPO's entropy sources compute the same distribution (the same
numbers to 1e-5 in float32; in bf16 within the bound of docs/method.md section 2, see "Position ids" below):
- not truncated: top-k, top-p and min-p shape which token is drawn, but the entropy is of the untruncated
  tempered distribution, as in the loss forward;
- no other processor: repetition penalty, suppressed tokens and the like are not applied either (they are
  not in TRL's `log pi_old`). transformers runs the processors and then the warpers (temperature, top-k,
  top-p) inside `generate`; reading the logits at the model's output avoids depending on that order.

How: for the duration of one `generate` call, a forward hook on the generating model keeps a reference to
the last position's logits (a view, no copy), and a `StoppingCriteria` (`SamplingRecorder`, which never
stops anything) is added to `generate`'s criteria. transformers calls the criteria once per decoding
step, after the token is drawn and appended to `input_ids`, so at that point the recorder has the logits
and the sampled token of every row and stores two `(B,)` float32 vectors: `H_t` and `log p(o_t)`.

Memory: nothing of size `(B, T, V)` or `(B, V)` is kept across steps. The logits reference is dropped in
the same decoding step (transformers keeps that step's outputs alive until then anyway); the computation
runs in row chunks of at most `core.entropy` chunk size, in two float32 buffers (at most 4 MiB each on a CPU)
allocated once per `generate` call and reused at every step: allocating them anew each step fragmented the
CPU heap, and the resident memory of a 150k-vocabulary generation grew by up to 3x the plain call's
(`benchmarks/generation_memory.py`).

Alignment with TRL's completion tensors: row `b` of `generate` is row `b` of TRL's batch (the prompts, `G`
copies each, left-padded); step `t` is completion position `t`. TRL cuts each row after its first EOS and
right-pads; positions after EOS (where `generate` writes padding) are recorded too and then masked by
TRL's `completion_mask`. `generate` may run a few steps past the last EOS (deferred stop checks) and TRL
may pad to a multiple: `SamplingRecorder.columns(width)` cuts or zero-pads to TRL's width. That alignment
holds only when every decoding step appends one token to each of generate's input rows; assisted or
prompt-lookup decoding (several tokens per step) and beam search (more rows, reordered) passed through
`generation_kwargs` break it. `SamplingRecorder.mismatch` checks each step's `input_ids` against the
prompt and the step count against TRL's completion lengths, and the trainer then falls back to one no-grad
forward (one warning) instead of pairing entropies with the wrong tokens.

Position ids: `generate` numbers each row's tokens from its first unpadded one (`attention_mask.cumsum - 1`),
while a plain forward over a left-padded batch numbers columns. With rotary embeddings the two agree
exactly in real arithmetic, not in bf16 (each absolute position rounds differently), so the trainer gives
its forwards `generate`'s numbering (`generation_position_ids`, `GenerationPositions`). What remains
between the recorder and the loss forward in bf16 is the difference between decoding one token at a
time from a KV cache and one forward over the whole sequence (docs/method.md section 2 gives the bound).

Not covered (the trainer falls back to one no-grad forward, see `EAPOTrainer`): vLLM and transformers'
continuous batching (the logits never reach Python), custom `rollout_func`, and tool-calling loops
(completions stitched from several `generate` calls and tool output).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from eapo.core.entropy import entropy_and_token_logprob


class SamplingRecorder(StoppingCriteria):
    """Records `H_t` and `log p(o_t)` of every row at every decoding step; never stops generation.

    Used through `record_sampling`, which feeds it the logits (`capture_logits`, a forward hook) and adds it
    to `generate`'s stopping criteria (`__call__`, once per step, after the token is appended).
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self.prompt_shape: tuple[int, int] | None = None  # (rows, width) of generate's input_ids
        self._problem: str | None = None  # the first step that did not append one token to each prompt row
        self._logits: torch.Tensor | None = None  # (B, V) view of the last forward's logits, this step only
        self._entropy: list[torch.Tensor] = []  # one (B,) per decoding step
        self._logps: list[torch.Tensor] = []
        self._buffers: list[torch.Tensor] = []  # the two chunk buffers, reused every step (freed on exit)

    def capture_logits(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        """Forward hook: keep the next-token logits of the forward that just ran (`(B, V)` view)."""
        logits = output.logits if hasattr(output, "logits") else output[0]
        self._logits = logits[:, -1]

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        logits, self._logits = self._logits, None
        if logits is None:
            raise RuntimeError("SamplingRecorder saw a decoding step without logits: use it through record_sampling")
        self._check_step(input_ids.shape)
        entropy, logps = entropy_and_token_logprob(logits, input_ids[:, -1], self.temperature, buffers=self._buffers)
        self._entropy.append(entropy)
        self._logps.append(logps)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def _check_step(self, shape: torch.Size) -> None:
        """Note the first step whose `input_ids` is not the prompt rows plus one token per step so far."""
        if self._problem is not None or self.prompt_shape is None:
            return
        rows, width = self.prompt_shape
        expected = (rows, width + self.steps + 1)
        if tuple(shape) != expected:
            self._problem = (
                f"decoding step {self.steps + 1} gave input_ids of shape {tuple(shape)} where one token per step "
                f"on the {rows} prompt rows gives {expected}"
            )

    def mismatch(self, completion_mask: torch.Tensor) -> str | None:
        """Why the recorded steps are not the columns of TRL's completions, or None when they are.

        Args:
            completion_mask: `(B, T)` TRL's completion mask; row `b` has `completion_mask[b].sum()` tokens.
        """
        if self._problem is not None:
            return self._problem
        rows = completion_mask.shape[0]
        if self.prompt_shape is not None and self.prompt_shape[0] != rows:
            return f"generate had {self.prompt_shape[0]} input rows for {rows} completions"
        longest = int(completion_mask.sum(dim=1).max().item()) if rows else 0
        if self.steps < longest:
            return f"{self.steps} decoding steps for a completion of {longest} tokens"
        return None

    @property
    def steps(self) -> int:
        """Decoding steps recorded so far."""
        return len(self._entropy)

    def columns(self, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`(H, log_p)`, each `(B, width)` float32: step `t` in column `t`, cut or right-padded with 0."""
        if not self._entropy:
            raise RuntimeError("SamplingRecorder recorded no decoding step")
        out = []
        for values in (self._entropy, self._logps):
            t = torch.stack(values[:width], dim=1)  # (B, min(steps, width))
            out.append(torch.nn.functional.pad(t, (0, width - t.shape[1])))
        return out[0], out[1]


def generating_module(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model whose `generate` and forward run when `model.generate` is called (a PEFT
    model's base model; the model itself otherwise)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


@contextmanager
def record_sampling(model: torch.nn.Module, temperature: float) -> Iterator[SamplingRecorder]:
    """Within the block, every `model.generate(...)` call records each step's `H_t` and `log p(o_t)`.

    Args:
        model: the model `generate` is called on (an unwrapped `PreTrainedModel` or PEFT model).
        temperature: `T` of the recorded distribution `softmax(logits / T)`.

    Yields:
        the `SamplingRecorder`; read it with `columns(width)` after `generate` returns.
    """
    module = generating_module(model)
    recorder = SamplingRecorder(temperature)

    def note_prompt(prompt: Any) -> None:
        if isinstance(prompt, torch.Tensor) and prompt.dim() == 2:
            recorder.prompt_shape = (prompt.shape[0], prompt.shape[1])

    handle = module.register_forward_hook(recorder.capture_logits)
    try:
        with _adding_criteria(module, StoppingCriteriaList([recorder]), note_prompt):
            yield recorder
    finally:
        handle.remove()
        recorder._logits = None
        recorder._buffers = []


@contextmanager
def _adding_criteria(
    module: torch.nn.Module, criteria: StoppingCriteriaList, on_call: Callable[[Any], None] | None = None
) -> Iterator[None]:
    """Within the block, `module.generate(...)` also stops rows by `criteria` (after the caller's own), and
    `on_call` sees each call's prompt ids first; the generate found on entry is put back on exit."""
    own = module.__dict__.get("generate")  # an instance attribute to restore, if something set one
    original = module.generate

    def generate(*args: Any, stopping_criteria: StoppingCriteriaList | None = None, **kwargs: Any) -> Any:
        if on_call is not None:
            on_call(kwargs.get("input_ids", args[0] if args else None))
        return original(*args, stopping_criteria=StoppingCriteriaList([*(stopping_criteria or []), *criteria]),
                        **kwargs)  # fmt: skip

    module.generate = generate
    try:
        yield
    finally:
        if own is None:
            del module.generate
        else:
            module.generate = own


def generation_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """The position ids `generate` gives a left-padded batch (transformers 5,
    `_prepare_position_ids_for_generation`, then +1 per decoding step): `(B, L)` long, each row counted from
    its first unpadded token, 0 on padding. Valid completion tokens get the same ids in a forward over
    `[prompt, completion]` with TRL's attention mask as during generation."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


def takes_generation_positions(model: torch.nn.Module) -> bool:
    """Whether `generate` passes position ids to this text model's forward (`model`: the unwrapped model or
    PEFT model). Encoder-decoder and multimodal models (rotary sections computed from the images) are left
    to their own numbering."""
    module = generating_module(model)
    config = getattr(module, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False) or config.get_text_config() is not config:
        return False
    return "position_ids" in inspect.signature(module.forward).parameters


class GenerationPositions:
    """`model`, called with `generate`'s position ids (`generation_position_ids` of its `attention_mask`)
    unless the caller passes its own; any attribute is the model's."""

    def __init__(self, model: torch.nn.Module) -> None:
        self._model = model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        mask = kwargs.get("attention_mask")
        if mask is not None and kwargs.get("position_ids") is None:
            kwargs["position_ids"] = generation_position_ids(mask)
        return self._model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


# ----- stop strings: completions that end at a text, not only at EOS ------------------------------------------
#
# A base model prompted with worked examples (`--prompt_format text`) writes its answer and then the next example
# ("Answer: 13" + "\n\nQuestion: ..."): it has no EOS to emit. A task's `stop_strings` end each completion at the
# first of them (kept in the completion, as vLLM's `include_stop_str_in_output`), so that the tokens after the
# answer are neither generated, scored nor trained. `StopOnText` stops each row in `generate` (the row is padded
# after it); `cut_at_stop` then cuts the token list there, because TRL cuts rows at EOS only and a tokenizer whose
# padding token is not EOS (Gemma) would leave the padding in the completion. (transformers' `StopStringCriteria`
# does the first part from the vocabulary alone, but fails on tokenizers without a decoder, as the tests' tiny one.)


class StopOnText(StoppingCriteria):
    """Ends a row of one `generate` call once the text it generated contains one of `stop_strings`: each step
    decodes the last few generated tokens of every row (as many as the longest stop string has bytes, plus one, so
    a stop completed by the newest token is always inside)."""

    def __init__(self, tokenizer: Any, stop_strings: tuple[str, ...]) -> None:
        if not stop_strings or not all(stop_strings):
            raise ValueError(f"StopOnText needs non-empty stop strings, got {stop_strings!r}")
        self.tokenizer, self.stop_strings = tokenizer, tuple(stop_strings)
        self.window = max(len(s.encode()) for s in self.stop_strings) + 1
        self.start: int | None = None  # the first generated column (the prompt's padded length)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if self.start is None or input_ids.shape[1] <= self.start:  # the first step of a generate call
            self.start = input_ids.shape[1] - 1
        tail = input_ids[:, max(self.start, input_ids.shape[1] - self.window) :]
        texts = self.tokenizer.batch_decode(tail, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop_strings) for t in texts], device=input_ids.device)


def stop_criteria(tokenizer: Any, stop_strings: tuple[str, ...] | list[str]) -> StoppingCriteriaList:
    """The stopping criteria that end a row of `generate` once its generated text contains one of `stop_strings`
    (none: an empty list). Make one per `generate` call."""
    return StoppingCriteriaList([StopOnText(tokenizer, tuple(stop_strings))] if stop_strings else [])


def cut_text_at_stop(text: str, stop_strings: tuple[str, ...] | list[str]) -> str:
    """`text` up to and including the earliest occurrence of any of `stop_strings` (unchanged without one)."""
    ends = [i + len(s) for s in stop_strings if s and (i := text.find(s)) >= 0]
    return text[: min(ends)] if ends else text


def cut_at_stop(ids: list[int], tokenizer: Any, stop_strings: tuple[str, ...] | list[str]) -> list[int]:
    """The shortest prefix of the token list `ids` whose decoded text contains one of `stop_strings` (the token
    that completes the stop string is kept); `ids` itself when its text contains none."""
    def holds_stop(prefix: list[int]) -> bool:  # special tokens (padding, EOS) are no text, as in `StopOnText`
        return any(s in tokenizer.decode(prefix, skip_special_tokens=True) for s in stop_strings)

    if not stop_strings or not holds_stop(ids):
        return ids
    lo, hi = 1, len(ids)  # a prefix's text grows with its length: the first prefix holding a stop, by bisection
    while lo < hi:
        mid = (lo + hi) // 2
        if holds_stop(ids[:mid]):
            hi = mid
        else:
            lo = mid + 1
    return ids[:lo]


@contextmanager
def stopping_at(model: torch.nn.Module, criteria: StoppingCriteriaList) -> Iterator[None]:
    """Within the block, every `model.generate(...)` call also stops rows by `criteria` (composes with
    `record_sampling`; nothing changes when `criteria` is empty)."""
    if not criteria:
        yield
        return
    with _adding_criteria(generating_module(model), criteria):
        yield
