"""Warm start of the tiny world: supervised fine-tuning (TRL's SFTTrainer) of a fresh tiny Qwen2 on
sampled valid countdown solutions, stopped early at an imperfect policy so that RL has room to work.

Each training problem contributes several of its valid solutions in different orders (which pair of
numbers first, which operand first): the policy sees real choices (forks) next to near-deterministic
arithmetic. Training stops at the first evaluation whose held-out pass@1 (temperature 1) reaches
`target_pass1`. Everything is seeded: the same seed gives the same checkpoint.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import TrainerCallback

from eapo.evaluation.sampling import evaluate
from eapo.tasks.countdown import (
    MAX_COMPLETION_LENGTH,
    N_HELDOUT,
    CountdownProblem,
    format_prompt,
    solutions,
    tiny_world_split,
)
from eapo.tasks.rewards import countdown_verifier
from eapo.world.build import build_model, build_tokenizer


def sft_dataset(problems: list[CountdownProblem], per_problem: int, seed: int) -> Dataset:
    """Prompt/completion pairs: up to `per_problem` distinct valid solutions of each problem, drawn at random."""
    rng = random.Random(seed)
    rows: dict[str, list[str]] = {"prompt": [], "completion": []}
    for problem in problems:
        options = solutions(problem)
        for text in rng.sample(options, min(per_problem, len(options))):
            rows["prompt"].append(format_prompt(problem))
            rows["completion"].append(text)
    return Dataset.from_dict(rows).shuffle(seed=seed)


def countdown_accuracy(
    model: Any, tokenizer: Any, problems: list[CountdownProblem], k: int, **sampling: Any
) -> dict[str, float]:
    """avg@k and pass@k of `model` on countdown `problems` (sampling options as in `evaluate`)."""
    prompts = [format_prompt(p) for p in problems]
    verify = countdown_verifier(problems)
    return evaluate(model, tokenizer, prompts, verify, k=k, max_new_tokens=MAX_COMPLETION_LENGTH, **sampling)


def heldout_pass1(model: Any, tokenizer: Any, problems: list[CountdownProblem], k: int = 4, seed: int = 0) -> float:
    """Held-out pass@1 at temperature 1, estimated as the mean accuracy of `k` samples per problem."""
    return countdown_accuracy(model, tokenizer, problems, k, seed=seed)[f"avg@{k}"]


class _StopAtTarget(TrainerCallback):
    def __init__(self, tokenizer: Any, problems: list[CountdownProblem], every: int, target: float, seed: int):
        self.tokenizer, self.problems, self.every, self.target, self.seed = tokenizer, problems, every, target, seed
        self.history: list[dict[str, float]] = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            score = heldout_pass1(model, self.tokenizer, self.problems, seed=self.seed)
            self.history.append({"step": state.global_step, "heldout_pass1": score})
            print(f"warmstart step {state.global_step}: held-out pass@1 {score:.3f} (target {self.target})", flush=True)
            if score >= self.target:  # never reset a stop the Trainer itself asked for (max_steps)
                control.should_training_stop = True
        return control


def warmstart(
    output_dir: str | Path,
    seed: int = 0,
    target_pass1: float = 0.3,
    max_steps: int = 3000,
    eval_every: int = 50,
    per_problem: int = 2,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    eval_problems: int = 100,
    final_eval_problems: int = N_HELDOUT,
) -> dict[str, Any]:
    """Train the base policy and save it (safetensors) with its tokenizer to `output_dir`, a new or empty folder
    (an InputError before anything is built otherwise)."""
    from trl import SFTConfig, SFTTrainer

    from eapo.pipeline.checks import check_output_folder

    check_output_folder(output_dir, "output_dir", empty=True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed=seed)
    train, heldout = tiny_world_split()
    stopper = _StopAtTarget(tokenizer, heldout[:eval_problems], eval_every, target_pass1, seed)
    args = SFTConfig(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        logging_steps=eval_every,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=seed,
        completion_only_loss=True,
        dataloader_num_workers=0,
        max_length=64,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=sft_dataset(train, per_problem, seed),
        processing_class=tokenizer,
        callbacks=[stopper],
    )
    trainer.train()
    final = heldout_pass1(model, tokenizer, heldout[:final_eval_problems], k=8, seed=seed + 1)
    summary = {"seed": seed, "steps": trainer.state.global_step, "heldout_pass1": final, "history": stopper.history}
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    (Path(output_dir) / "warmstart.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
