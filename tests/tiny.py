"""A tiny character-level world for tests: tokenizer, Qwen2 model and a toy task, built in memory."""

from __future__ import annotations

import string
from typing import Any

import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2ForCausalLM

from eapo.world import build_model

CHARS = string.digits + "+-*/=, ab"


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<pad>": 0, "<eos>": 1}
    for ch in CHARS:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def tiny_model(vocab_size: int, seed: int = 0) -> Qwen2ForCausalLM:
    """A 2-layer, 32-wide Qwen2 over the tiny tokenizer (vocabulary `vocab_size`)."""
    tokenizer = tiny_tokenizer()
    assert vocab_size == len(tokenizer), "tiny_model is built for tiny_tokenizer()"
    return build_model(
        tokenizer,
        seed=seed,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        max_positions=128,
    )


def tiny_dataset(n: int = 16) -> Dataset:
    prompts = [f"{i % 7}+{i % 5}=" for i in range(n)]
    return Dataset.from_dict({"prompt": prompts, "answer": [str(i % 7 + i % 5) for i in range(n)]})


def digit_reward(completions, answer, **kwargs) -> list[float]:
    """1 when the completion starts with a digit: about half of a random policy's samples, so most
    groups are mixed, and easy to learn."""
    return [1.0 if c[:1].isdigit() else 0.0 for c in completions]


def cpu_config_kwargs(tmp_path, **overrides) -> dict:
    kwargs = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to="none",
        num_generations=4,
        per_device_train_batch_size=8,
        max_completion_length=6,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        temperature=1.0,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    kwargs.update(overrides)
    return kwargs


def fixed_rollout(tokenizer: PreTrainedTokenizerFast, group: int, max_len: int = 6):
    """A `rollout_func` whose completions depend only on (prompt, member of its group), not on the
    process layout or the random state: the same global batch however it is split."""
    import zlib

    vocab = len(tokenizer)

    def rollout(prompts, trainer):
        rank, local = trainer.accelerator.process_index, len(prompts)
        prompt_ids, completion_ids = [], []
        for j, text in enumerate(prompts):
            member = (rank * local + j) % group
            gen = torch.Generator().manual_seed(zlib.crc32(text.encode()) * 31 + member)
            n = int(torch.randint(1, max_len + 1, (1,), generator=gen))
            ids = torch.randint(2, vocab, (n,), generator=gen).tolist()
            if n < max_len:
                ids.append(tokenizer.eos_token_id)
            prompt_ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
            completion_ids.append(ids)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    return rollout


def train_tiny(trainer_cls, config_cls, out_dir, model=None, rollout=False, reward=digit_reward, **overrides):
    """Train `model` (default: a fresh tiny model) on the tiny task; returns the trainer and the
    flattened parameter change."""
    tokenizer = tiny_tokenizer()
    model = model if model is not None else tiny_model(len(tokenizer))
    args = config_cls(**cpu_config_kwargs(out_dir, **overrides))
    extra = {"rollout_func": fixed_rollout(tokenizer, args.num_generations)} if rollout else {}
    trainer = trainer_cls(
        model=model,
        reward_funcs=reward,
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
        **extra,
    )
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    trainer.train()
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return trainer, after - before


def ascii_model_dir(path):
    """A tiny random Qwen2 over a character-level tokenizer of printable ASCII, saved to `path`."""
    vocab = {"<pad>": 0, "<eos>": 1, **{ch: i + 2 for i, ch in enumerate(string.printable)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    tokenizer.padding_side = "left"
    model = build_model(tokenizer, hidden_size=32, intermediate_size=64, num_layers=2, max_positions=512)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    # Next to a qwen2 config.json, AutoTokenizer reloads it as a Qwen2Tokenizer with one more special token:
    # size the embeddings for the tokenizer as it loads, so nothing resizes them later (peft does).
    model.resize_token_embeddings(len(AutoTokenizer.from_pretrained(path)))
    model.save_pretrained(path)
    return path


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for torchrun's rendezvous in the multi-process tests)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_error(argv: list[str], capsys: Any) -> str:
    """Run `eapo ARGV` in-process; it must exit with code 2 and one line on stderr, which is returned."""
    from eapo.cli import main

    capsys.readouterr()  # what earlier steps of the test printed is not part of the message
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit code {code}, stderr: {err}"
    assert len(err.splitlines()) == 1, f"not one line: {err}"
    return err


def tiny_run(model_dir, out, *extra):
    """`eapo train` flags of a 2-step run of a model folder on any task, with a tiny budget."""
    return [
        "--model_path", str(model_dir), "--output_dir", str(out), "--max_steps", "2", "--save_strategy", "no",
        "--per_device_train_batch_size", "8", "--num_generations", "4", "--max_completion_length", "8",
        "--eval_problems", "4", "--eval_k", "2", "--disable_tqdm", "true", "--train_size", "64", *extra,
    ]  # fmt: skip


def forward_reference(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature):
    """`H` and `log p` of every completion token under `softmax(logits / temperature)`, from one no-grad forward
    over prompt + completion, in float64: the reference for values recorded during generation."""
    full_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    full_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    with torch.no_grad():
        logits = model(input_ids=full_ids, attention_mask=full_mask).logits
    logits = logits[:, prompt_ids.shape[1] - 1 : -1].double() / temperature  # position t predicts completion t
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1), log_p.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


def parity_reward(completions, **kwargs) -> list[float]:
    """1 when the completion's first character has an even code point: about half of any random policy's samples
    (for `eapo train --reward tiny:parity_reward` on a model over printable ASCII)."""
    return [1.0 if c[:1] and ord(c[0]) % 2 == 0 else 0.0 for c in completions]
