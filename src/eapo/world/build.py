"""Tokenizer and model of the tiny world, as standard Hugging Face objects.

The tokenizer is character-level over the countdown alphabet and saves as a `PreTrainedTokenizerFast`;
the model is a small `Qwen2ForCausalLM`. Both load with `AutoTokenizer` / `AutoModelForCausalLM` like
any real checkpoint, so the tiny world exercises exactly the code path of a real model.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

# Everything a countdown prompt ("3,5,7>22:") or solution ("3*5=15,15+7=22") can contain.
CHARS = "0123456789+-*/=,>:"
PAD, EOS = "<pad>", "<eos>"
BASE_MODEL_DIR = Path(str(files("eapo.world") / "base"))


def build_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character; unknown characters map to <pad> (they never occur in valid text)."""
    vocab = {PAD: 0, EOS: 1, **{ch: i + 2 for i, ch in enumerate(CHARS)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()  # decode to "3*5=15", not "3 * 5 = 1 5"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=PAD)
    tokenizer.padding_side = "left"
    return tokenizer


def build_model(
    tokenizer: PreTrainedTokenizerFast,
    seed: int = 0,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 384,
    max_positions: int = 64,
) -> Qwen2ForCausalLM:
    """A randomly initialised small Qwen2 causal LM (about 0.8M parameters with the defaults)."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return Qwen2ForCausalLM(config)


def load_base(path: str | Path | None = None):
    """The shipped warm-started policy (or the checkpoint at `path`): `(model, tokenizer)`."""
    path = Path(path) if path is not None else BASE_MODEL_DIR
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"no model checkpoint at {path}: run `eapo warmstart --output_dir {path}` or pass a model folder"
        )
    # Safetensors only (pickled weights can run code) and never the folder's own Python code.
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
    return model, tokenizer
