"""The default options of `eapo train`: one set for the embedded tiny world, one for every other model.

`defaults_for(model_path)` picks the set: the tiny world's for no `--model_path` (the shipped policy) or
a checkpoint of the tiny world (a model folder whose config.json has the shipped policy's architecture,
or a LoRA adapter on one); the real-model set for any other model. Flags and a YAML config override
either set. `config.json` of a run records which set applied (`"defaults": "tiny-world" | "real-model"`).

Real-model defaults are TRL's `GRPOConfig` defaults (learning rate 1e-6, 8 completions per step in groups of
8, linear schedule, epsilon 0.2) except where a CPU user needs otherwise:

- `max_completion_length` 256 (TRL: 512): instruct models answer short questions in well under 256
  tokens, and on a CPU every generated token costs;
- `max_steps` 100 (TRL: 3 epochs) and `logging_steps` 1, so a default run ends and logs every step;
- activation (gradient) checkpointing off (TRL: on): it only saves memory, which a small model on a CPU has;
- evaluations sized to a small share of a default run: 16 held-out problems x 2 samples before and after
  training and 8 x 2 at steps 0, 50 and 100: together 112 sampled completions against the 800 that
  training generates (14%), and a smaller share of the time, since evaluation samples in batches of up to
  `eval_batch_size` sequences and does no backward pass. These small evaluations are a check, not a
  measurement: for a measured accuracy use `--eval_problems` / `--eval_k` or `eapo eval`. They are what a
  short run pays for anyway: on a CPU each batch samples until its longest completion ends (up to 256
  tokens), so a 2-step run is mostly evaluation (docs/benchmarks.md);
- evaluation batches of 16 sequences (`eval_batch_size`; the tiny world's 512 would make one batch, so its
  progress bar would give no ETA) and an end-of-run report that samples 2 held-out prompts
  (`report_problems`; 32 for the tiny world) for its token view and histograms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TINY_WORLD = "tiny-world"
REAL_MODEL = "real-model"

# Defaults for the tiny world: small batches, short completions, a CPU-friendly budget.
TINY_WORLD_DEFAULTS: dict[str, Any] = {
    "method": "eapo",
    "max_steps": 600,
    "learning_rate": 5e-5,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "per_device_train_batch_size": 64,
    "num_generations": 8,
    "max_completion_length": 24,
    "temperature": 1.0,
    "logging_steps": 1,
    "save_steps": 200,
    "save_total_limit": 2,
    "report_to": "none",
    "seed": 0,
    "bf16": False,
    "activation_checkpointing": False,  # transformers 5's name of gradient_checkpointing (on by default in TRL)
    "dataloader_num_workers": 0,
    "log_completions": False,
}

# Defaults for any other model: TRL's GRPOConfig values, with a CPU-sized budget and evaluation.
REAL_MODEL_DEFAULTS: dict[str, Any] = {
    "method": "eapo",
    "max_steps": 100,
    "learning_rate": 1e-6,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,
    "per_device_train_batch_size": 8,
    "num_generations": 8,
    "max_completion_length": 256,
    "temperature": 1.0,
    "logging_steps": 1,
    "save_steps": 50,
    "save_total_limit": 2,
    "report_to": "none",
    "seed": 0,
    "activation_checkpointing": False,
    "dataloader_num_workers": 0,
    "log_completions": False,
    "eval_problems": 16,
    "eval_k": 2,
    "heldout_eval_steps": 50,
    "heldout_eval_problems": 8,
    "heldout_eval_k": 2,
    "eval_batch_size": 16,  # sampling batches small enough that the evaluations' progress bars move (an ETA)
    "report_problems": 2,  # the end-of-run report's token view: 2 prompts x G completions, not 32
}

_ARCHITECTURE_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size")


def _architecture(folder: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):  # unreadable, not JSON or not UTF-8: check_model_dir names the problem
        return None
    return {key: config.get(key) for key in _ARCHITECTURE_KEYS} if isinstance(config, dict) else None


def is_tiny_world(model_path: str | Path | None) -> bool:
    """True for no model (the shipped policy), the shipped policy's folder, a checkpoint with its architecture,
    or a LoRA adapter folder whose base model is one of these."""
    from eapo.world import BASE_MODEL_DIR

    if model_path in (None, ""):
        return True
    folder = Path(model_path)
    adapter = folder / "adapter_config.json"
    if adapter.is_file() and not (folder / "config.json").exists():
        try:
            base = json.loads(adapter.read_text()).get("base_model_name_or_path")
        except (OSError, ValueError, AttributeError):
            return False
        return bool(base) and is_tiny_world(base)
    shipped = _architecture(Path(BASE_MODEL_DIR))
    return shipped is not None and _architecture(folder) == shipped


def defaults_for(model_path: str | Path | None) -> tuple[str, dict[str, Any]]:
    """(name, defaults) for a run on `model_path`: `("tiny-world", TINY_WORLD_DEFAULTS)` for the tiny world
    and its checkpoints, else `("real-model", REAL_MODEL_DEFAULTS)`. The dict is a copy."""
    if is_tiny_world(model_path):
        return TINY_WORLD, dict(TINY_WORLD_DEFAULTS)
    return REAL_MODEL, dict(REAL_MODEL_DEFAULTS)
