"""Entropies and `log pi_old` recorded during transformers generation (eapo.trainer.generation).

- the recorded values equal a forward pass over the same completions (float32, CPU);
- the three sources of the trainer (loss forward, TRL's log pi_old forward, generation) agree;
- EAPOTrainer runs no more model forwards outside `generate` than GRPOTrainer on the same config.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings

import pytest
import torch
from transformers import GenerationConfig, GenerationMixin
from trl import GRPOConfig, GRPOTrainer

from eapo import EAPOConfig, EAPOTrainer
from eapo.core.entropy import entropy_and_token_logprob
from eapo.trainer.generation import SamplingRecorder, record_sampling
from tiny import cpu_config_kwargs, forward_reference, tiny_model, tiny_tokenizer, train_tiny

warnings.filterwarnings("ignore")
TOKENIZER = tiny_tokenizer()
PAD, EOS = TOKENIZER.pad_token_id, TOKENIZER.eos_token_id


# ----- the math --------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.7])
@pytest.mark.parametrize("chunk_elements", [None, 7, 40])
def test_entropy_and_token_logprob_match_a_float64_reference(temperature, chunk_elements):
    gen = torch.Generator().manual_seed(int(temperature * 10) + (chunk_elements or 0))
    logits = torch.randn(9, 13, generator=gen) * 3.0
    logits[2, 5] = -math.inf  # a banned token: p = 0, no NaN
    tokens = torch.randint(0, 13, (9,), generator=gen)
    tokens[2] = 4
    before = logits.clone()
    entropy, logps = entropy_and_token_logprob(logits, tokens, temperature, chunk_elements=chunk_elements)
    log_p = torch.log_softmax(logits.double() / temperature, dim=-1)
    p = log_p.exp()
    ref_entropy = -(p * log_p.nan_to_num(neginf=0.0)).sum(-1)
    torch.testing.assert_close(entropy, ref_entropy.float(), atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(logps, log_p[torch.arange(9), tokens].float(), atol=1e-5, rtol=1e-6)
    assert torch.equal(logits, before) and entropy.dtype == logps.dtype == torch.float32


# ----- the recorder against a forward pass -----------------------------------------------------------


def _left_padded(prompts: list[str], group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each prompt `group` times (TRL's `num_generations` rows), left-padded as TRL pads them."""
    ids = [TOKENIZER(p, add_special_tokens=False)["input_ids"] for p in prompts for _ in range(group)]
    width = max(len(i) for i in ids)
    input_ids = torch.tensor([[PAD] * (width - len(i)) + i for i in ids])
    attention_mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    return input_ids, attention_mask


def _cut_at_eos(completion_ids: torch.Tensor) -> torch.Tensor:
    """TRL's completion mask: 1 up to and including the first EOS."""
    is_eos = completion_ids == EOS
    width = completion_ids.shape[1]
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], width, dtype=torch.long))
    return (torch.arange(width).unsqueeze(0) <= first.unsqueeze(1)).long()


