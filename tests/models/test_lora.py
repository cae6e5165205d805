"""LoRA through peft: only adapter weights move, and EAPO's entropy capture works on a peft model."""

from __future__ import annotations

import torch

from eapo import EAPOConfig, EAPOTrainer
from eapo.cli.train import parse_args
from eapo.models.policy import peft_config
from tiny import cpu_config_kwargs, digit_reward, tiny_dataset, tiny_model, tiny_tokenizer


def test_lora_flags_parse_into_a_lora_config(tmp_path):
    _, run = parse_args(
        ["--output_dir", str(tmp_path), "--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8",
         "--lora_dropout", "0.0", "--lora_target_modules", "q_proj", "v_proj"]
    )  # fmt: skip
    config = peft_config(run)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 8, 0.0)
    assert set(config.target_modules) == {"q_proj", "v_proj"}
    _, run = parse_args(["--output_dir", str(tmp_path), "--lora_target_modules", "q_proj,k_proj"])
    assert peft_config(run) is None  # no --use_peft
    run.use_peft = True
    assert set(peft_config(run).target_modules) == {"q_proj", "k_proj"}  # comma form, as YAML lists arrive


def test_lora_trains_only_the_adapter(tmp_path):
    from peft import LoraConfig

    tokenizer = tiny_tokenizer()
    args = EAPOConfig(**cpu_config_kwargs(tmp_path, max_steps=3, learning_rate=5e-2, dynamic_sampling=False))
    trainer = EAPOTrainer(
        model=tiny_model(len(tokenizer)),
        reward_funcs=digit_reward,
        args=args,
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]),
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    adapters = [n for n in before if "lora_" in n]
    assert adapters and len(adapters) < len(before)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    for name, value in before.items():
        if "lora_" not in name:
            assert torch.equal(after[name].detach(), value), f"base weight {name} changed"
    assert any(not torch.equal(after[n].detach(), before[n]) for n in adapters)
    batch = trainer.last_rollout  # EAPO's entropies were captured through the peft wrapper
    assert batch is not None and batch.entropy[batch.mask.bool()].gt(0).all()
    assert trainer.last_advantages.abs().sum() > 0


def test_eapo_train_with_lora_saves_an_adapter_that_loads_merged(tmp_path, monkeypatch):
    from eapo.cli.train import main as train_main
    from eapo.models.policy import load_policy
    from tiny import ascii_model_dir, tiny_run

    base = ascii_model_dir(tmp_path / "base")
    out = tmp_path / "run"
    (tmp_path / "lora_rewards.py").write_text(
        "def starts_with_digit(completions, **kwargs):\n    return [float(c[:1].isdigit()) for c in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    flags = ["--task", "rg:basic_arithmetic", "--system_prompt", "none", "--reward", "lora_rewards:starts_with_digit",
             "--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj",
             "--learning_rate", "0.05", "--max_completion_length", "2", "--dynamic_sampling", "false"]  # fmt: skip
    assert train_main(tiny_run(base, out, *flags)) == 0
    assert (out / "model" / "adapter_config.json").exists() and not (out / "model" / "config.json").exists()
    merged, _ = load_policy(out / "model")
    original, _ = load_policy(base)
    changed = [n for n, p in merged.state_dict().items() if not torch.equal(p, original.state_dict()[n])]
    assert changed and all(("q_proj" in n or "v_proj" in n) for n in changed)
    assert set(merged.state_dict()) == set(original.state_dict())
    half, _ = load_policy(out / "model", dtype="bfloat16")  # the dtype reaches the adapter's base (it was dropped)
    assert merged.dtype == torch.float32 and half.dtype == torch.bfloat16
