"""Two EAPO steps on the shipped tiny world (base policy, countdown, countdown_reward), run by
test_distributed_world.py as 1 process or under torchrun (gloo).

Completions are sampled from the policy itself, each with a generator seeded by (prompt, member of its
group), so the global batch is the same however it is split over processes. Writes `OUT/result.pt`
(rank 0): per step, the group statistics, shaped advantages and quadrant labels; the logged losses.
"""

from __future__ import annotations

import os
import sys
import warnings
import zlib

import torch
from transformers import TrainerCallback

from eapo import EAPOConfig, EAPOTrainer
from eapo.tasks.countdown import countdown_dataset
from eapo.tasks.rewards import countdown_reward
from eapo.world import load_base
from eapo.world.problems import MAX_COMPLETION_LENGTH, tiny_world_split

warnings.filterwarnings("ignore")
GROUP, PROMPTS = 4, 3  # 3 groups of 4 per step: with 2 processes one group straddles them


def seeded_rollout(tokenizer):
    def rollout(prompts, trainer):
        model = trainer.accelerator.unwrap_model(trainer.model)
        rank, local = trainer.accelerator.process_index, len(prompts)
        prompt_ids, completion_ids = [], []
        for j, text in enumerate(prompts):
            member = (rank * local + j) % GROUP
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            torch.manual_seed(zlib.crc32(text.encode()) * 31 + member)
            with torch.no_grad():
                out = model.generate(
                    torch.tensor([ids]), do_sample=True, temperature=1.0, top_k=0, max_new_tokens=MAX_COMPLETION_LENGTH,
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                )  # fmt: skip
            prompt_ids.append(ids)
            completion_ids.append(out[0, len(ids) :].tolist())
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    return rollout


class KeepRollouts(TrainerCallback):
    def __init__(self):
        self.trainer, self.steps = None, []

    def on_step_end(self, args, state, control, **kwargs):
        batch = self.trainer.last_rollout
        self.steps.append(
            {
                "entropy_mean": batch.entropy_mean.clone(),
                "entropy_std": batch.entropy_std.clone(),
                "labels": batch.labels.clone(),
                "rewards": batch.rewards.clone(),
                "advantages": self.trainer.last_advantages.clone(),
            }
        )


def main(out_dir: str) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    model, tokenizer = load_base()
    train, _ = tiny_world_split()
    args = EAPOConfig(
        output_dir=out_dir, use_cpu=True, bf16=False, report_to="none", save_strategy="no", seed=0,
        disable_tqdm=True, dataloader_num_workers=0, logging_steps=1, max_steps=2, method="eapo",
        num_generations=GROUP, per_device_train_batch_size=GROUP * PROMPTS // world,
        max_completion_length=MAX_COMPLETION_LENGTH, optim="sgd", learning_rate=0.05, max_grad_norm=1e9,
        dynamic_sampling=False, gradient_checkpointing=False,
    )  # fmt: skip
    keep = KeepRollouts()
    trainer = EAPOTrainer(
        model=model,
        reward_funcs=countdown_reward,
        args=args,
        train_dataset=countdown_dataset(train[:64]),
        processing_class=tokenizer,
        rollout_func=seeded_rollout(tokenizer),
        callbacks=[keep],
    )
    keep.trainer = trainer
    trainer.train()
    if trainer.accelerator.is_main_process:
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        torch.save({"world": trainer.accelerator.num_processes, "steps": keep.steps, "losses": losses},
                   os.path.join(out_dir, "result.pt"))  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    main(sys.argv[1])