@pytest.mark.parametrize(
    ("temperature", "top_p", "top_k"),
    [(1.0, 1.0, 0), (1.0, 0.8, 0), (0.6, 1.0, 0), (0.6, 0.9, 5), (1.7, 1.0, 0), (1.7, 0.7, 0)],
)
def test_recorded_entropies_equal_a_forward_over_the_completions(temperature, top_p, top_k):
    model = tiny_model(len(TOKENIZER), seed=1).eval()
    input_ids, attention_mask = _left_padded(["1+2=", "3*4-5=", "7=", "12+13+14=ab"], group=4)
    config = GenerationConfig(
        max_new_tokens=14,
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        pad_token_id=PAD,
        eos_token_id=EOS,
    )
    torch.manual_seed(0)
    with record_sampling(model, temperature) as recorder:
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    completion_ids = out[:, input_ids.shape[1] :]
    mask = _cut_at_eos(completion_ids)
    ended_at_eos = (completion_ids == EOS).any(1)
    assert ended_at_eos.any() and (~ended_at_eos).any(), "the case needs rows ending at EOS and at the limit"
    assert recorder.steps >= completion_ids.shape[1]
    assert recorder._logits is None and recorder._buffers == []  # no (B, V) kept
    assert all(h.shape == (16,) for h in recorder._entropy)

    entropy, logps = recorder.columns(completion_ids.shape[1])
    ref_entropy, ref_logps = forward_reference(model, input_ids, attention_mask, completion_ids, mask, temperature)
    valid = mask.bool()
    torch.testing.assert_close(entropy[valid], ref_entropy[valid].float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(logps[valid], ref_logps[valid].float(), atol=1e-5, rtol=0)
    # the sampling truncation does not enter: the recorded values are of the full tempered distribution
    assert (ref_entropy[valid] > 0.1).all()


def test_columns_cut_and_pad_to_trls_width():
    model = tiny_model(len(TOKENIZER)).eval()
    input_ids, attention_mask = _left_padded(["1+2="], group=3)
    config = GenerationConfig(max_new_tokens=5, do_sample=True, pad_token_id=PAD, eos_token_id=None)
    with record_sampling(model, 1.0) as recorder:
        model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    full, _ = recorder.columns(5)
    cut, _ = recorder.columns(3)
    padded, padded_logps = recorder.columns(8)
    assert recorder.steps == 5 and full.shape == (3, 5)
    assert torch.equal(cut, full[:, :3]) and torch.equal(padded[:, :5], full)
    assert (padded[:, 5:] == 0).all() and (padded_logps[:, 5:] == 0).all()


def test_recording_leaves_generation_and_the_model_unchanged():
    model = tiny_model(len(TOKENIZER)).eval()
    input_ids, attention_mask = _left_padded(["1+2=", "45="], group=2)
    config = GenerationConfig(max_new_tokens=8, do_sample=True, pad_token_id=PAD, eos_token_id=EOS)
    torch.manual_seed(3)
    plain = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    torch.manual_seed(3)
    with record_sampling(model, 1.0):
        recorded = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    assert torch.equal(plain, recorded)
    assert "generate" not in model.__dict__ and not model._forward_hooks


def test_recording_through_a_peft_model():
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(tiny_model(len(TOKENIZER)), peft.LoraConfig(r=2, target_modules=["q_proj"])).eval()
    input_ids, attention_mask = _left_padded(["1+2=", "3*4-5="], group=2)
    config = GenerationConfig(max_new_tokens=6, do_sample=True, temperature=0.8, pad_token_id=PAD, eos_token_id=EOS)
    with record_sampling(model, 0.8) as recorder:
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    completion_ids = out[:, input_ids.shape[1] :]
    mask = _cut_at_eos(completion_ids)
    entropy, logps = recorder.columns(completion_ids.shape[1])
    ref_entropy, ref_logps = forward_reference(model, input_ids, attention_mask, completion_ids, mask, 0.8)
    valid = mask.bool()
    torch.testing.assert_close(entropy[valid], ref_entropy[valid].float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(logps[valid], ref_logps[valid].float(), atol=1e-5, rtol=0)


def _step(recorder, input_ids: torch.Tensor, vocab: int = 5) -> None:
    """One decoding step as generate runs it: the forward hook sees the logits, then the criterion is called."""
    recorder._logits = torch.zeros(input_ids.shape[0], vocab)
    recorder(input_ids, None)


def test_mismatch_names_a_step_that_appended_several_tokens():
    recorder = SamplingRecorder(1.0)
    recorder.prompt_shape = (2, 3)
    _step(recorder, torch.zeros(2, 4, dtype=torch.long))
    _step(recorder, torch.zeros(2, 7, dtype=torch.long))  # assisted decoding: three tokens accepted at once
    assert "decoding step 2 gave input_ids of shape (2, 7)" in recorder.mismatch(torch.ones(2, 4))


def test_mismatch_names_missing_steps_and_rows():
    recorder = SamplingRecorder(1.0)
    recorder.prompt_shape = (2, 3)
    for width in (4, 5):
        _step(recorder, torch.zeros(2, width, dtype=torch.long))
    assert recorder.mismatch(torch.tensor([[1, 1, 0], [1, 0, 0]])) is None
    assert recorder.mismatch(torch.ones(2, 3)) == "2 decoding steps for a completion of 3 tokens"
    assert recorder.mismatch(torch.ones(3, 2)) == "generate had 2 input rows for 3 completions"


def test_beam_search_rows_are_caught():
    model = tiny_model(len(TOKENIZER)).eval()
    input_ids, attention_mask = _left_padded(["1+2="], group=2)
    config = GenerationConfig(max_new_tokens=4, num_beams=2, do_sample=False, pad_token_id=PAD, eos_token_id=None)
    with record_sampling(model, 1.0) as recorder:
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    assert "on the 2 prompt rows" in recorder.mismatch(torch.ones(out.shape[0], 4))


class CompletionSpy:
    """`digit_reward`, remembering the prompts and completion ids of its last call (one process: in order)."""

    __name__ = "completion_spy"

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list[float]:
        self.prompts, self.completion_ids = list(prompts), [list(ids) for ids in completion_ids]
        return [1.0 if c[:1].isdigit() else 0.0 for c in completions]


def test_beams_fall_back_to_the_forward_with_one_warning(tmp_path, caplog):
    """Before (issue 28, point 4): beams through generation_kwargs recorded rows of other sequences (the beams) and
    paired their entropies with TRL's completions, silently. Now: one warning, and the forward's entropies."""
    spy = CompletionSpy()
    with caplog.at_level(logging.WARNING, logger="eapo.trainer.trainer"):
        trainer, _ = train_tiny(
            EAPOTrainer, EAPOConfig, tmp_path, reward=spy, method="eapo", dynamic_sampling=False,
            per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=2, optim="sgd", learning_rate=0.0,
            generation_kwargs={"num_beams": 2},
        )  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if "do not match the completions" in r.getMessage()]
    assert len(lines) == 1, lines
    ids = [TOKENIZER(p, add_special_tokens=False)["input_ids"] for p in spy.prompts]
    width, longest = max(map(len, ids)), max(map(len, spy.completion_ids))
    prompt_ids = torch.tensor([[PAD] * (width - len(i)) + i for i in ids])
    prompt_mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    completion_ids = torch.tensor([c + [PAD] * (longest - len(c)) for c in spy.completion_ids])
    mask = torch.tensor([[1] * len(c) + [0] * (longest - len(c)) for c in spy.completion_ids])
    ref_entropy, _ = forward_reference(trainer.model, prompt_ids, prompt_mask, completion_ids, mask, 1.0)
    batch, valid = trainer.last_rollout, mask.bool()
    torch.testing.assert_close(batch.entropy[:, :longest][valid], ref_entropy[valid].float(), atol=1e-5, rtol=0)


# ----- in the trainer ---------------------------------------------------------------------------------


SGD = dict(optim="sgd", max_grad_norm=1e9, learning_rate=0.1)


def test_the_three_entropy_sources_agree(tmp_path):
    """The same generation batch (same seed, same prompts) through the three free sources: the loss forward
    (one micro-batch), the recorder (two micro-batches) and TRL's log pi_old forward (num_iterations 2)."""
    base = tiny_model(len(TOKENIZER))
    runs = {}
    for name, overrides in {
        "loss_forward": dict(per_device_train_batch_size=8, gradient_accumulation_steps=1),
        "generation": dict(per_device_train_batch_size=4, gradient_accumulation_steps=2),
        "trl_forward": dict(per_device_train_batch_size=8, gradient_accumulation_steps=1, num_iterations=2),
    }.items():
        trainer, _ = train_tiny(
            EAPOTrainer,
            EAPOConfig,
            tmp_path / name,
            copy.deepcopy(base),
            method="eapo",
            dynamic_sampling=False,
            max_steps=1,
            max_completion_length=10,
            temperature=0.7,
            **overrides,
            **SGD,
        )
        runs[name] = trainer
    assert runs["loss_forward"]._defer_to_loss("train")
    assert not runs["generation"]._defer_to_loss("train") and not runs["generation"]._trl_computes_old_logps()
    assert runs["trl_forward"]._trl_computes_old_logps()
    ref = runs["loss_forward"].last_rollout
    valid = ref.mask.bool()
    assert (~valid).any() and valid.any()  # some rows end at EOS before the longest one
    for name in ("generation", "trl_forward"):
        batch = runs[name].last_rollout
        assert torch.equal(batch.mask, ref.mask), f"{name}: not the same completions"
        torch.testing.assert_close(batch.entropy[valid], ref.entropy[valid], atol=1e-5, rtol=0)
        torch.testing.assert_close(batch.token_logps[valid], ref.token_logps[valid], atol=1e-5, rtol=0)
        torch.testing.assert_close(batch.entropy_mean, ref.entropy_mean, atol=1e-5, rtol=0)
        torch.testing.assert_close(runs[name].last_advantages, runs["loss_forward"].last_advantages, atol=1e-5, rtol=0)


def _position_ids_seen(module: torch.nn.Module) -> tuple[list[torch.Tensor], object]:
    """A forward pre-hook on `module` that keeps the `position_ids` of each call (None when not passed)."""
    seen: list[torch.Tensor] = []

    def hook(mod, args, kwargs):
        seen.append(kwargs.get("position_ids"))

    return seen, module.register_forward_pre_hook(hook, with_kwargs=True)


def test_the_loss_forward_numbers_positions_as_generate(tmp_path):
    """Before (issue 28, point 2): TRL's forward passed no position ids, so left-padded rows were numbered by column
    while generate numbered them from the first prompt token; in bf16 that changes the entropies."""
    from eapo import EAPOConfig, EAPOTrainer
    from tiny import digit_reward, tiny_dataset

    model = tiny_model(len(TOKENIZER))
    args = EAPOConfig(**cpu_config_kwargs(tmp_path), method="eapo", dynamic_sampling=False)
    trainer = EAPOTrainer(model=model, reward_funcs=digit_reward, args=args, train_dataset=tiny_dataset(),
                          processing_class=TOKENIZER)  # fmt: skip
    prompt_ids, prompt_mask = _left_padded(["1+2=", "3*4-5=", "7="], group=2)
    config = GenerationConfig(max_new_tokens=6, do_sample=True, pad_token_id=PAD, eos_token_id=EOS)
    seen, handle = _position_ids_seen(model.model)
    with torch.no_grad():
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=config)
    generated = torch.cat(seen, dim=1)  # (B, P + N - 1): the prefill, then one column per step
    completion_ids = out[:, prompt_ids.shape[1] :]
    full_mask = torch.cat([prompt_mask, _cut_at_eos(completion_ids)], dim=1)
    seen.clear()
    with torch.no_grad():
        trainer._get_per_token_logps_and_entropies(model, out, full_mask, completion_ids.shape[1])
    handle.remove()
    (forward,) = seen
    assert forward is not None, "the loss forward passed no position ids"
    width = generated.shape[1]
    valid = full_mask[:, :width].bool()
    assert torch.equal(forward[:, :width][valid], generated[valid])
    assert (prompt_mask == 0).any()  # the case needs left padding


