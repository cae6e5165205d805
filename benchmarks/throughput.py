"""Generation and training throughput (tokens/s) of `eapo train` on the embedded tiny world.

Runs a short `eapo train` (tiny-world defaults, no checkpoints, no evaluation around it) and times,
per optimizer step, the generation + scoring phase (TRL's `_generate_and_score_completions`, which
with EAPO includes the method) and the whole step. Tokens are completion tokens: those sampled, and
those the loss forward/backward processes (the same tokens, once per step).

benchmarks/overhead.py gives the EAPO-vs-GRPO ratio; this script gives absolute figures:
    python benchmarks/throughput.py [--steps 30] [--method eapo] [--threads 2]
Prints figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings

import torch
import trl
from transformers.trainer_callback import PrinterCallback
from trl import GRPOTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--method", default="eapo")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)

    from eapo.cli.train import parse_args
    from eapo.tasks.countdown import countdown_dataset
    from eapo.tasks.rewards import countdown_reward
    from eapo.trainer import EAPOTrainer
    from eapo.world import load_base
    from eapo.world.problems import tiny_world_split

    generation_seconds: list[float] = []
    original = GRPOTrainer._generate_and_score_completions

    def timed(self, inputs):
        start = time.perf_counter()
        out = original(self, inputs)
        generation_seconds.append(time.perf_counter() - start)
        return out

    with tempfile.TemporaryDirectory() as tmp:
        flags = ["--method", args.method, "--max_steps", str(args.steps), "--output_dir", tmp]
        flags += ["--save_strategy", "no", "--disable_tqdm", "true", "--dynamic_sampling", "false"]
        config, _ = parse_args(flags)
        model, tokenizer = load_base()
        trainer = EAPOTrainer(
            model=model,
            reward_funcs=countdown_reward,
            args=config,
            train_dataset=countdown_dataset(tiny_world_split()[0]),
            processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)
        GRPOTrainer._generate_and_score_completions = timed
        try:
            start = time.perf_counter()
            trainer.train()
            total = time.perf_counter() - start
        finally:
            GRPOTrainer._generate_and_score_completions = original
    logs = [x for x in trainer.state.log_history if "completions/mean_length" in x]
    rows = config.per_device_train_batch_size * config.steps_per_generation
    tokens = [x["completions/mean_length"] * rows for x in logs]
    gen = generation_seconds[1:]  # the first call includes warm-up
    steps = len(logs)
    print(f"machine: {platform.processor() or platform.machine()}, cpu_count {os.cpu_count()}, threads {args.threads}")
    print(f"versions: torch {torch.__version__}, trl {trl.__version__}")
    print(
        f"method {args.method} (dynamic sampling off), {steps} steps, {rows} completions/step, "
        f"{statistics.fmean(tokens):.0f} completion tokens/step"
    )
    print(
        f"generation + scoring: {statistics.median(gen):.3f} s/step median -> "
        f"{statistics.fmean(tokens) / statistics.median(gen):,.0f} sampled tokens/s"
    )
    end_to_end = sum(tokens) / total
    print(f"whole step (train() time / steps): {total / steps:.3f} s -> {end_to_end:,.0f} tokens/s end to end")
    training = total / steps - statistics.median(gen)
    print(
        f"loss forward/backward + optimizer (difference): {training:.3f} s/step -> "
        f"{statistics.fmean(tokens) / training:,.0f} trained tokens/s"
    )


if __name__ == "__main__":
    main()
