"""`eapo train`: RL on the embedded tiny countdown world (or a model folder), one run folder per run.

Options come, in increasing priority, from the tiny-world defaults below, a YAML config (`--config`,
TRL's format: a flat mapping of EAPOConfig fields) and command-line flags with TRL's names
(`--max_steps`, `--save_steps`, `--output_dir`, `--seed`, `--method`, ...).

The run folder (`--output_dir`, default `runs/<method>-seed<seed>`) gets `config.json` (the resolved
config), `metrics.jsonl` (one line per optimizer step), `model/` (the final policy, safetensors) and
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

from eapo.policy import ModelArguments
from eapo.tasks.registry import TaskArguments

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
class RunArguments(TaskArguments, ModelArguments):
    """`eapo train` options that are not EAPOConfig fields (task, model and LoRA options: see the bases)."""

    model_path: str | None = field(
        default=None, metadata={"help": "Model folder to train (default: the shipped tiny-world base policy)."}
    )
    eval_problems: int = field(default=200, metadata={"help": "Held-out problems evaluated before and after."})
    eval_k: int = field(default=8, metadata={"help": "Samples per held-out problem (avg@k, pass@k)."})
    eval_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the evaluation."})
    report: bool = field(default=True, metadata={"help": "Write report.html (`eapo report`) at the end of training."})


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
    if run.eval_max_new_tokens is None:
        run.eval_max_new_tokens = config.max_completion_length
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


def heldout_accuracy(model: Any, tokenizer: Any, problems: Any, run: RunArguments, seed: int) -> dict[str, float]:
    """avg@k and pass@j on held-out `problems`: a `Task` (its held-out rows, scored by its reward)
    or a list of tiny-world `CountdownProblem`s (scored by `countdown_reward`)."""
    from eapo.heldout import task_accuracy
    from eapo.rewards import countdown_reward
    from eapo.tasks.countdown import countdown_dataset

    if hasattr(problems, "heldout"):
        rows, reward = problems.heldout, problems.reward
    else:
        rows, reward = countdown_dataset(problems), countdown_reward
    return task_accuracy(
        model,
        tokenizer,
        rows,
        reward,
        run.eval_k,
        threshold=run.eval_threshold,
        temperature=run.eval_temperature,
        top_p=run.eval_top_p,
        max_new_tokens=run.eval_max_new_tokens,
        batch_size=run.eval_batch_size,
        seed=seed,
        progress=True,
    )


def _prepare(config: Any, run: RunArguments) -> Any:
    from eapo.policy import PolicyError, prepare
    from eapo.tasks.registry import TaskError

    try:
        return prepare(run, config.seed, config.trust_remote_code)
    except PolicyError as err:
        raise SystemExit(f"eapo train: {err}") from None
    except TaskError as err:
        raise SystemExit(f"eapo train: error: {err}") from None


def train(config: Any, run: RunArguments) -> dict[str, Any]:
    """Run one training and fill its run folder; returns the evaluation summary."""
    from accelerate import PartialState

    from eapo.trainer import EAPOTrainer

    main_process = PartialState().is_main_process
    run_dir = Path(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if main_process:
        (run_dir / "config.json").write_text(json.dumps({**config.resolved(), **vars(run)}, indent=2, default=str))
    setup = _prepare(config, run)
    if setup.dropped_long_prompts and main_process:
        print(f"dropped {setup.dropped_long_prompts} train prompts longer than {run.max_prompt_length} tokens")
    evaluate = main_process and len(setup.task.heldout) > 0  # other processes go on to training
    before = heldout_accuracy(setup.model, setup.tokenizer, setup.task, run, seed=config.seed) if evaluate else {}
    trainer = EAPOTrainer(
        model=setup.model,
        reward_funcs=setup.task.reward,
        args=config,
        train_dataset=setup.task.train,
        processing_class=setup.tokenizer,
        peft_config=setup.peft_config,
        callbacks=[MetricsJsonl(run_dir / "metrics.jsonl")],
    )
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    trainer.save_model(str(run_dir / "model"))
    after = heldout_accuracy(trainer.model, setup.tokenizer, setup.task, run, seed=config.seed) if evaluate else {}
    summary = {"before": before, "after": after, "train_seconds": seconds, "steps": trainer.state.global_step}
    if main_process:
        (run_dir / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
        if run.report:
            from eapo.report import write_report

            summary["report"] = str(write_report(run_dir, seed=config.seed))
    return summary


def main(argv: list[str] | None = None) -> int:
    config, run = parse_args(sys.argv[1:] if argv is None else argv)
    summary = train(config, run)
    from accelerate import PartialState

    if not PartialState().is_main_process:  # one report per run, not per process
        return 0
    k = run.eval_k
    if summary["before"]:
        print(f"\nheld-out ({run.eval_problems} problems, {k} samples each, temperature {run.eval_temperature}):")
        for name in (f"avg@{k}", f"pass@{k}"):
            b, a = summary["before"][name], summary["after"][name]
            print(f"  {name:>7}: {b:.3f} -> {a:.3f} ({100 * (a - b):+.1f} points)")
    print(f"run folder: {config.output_dir} ({summary['steps']} steps, {summary['train_seconds']:.0f} s of training)")
    if "report" in summary:
        print(f"report: {summary['report']}")
    return 0
