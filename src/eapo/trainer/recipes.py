"""How the paper's batch sizes map onto TRL's `GRPOConfig`, and the shipped recipes (`recipes/*.yaml`).

The paper (verl terms) counts prompts: a *batch* of P prompts is rolled out with G samples each, then
the policy takes P / M optimizer steps on *mini-batches* of M prompts; a training "step" is one batch.
TRL counts completions, per process:

- `generation_batch_size` = completions generated at once = P * G (prompts per generation: P);
- completions per optimizer step = `per_device_train_batch_size * num_processes *
  gradient_accumulation_steps` = M * G;
- optimizer steps per generation = P / M, and TRL's `steps_per_generation` (micro-batches per
  generation) = P * G / (per_device_train_batch_size * num_processes);
- `max_steps` counts optimizer steps: the paper's S steps are S * P / M of them.

Qwen2.5-Math-7B (P=512, M=32, G=8, 220 steps) on 8 GPUs with 8 completions per device and micro-batch:
`generation_batch_size=4096`, `gradient_accumulation_steps=4` (8 * 8 * 4 = 256 = 32 * 8), 16 optimizer
steps per generation, `max_steps=3520`. DeepScaleR-1.5B (P=64, M=32, G=16, 900 steps) on 8 GPUs with 4
per device: `generation_batch_size=1024`, `gradient_accumulation_steps=16` (4 * 8 * 16 = 512 = 32 * 16),
2 optimizer steps per generation, `max_steps=1800`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

# The shipped recipes live next to the package in a source checkout (`recipes/`).
RECIPES_DIR = Path(str(files("eapo"))).parents[1] / "recipes"


@dataclass(frozen=True)
class BatchLayout:
    """The batch arithmetic of a GRPOConfig on `num_processes` processes (all counts exact)."""

    num_processes: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    generation_batch_size: int
    num_generations: int

    @property
    def completions_per_step(self) -> int:
        """Completions in one optimizer step (the paper's mini-batch times G)."""
        return self.per_device_train_batch_size * self.num_processes * self.gradient_accumulation_steps

    @property
    def prompts_per_step(self) -> int:
        return self.completions_per_step // self.num_generations

    @property
    def prompts_per_generation(self) -> int:
        """Prompts rolled out at once (the paper's batch)."""
        return self.generation_batch_size // self.num_generations

    @property
    def steps_per_generation(self) -> int:
        """Optimizer steps taken on one generation batch (the paper's batch / mini-batch)."""
        return self.generation_batch_size // self.completions_per_step

    @property
    def micro_steps_per_generation(self) -> int:
        """TRL's `steps_per_generation`: per-device micro-batches in one generation batch."""
        return self.generation_batch_size // (self.per_device_train_batch_size * self.num_processes)


def batch_layout(config: Any, num_processes: int) -> BatchLayout:
    """The layout of `config` (an EAPOConfig/GRPOConfig) run on `num_processes` processes.

    Raises ValueError when the numbers do not divide exactly (groups or optimizer steps would be split).
    """
    layout = BatchLayout(
        num_processes=num_processes,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        generation_batch_size=config.generation_batch_size,
        num_generations=config.num_generations,
    )
    step = layout.completions_per_step
    if layout.generation_batch_size % step or step % layout.num_generations:
        raise ValueError(
            f"on {num_processes} processes an optimizer step holds {step} completions: it must divide "
            f"generation_batch_size ({layout.generation_batch_size}) and be a multiple of num_generations "
            f"({layout.num_generations}); adjust gradient_accumulation_steps or per_device_train_batch_size"
        )
    return layout


def paper_batch_fields(
    batch_prompts: int, mini_batch_prompts: int, group: int, steps: int, num_processes: int, per_device: int
) -> dict[str, int]:
    """GRPOConfig fields reproducing the paper's (batch, mini-batch, G, steps) on `num_processes` devices
    with `per_device` completions per micro-batch (see the module docstring)."""
    per_step = mini_batch_prompts * group
    if batch_prompts % mini_batch_prompts or per_step % (per_device * num_processes):
        raise ValueError(
            f"mini-batch of {per_step} completions cannot be split into {num_processes} x {per_device}-completion "
            "micro-batches: change per_device"
        )
    return {
        "num_generations": group,
        "generation_batch_size": batch_prompts * group,
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": per_step // (per_device * num_processes),
        "max_steps": steps * (batch_prompts // mini_batch_prompts),
    }


def recipe_path(name: str) -> Path:
    """`recipes/<name>.yaml` of a source checkout."""
    return RECIPES_DIR / f"{name}.yaml"


# ----- CPU recipes for the real models `eapo model` fetches ------------------------------------------------


@dataclass(frozen=True)
class CpuRecipe:
    """A shipped recipe measured to learn on a 2-core CPU (docs/benchmarks.md), for the model `eapo model NAME`
    makes; recognised by its architecture (config.json's model_type, hidden_size, num_hidden_layers, vocab_size)."""

    file: str
    model: str
    architecture: tuple[str, int, int, int]


CPU_RECIPES = (
    CpuRecipe("smollm2-wordproblems.yaml", "smollm2", ("llama", 576, 30, 49152)),
    CpuRecipe("gemma3-wordproblems.yaml", "gemma3-270m", ("gemma3_text", 640, 18, 262144)),
)


def cpu_recipe_for(model_dir: str | Path | None) -> CpuRecipe | None:
    """The CPU recipe for the model in `model_dir` (None: not one of `CPU_RECIPES`' models, an unreadable
    config.json, or a recipe this checkout does not have)."""
    import json

    try:
        config = json.loads((Path(model_dir) / "config.json").read_text()) if model_dir else {}
        key = (config.get("model_type"), config.get("hidden_size"), config.get("num_hidden_layers"),
               config.get("vocab_size"))  # fmt: skip
    except (OSError, ValueError, AttributeError):
        return None
    found = next((r for r in CPU_RECIPES if r.architecture == key), None)
    return found if found is not None and (RECIPES_DIR / found.file).is_file() else None
