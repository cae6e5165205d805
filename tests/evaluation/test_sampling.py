"""Sampling for evaluation: the k samples of a prompt share one forward over it (`shared_prompt_batch`), and the
samples are those of the batch generated whole, on the three cache layouts the real models use (Qwen2 as the
tiny world, Llama as SmolLM2, Gemma-3 with its sliding-window layers) and a LoRA policy."""

from __future__ import annotations

import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

from eapo.evaluation import sampling
from eapo.evaluation.sampling import sample_completions, shared_prompt_batch
from tiny import tiny_model, tiny_tokenizer

PROMPTS = ["1+2=", "30+4=", "5*6=", "7-8, 9-0=", "2=", "1+2="]  # mixed lengths (left padding); a repeated prompt


def _model(kind: str, vocab: int) -> torch.nn.Module:
    if kind == "qwen2":
        return tiny_model(vocab, seed=3)
    torch.manual_seed(3)
    small = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, eos_token_id=1)  # fmt: skip
    if kind == "llama":
        return LlamaForCausalLM(LlamaConfig(**small)).eval()
    if kind == "llama-lora":  # a LoRA policy (eapo train --lora_r), in peft's wrapper
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        return get_peft_model(LlamaForCausalLM(LlamaConfig(**small)), lora).eval()
    # Gemma-3: a sliding-window layer (window 4, shorter than the prompts) before a global one
    layers = ["sliding_attention", "full_attention"]
    config = Gemma3TextConfig(**small, head_dim=8, sliding_window=4, layer_types=layers)
    return Gemma3ForCausalLM(config).eval()


def _plain(model, tokenizer, batch):
    """The batch tokenized whole, as sampling did before prompts shared their forward."""
    enc = tokenizer(list(batch), return_tensors="pt", padding=True)
    return {key: value.to(model.device) for key, value in enc.items()}


@pytest.mark.parametrize("kind", ["qwen2", "llama", "gemma3", "llama-lora"])
@pytest.mark.parametrize("batch_size", [64, 10])  # every sample in one batch; batches that split a prompt's samples
def test_shared_prompts_sample_what_the_whole_batch_samples(kind, batch_size, monkeypatch):
    tokenizer = tiny_tokenizer()
    model = _model(kind, len(tokenizer))
    forwards = []
    base = model.get_base_model() if kind == "llama-lora" else model  # peft's generate runs the base model
    base.register_forward_pre_hook(lambda m, a, kwargs: forwards.append(kwargs["input_ids"].shape), with_kwargs=True)
    options = dict(k=8, max_new_tokens=6, seed=11, batch_size=batch_size, temperature=1.0)
    shared = sample_completions(model, tokenizer, PROMPTS, **options)
    shared_forwards = list(forwards)
    monkeypatch.setattr(sampling, "shared_prompt_batch", _plain)
    forwards.clear()
    plain = sample_completions(model, tokenizer, PROMPTS, **options)
    assert shared == plain and len({s for samples in shared for s in samples}) > 8  # the same, and not all alike
    # the prompt's forward: one row per distinct prompt of a batch, not one per sample (48 samples, 5 prompts)
    first = [shape for shape in shared_forwards if shape[1] > 1]
    if batch_size == 64:
        assert first == [(5, 8)] and forwards[0] == (48, 9)  # "7-8, 9-0=" is 9 tokens; its last goes with decoding
    else:
        # rows 0-9, 10-19, 20-29, 30-39 hold two prompts each, 40-47 the repeated first prompt alone
        assert [rows for rows, _ in first] == [2, 2, 2, 2, 1] and forwards[0][0] == 10


def test_distinct_prompts_and_one_token_prompts_take_the_plain_batch():
    tokenizer = tiny_tokenizer()
    model = _model("llama", len(tokenizer))
    distinct = shared_prompt_batch(model, tokenizer, ["1+2=", "3="])
    assert set(distinct) == {"input_ids", "attention_mask"}
    assert torch.equal(distinct["input_ids"], _plain(model, tokenizer, ["1+2=", "3="])["input_ids"])
    one = shared_prompt_batch(model, tokenizer, ["7", "7", "7"])
    assert set(one) == {"input_ids", "attention_mask"} and one["input_ids"].shape == (3, 1)
    repeated = shared_prompt_batch(model, tokenizer, ["3=", "1+2=", "3="])
    assert torch.equal(repeated["input_ids"], _plain(model, tokenizer, ["3=", "1+2=", "3="])["input_ids"])
    cache = next(v for key, v in repeated.items() if key not in ("input_ids", "attention_mask"))
    assert cache.get_seq_length() == 3  # the prompt less its last token, for each of the three rows
