"""One EAPO step on the tiny world, run by test_distributed.py as 1 process or under torchrun (gloo).

Writes `OUT/result.pt` (rank 0): group statistics, shaped advantages, quadrant labels, the logged loss
and the parameter change of the step.
"""

from __future__ import annotations

import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for tiny.py
from eapo import EAPOConfig, EAPOTrainer  # noqa: E402
from tiny import train_tiny  # noqa: E402

warnings.filterwarnings("ignore")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def main(out_dir: str, method: str) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    trainer, delta = train_tiny(
        EAPOTrainer,
        EAPOConfig,
        out_dir,
        rollout=True,
        method=method,
        dynamic_sampling=False,
        max_steps=1,
        per_device_train_batch_size=12 // world,  # 3 groups of 4: one straddles the 2 processes
        optim="sgd",
        max_grad_norm=1e9,
        learning_rate=0.1,
    )
    if trainer.accelerator.is_main_process:
        batch = trainer.last_rollout
        torch.save(
            {
                "world": trainer.accelerator.num_processes,
                "entropy_mean": batch.entropy_mean,
                "entropy_std": batch.entropy_std,
                "labels": batch.labels,
                "advantages": trainer.last_advantages,
                "loss": trainer.state.log_history[0]["loss"],
                "delta": delta,
            },
            os.path.join(out_dir, "result.pt"),
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "eapo")
