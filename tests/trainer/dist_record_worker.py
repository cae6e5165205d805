"""One EAPO step with the generation batch split over 2 micro-batches, so the entropies are recorded during
generation (`eapo.trainer.generation`), run by test_distributed.py under torchrun (gloo, 2 processes).

Each process writes `OUT/rank<r>.pt`: its completions' recorded entropies and log-probs, the same values from a
float64 forward over its prompts + completions at the weights that sampled them, the global row ids of its
rows, the completion masks, and whether the fallback forward ran; rank 0 adds the gathered `RolloutBatch`.
"""

from __future__ import annotations

import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for tiny.py
from eapo import EAPOConfig, EAPOTrainer  # noqa: E402
from tiny import forward_reference, train_tiny  # noqa: E402

warnings.filterwarnings("ignore")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


class CheckedTrainer(EAPOTrainer):
    """Keeps, for the first generation batch, the recorded values and a forward reference of this process."""

    checked: dict | None = None

    def _score(self, inputs):
        output = super()._score(inputs)
        if self.checked is None:
            keys = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")
            entropy, logps = forward_reference(self.model, *(output[k] for k in keys), self.temperature)
            self.checked = {
                "recorded_entropy": output["eapo_entropy"].clone(),
                "recorded_logps": output["eapo_logps"].clone(),
                "reference_entropy": entropy,
                "reference_logps": logps,
                "completion_mask": output["completion_mask"].clone(),
            }
        return output

    def _apply_method(self, inputs, entropy, logps, mode):
        if self.checked is not None and "rows" not in self.checked:
            self.checked["rows"] = inputs["eapo_row"].clone()
            self.checked["entropy_in_method"] = entropy.clone()
        super()._apply_method(inputs, entropy, logps, mode)


def main(out_dir: str) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    trainer, _ = train_tiny(
        CheckedTrainer,
        EAPOConfig,
        out_dir,
        method="eapo",
        dynamic_sampling=False,
        max_steps=1,
        per_device_train_batch_size=3,  # 2 x 2 x 3 = 12 rows, 3 groups of 4: one straddles the 2 processes
        gradient_accumulation_steps=2,  # 2 micro-batches per generation: the recording path
        max_completion_length=10,
    )
    rank = trainer.accelerator.process_index
    result = {
        "world": world,
        "fallback_forward": trainer._extra_forward_logged,
        "steps_per_generation": trainer.args.steps_per_generation,
        **trainer.checked,
    }
    if rank == 0:
        batch = trainer.last_rollout
        result |= {"batch_entropy": batch.entropy, "batch_mask": batch.mask, "group_index": batch.group_index,
                   "entropy_mean": batch.entropy_mean}  # fmt: skip
    torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