class ForwardCounter:
    """Counts forwards of a model that run outside `generate` (forward pre-hook + a depth counter)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.depth = 0
        self.outside = 0
        original = GenerationMixin.generate

        def generate(model, *args, **kwargs):
            self.depth += 1
            try:
                return original(model, *args, **kwargs)
            finally:
                self.depth -= 1

        monkeypatch.setattr(GenerationMixin, "generate", generate)

    def hook(self, module, args) -> None:
        self.outside += self.depth == 0


# GRPOConfig fields a method's preset sets: the GRPO run copies them, so both run the same config.
PRESET_FIELDS = ("loss_type", "scale_rewards", "epsilon", "epsilon_high", "entropy_coef", "top_entropy_quantile")


def _forwards_outside_generate(trainer_cls, config_cls, method, tmp_path, monkeypatch, **overrides) -> int:
    counter = ForwardCounter(monkeypatch)
    model = tiny_model(len(TOKENIZER))
    model.register_forward_pre_hook(counter.hook)
    if config_cls is GRPOConfig:
        preset = EAPOConfig(**cpu_config_kwargs(tmp_path), method=method)
        overrides.update({k: getattr(preset, k) for k in PRESET_FIELDS})
    else:
        overrides["method"] = method
        overrides["dynamic_sampling"] = False  # more generation rounds would mean more of TRL's forwards
    train_tiny(trainer_cls, config_cls, tmp_path, model, **overrides)
    return counter.outside


@pytest.mark.slow
@pytest.mark.parametrize("num_iterations", [1, 2])
@pytest.mark.parametrize("micro_batches", [1, 2])
@pytest.mark.parametrize("method", ["grpo", "eapo", "forking", "clip_cov"])
def test_no_more_forwards_outside_generation_than_grpo(method, micro_batches, num_iterations, tmp_path, monkeypatch):
    split = dict(
        per_device_train_batch_size=8 // micro_batches,
        gradient_accumulation_steps=micro_batches,
        num_iterations=num_iterations,
        max_steps=2,
    )
    grpo = _forwards_outside_generate(GRPOTrainer, GRPOConfig, method, tmp_path / "grpo", monkeypatch, **split)
    eapo = _forwards_outside_generate(EAPOTrainer, EAPOConfig, method, tmp_path / "eapo", monkeypatch, **split)
    assert grpo > 0
    assert eapo == grpo, f"EAPOTrainer ran {eapo} forwards outside generate, GRPOTrainer {grpo}"


def test_the_fallback_forward_is_logged_once(tmp_path, caplog):
    # A custom rollout_func: no transformers generation to record from, so one extra forward, said in one line.
    with caplog.at_level(logging.WARNING, logger="eapo.trainer.trainer"):
        train_tiny(
            EAPOTrainer,
            EAPOConfig,
            tmp_path,
            rollout=True,
            method="eapo",
            dynamic_sampling=False,
            per_device_train_batch_size=4,
            gradient_accumulation_steps=2,
            max_steps=2,
        )
    lines = [r.getMessage() for r in caplog.records if "one extra no-grad forward" in r.getMessage()]
    assert len(lines) == 1 and "rollout_func" in lines[0]


# ----- stop strings ---------------------------------------------------------------------------------------


def test_stop_strings_end_completions_at_the_stop_and_leave_no_padding_in_them(tmp_path):
    """A task's stop strings end each completion at the token that completes one (kept); the tiny tokenizer pads
    with a token that is not EOS (as Gemma's), and TRL cuts rows at EOS only: without the cut the padding after
    a stopped row would be trained as completion tokens. The recorded entropies still pair with the tokens."""
    seen: list[list[int]] = []

    def recording_reward(completions, completion_ids, **kwargs) -> list[float]:
        seen.extend(list(ids) for ids in completion_ids)
        return [1.0 if c[:1].isdigit() else 0.0 for c in completions]

    args = EAPOConfig(**cpu_config_kwargs(tmp_path, method="eapo", max_steps=1, max_completion_length=12))
    from tiny import tiny_dataset

    trainer = EAPOTrainer(model=tiny_model(len(TOKENIZER)), reward_funcs=recording_reward, args=args,
                          train_dataset=tiny_dataset(), processing_class=TOKENIZER)  # fmt: skip
    trainer.stop_strings = ("a",)
    trainer.train()
    stop = TOKENIZER.convert_tokens_to_ids("a")
    assert len(seen) == args.per_device_train_batch_size
    stopped = [ids for ids in seen if stop in ids]
    assert stopped, "the random policy drew no stop token: pick another stop string"
    # generate padded these rows after the stop: without the cut they would go on to 12 tokens
    assert any(len(ids) < 12 and ids[-1] not in trainer.eos_token_ids for ids in stopped)
    for ids in seen:
        if stop in ids:  # cut right after the first stop token
            assert ids.index(stop) == len(ids) - 1
        else:  # no stop: EOS or the length limit, as without stop strings
            assert ids[-1] in trainer.eos_token_ids or len(ids) == 12
    batch = trainer.last_rollout
    assert batch.mask.sum(dim=1).tolist() == [len(ids) for ids in seen]
    assert trainer._recorder_problem is None  # the entropies came from generation, paired with these tokens


def test_cut_at_stop_keeps_the_shortest_prefix_holding_a_stop():
    from eapo.trainer.generation import cut_at_stop, cut_text_at_stop

    ids = TOKENIZER("12+a=ab", add_special_tokens=False)["input_ids"]  # one token a character
    assert cut_at_stop(ids, TOKENIZER, ("a",)) == ids[:4]
    assert cut_at_stop(ids, TOKENIZER, ("=", "+")) == ids[:3]  # the earliest of several
    assert cut_at_stop(ids, TOKENIZER, ("b",)) == ids
    assert cut_at_stop(ids, TOKENIZER, ("*",)) == ids and cut_at_stop(ids, TOKENIZER, ()) == ids
    assert cut_at_stop([*ids[:2], PAD, EOS], TOKENIZER, ("a",)) == [*ids[:2], PAD, EOS]  # "<pad>" is no text
    assert cut_text_at_stop("x = 9.\nAnswer: 9\n\nQuestion: y", ("\n\n",)) == "x = 9.\nAnswer: 9\n\n"
    assert cut_text_at_stop("Answer: 9\nQ\n\n", ("\nQ", "\n\n")) == "Answer: 9\nQ"
    assert cut_text_at_stop("no stop", ("\n\n",)) == "no stop"
