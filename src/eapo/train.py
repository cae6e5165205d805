"""`eapo train`: RL on the embedded tiny countdown world (or a model folder), one run folder per run.

Options come, in increasing priority, from the tiny-world defaults below, a YAML config (`--config`,
TRL's format: a flat mapping of EAPOConfig fields) and command-line flags with TRL's names
(`--max_steps`, `--save_steps`, `--output_dir`, `--seed`, `--method`, ...).

The run folder (`--output_dir`, default `runs/<method>-seed<seed>`) gets `config.json` (the resolved
config), `metrics.jsonl` (one line per optimizer step), `heldout.jsonl` (held-out accuracy every
`--heldout_eval_steps` steps, see `eapo.heldout`), `model/` (the final policy, safetensors) and
`eval.json` (held-out accuracy before and after).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

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
    "gradient_checkpointing": False,
    "dataloader_num_workers": 0,
    "log_completions": False,
}
AUTO = "__auto__"


@dataclass
class RunArguments:
    """`eapo train` options that are not EAPOConfig fields."""

    model_path: str | None = field(
        default=None, metadata={"help": "Model folder to train (default: the shipped tiny-world base policy)."}
    )
    eval_problems: int = field(default=200, metadata={"help": "Held-out problems evaluated before and after."})
    eval_k: int = field(default=8, metadata={"help": "Samples per held-out problem (avg@k, pass@k)."})
    eval_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the evaluation."})
    eval_before: bool = field(
        default=True,
        metadata={"help": "Also evaluate the starting policy (eval.json 'before'; null when off)."},
    )
    heldout_eval_steps: int = field(
        default=100,
        metadata={"help": "Evaluate held-out accuracy every N steps (and at step 0) into heldout.jsonl; 0 = off."},
    )
    heldout_eval_problems: int = field(default=100, metadata={"help": "Held-out problems of each periodic eval."})
    heldout_eval_k: int = field(default=8, metadata={"help": "Samples per problem of each periodic eval."})


def _flags(mapping: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in mapping.items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value) if isinstance(value, dict) else ",".join(str(v) for v in value)
        out += [f"--{key}", str(value)]
    return out


def _read_yaml(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Pull `--config FILE` out of argv and read it."""
    if "--config" not in argv:
        return {}, argv
    i = argv.index("--config")
    if i + 1 >= len(argv):
        raise SystemExit("eapo train: --config needs a YAML file")
    path = Path(argv[i + 1])
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise SystemExit(f"eapo train: cannot read config {path}: {err}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"eapo train: config {path} must be a mapping of option: value")
    return data, argv[:i] + argv[i + 2 :]


def parse_args(argv: list[str]) -> tuple[Any, RunArguments]:
    """(EAPOConfig, RunArguments) from defaults < YAML < flags."""
    import torch
    from transformers import HfArgumentParser

    from eapo.trainer import EAPOConfig

    from_yaml, argv = _read_yaml(list(argv))
    defaults = {**TINY_WORLD_DEFAULTS, "use_cpu": not torch.cuda.is_available(), "output_dir": AUTO}
    parser = HfArgumentParser((EAPOConfig, RunArguments))
    merged = _flags(defaults) + _flags(from_yaml) + argv
    try:
        config, run = parser.parse_args_into_dataclasses(merged)
        if config.output_dir == AUTO:
            merged += ["--output_dir", str(Path("runs") / f"{config.method}-seed{config.seed}")]
            config, run = parser.parse_args_into_dataclasses(merged)
    except ValueError as err:
        raise SystemExit(f"eapo train: {err}") from None
    return config, run


class MetricsJsonl(TrainerCallback):
    """Appends one JSON line per logged training step to `path`, flushed and fsynced."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")
                f.flush()
                os.fsync(f.fileno())


def heldout_accuracy(model: Any, tokenizer: Any, problems: list, run: RunArguments, seed: int) -> dict[str, float]:
    from eapo.world.warmstart import countdown_accuracy

    return countdown_accuracy(
        model, tokenizer, problems, run.eval_k, temperature=run.eval_temperature, seed=seed, progress=True
    )


def heldout_callback(run_dir: Path, tokenizer: Any, heldout: list, run: RunArguments, seed: int) -> Any:
    """The periodic held-out evaluation of `eapo train` (`RUN_DIR/heldout.jsonl`, see `eapo.heldout`)."""
    from eapo.heldout import HELDOUT_FILE, HeldoutEvalCallback
    from eapo.world.warmstart import countdown_accuracy

    problems, k = heldout[: run.heldout_eval_problems], run.heldout_eval_k
    if k < 1 or not problems:
        raise SystemExit("eapo train: --heldout_eval_k and --heldout_eval_problems must be at least 1")
    (run_dir / HELDOUT_FILE).unlink(missing_ok=True)  # a rerun of an unfinished run starts a fresh curve

    def evaluate_fn(model: Any) -> dict[str, float]:
        return countdown_accuracy(model, tokenizer, problems, k, temperature=run.eval_temperature, seed=seed)

    return HeldoutEvalCallback(run_dir / HELDOUT_FILE, evaluate_fn, every=run.heldout_eval_steps, k=k)


def train(config: Any, run: RunArguments) -> dict[str, Any]:
    """Run one training and fill its run folder; returns the evaluation summary."""
    from eapo.rewards import countdown_reward
    from eapo.tasks.countdown import countdown_dataset
    from eapo.trainer import EAPOTrainer
    from eapo.world import load_base
    from eapo.world.warmstart import tiny_world_split

    run_dir = Path(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({**config.resolved(), **vars(run)}, indent=2, default=str))
    try:
        model, tokenizer = load_base(run.model_path)
    except (OSError, ValueError) as err:
        raise SystemExit(f"eapo train: cannot load a model from {run.model_path}: {err}") from None
    train_problems, heldout = tiny_world_split()
    callbacks = [MetricsJsonl(run_dir / "metrics.jsonl")]
    if run.heldout_eval_steps < 0:
        raise SystemExit("eapo train: --heldout_eval_steps must be >= 0 (0 turns the periodic evaluation off)")
    if run.heldout_eval_steps > 0:
        callbacks.append(heldout_callback(run_dir, tokenizer, heldout, run, seed=config.seed))
    heldout = heldout[: run.eval_problems]
    before = heldout_accuracy(model, tokenizer, heldout, run, seed=config.seed) if run.eval_before else None
    trainer = EAPOTrainer(
        model=model,
        reward_funcs=countdown_reward,
        args=config,
        train_dataset=countdown_dataset(train_problems),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    trainer.save_model(str(run_dir / "model"))
    after = heldout_accuracy(model, tokenizer, heldout, run, seed=config.seed)
    summary = {"before": before, "after": after, "train_seconds": seconds, "steps": trainer.state.global_step}
    (run_dir / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    config, run = parse_args(sys.argv[1:] if argv is None else argv)
    summary = train(config, run)
    k = run.eval_k
    print(f"\nheld-out ({run.eval_problems} problems, {k} samples each, temperature {run.eval_temperature}):")
    for name in (f"avg@{k}", f"pass@{k}"):
        a = summary["after"][name]
        if summary["before"] is None:
            print(f"  {name:>7}: {a:.3f}")
            continue
        b = summary["before"][name]
        print(f"  {name:>7}: {b:.3f} -> {a:.3f} ({100 * (a - b):+.1f} points)")
    print(f"run folder: {config.output_dir} ({summary['steps']} steps, {summary['train_seconds']:.0f} s of training)")
    return 0
