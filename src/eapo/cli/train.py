"""`eapo train`: RL on the embedded tiny countdown world (or a model folder), one run folder per run.

Options come, in increasing priority, from the tiny-world defaults below, a YAML config (`--config`,
TRL's format: a flat mapping of EAPOConfig fields) and command-line flags with TRL's names
(`--max_steps`, `--save_steps`, `--output_dir`, `--seed`, `--method`, ...).

The run folder (`--output_dir`, default `runs/<method>-seed<seed>`) gets `config.json` (the resolved
config and the flags, `argv`), `metrics.jsonl` (one line per optimizer step), `heldout.jsonl` (held-out
accuracy every `--heldout_eval_steps` steps, see `eapo.evaluation.heldout`), `checkpoint-*/` (atomic), `model/` (the
final policy, safetensors), `eval_before.json` and `eval.json` (held-out accuracy before and after) and
`report.html`. `--resume RUN_DIR` continues a run from its last complete checkpoint (`eapo.trainer.checkpoint`).
Every option is checked before anything is loaded or written (`eapo.cli.validate`, exit code 2).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

from eapo.models.policy import ModelArguments
from eapo.tasks.registry import TaskArguments
from eapo.trainer.checkpoint import append_jsonl
from eapo.trainer.defaults import TINY_WORLD_DEFAULTS, defaults_for  # noqa: F401  (TINY_WORLD_DEFAULTS: re-export)

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
    resume: str | None = field(
        default=None,
        metadata={"help": "Continue the run in this folder from its last complete checkpoint (its saved options)."},
    )
    argv: list[str] = field(default_factory=list, init=False)  # the resolved flags, saved for --resume
    defaults: str = field(default="", init=False)  # which default set applied: tiny-world or real-model
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
    from eapo.cli.validate import ValidationError

    if "--config" not in argv:
        return {}, argv
    i = argv.index("--config")
    if i + 1 >= len(argv):
        raise SystemExit("eapo train: --config needs a YAML file")
    path = Path(argv[i + 1])
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValidationError(f"config: cannot read {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"config: {path} must be a mapping of option: value")
    return data, argv[:i] + argv[i + 2 :]


def _resume_argv(argv: list[str]) -> tuple[list[str], str]:
    """`--resume RUN_DIR [flags]` -> (the run's saved flags, RUN_DIR as output_dir, the new flags; RUN_DIR)."""
    from eapo.cli.validate import ValidationError, saved_argv

    i = argv.index("--resume")
    if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
        raise ValidationError("resume: --resume needs a run folder (the output_dir of an earlier `eapo train`)")
    run_dir = argv[i + 1]
    return [*saved_argv(run_dir), "--output_dir", run_dir, *argv[:i], *argv[i + 2 :]], run_dir


def _model_path_option(from_yaml: dict[str, Any], argv: list[str]) -> str | None:
    """The model a run will load (`--model_path`, else `--model_name_or_path`; flags over YAML), read before
    parsing so that the defaults can depend on it."""
    found: dict[str, str] = {}
    for key in ("model_path", "model_name_or_path"):
        if from_yaml.get(key):
            found[key] = str(from_yaml[key])
        for i, arg in enumerate(argv):
            if arg == f"--{key}" and i + 1 < len(argv):
                found[key] = argv[i + 1]
            elif arg.startswith(f"--{key}="):
                found[key] = arg.split("=", 1)[1]
    return found.get("model_path") or found.get("model_name_or_path")


def parse_args(argv: list[str]) -> tuple[Any, RunArguments]:
    """(EAPOConfig, RunArguments) from defaults < YAML < flags (< the saved flags of a `--resume`d run).
    The defaults are the tiny world's or the real-model set (`eapo.trainer.defaults.defaults_for`)."""
    import torch
    from transformers import HfArgumentParser

    from eapo.cli.validate import ValidationError
    from eapo.trainer import EAPOConfig

    argv = list(argv)
    if "--resume" in argv:
        resumed, run_dir = _resume_argv(argv)
        config, run = parse_args(resumed)
        run.resume = run_dir
        return config, run
    from_yaml, argv = _read_yaml(argv)
    defaults_name, defaults = defaults_for(_model_path_option(from_yaml, argv))
    defaults.update({"use_cpu": not torch.cuda.is_available(), "output_dir": AUTO})
    defaults.setdefault("bf16", torch.cuda.is_available())  # real models: TRL's bf16 on a GPU, float32 on a CPU
    parser = HfArgumentParser((EAPOConfig, RunArguments))
    merged = _flags(defaults) + _flags(from_yaml) + argv
    try:
        config, run = parser.parse_args_into_dataclasses(merged)
        if config.output_dir == AUTO:
            merged += ["--output_dir", str(Path("runs") / f"{config.method}-seed{config.seed}")]
            config, run = parser.parse_args_into_dataclasses(merged)
    except ValueError as err:
        raise ValidationError(str(err).strip().splitlines()[0]) from None
    if run.eval_max_new_tokens is None:
        run.eval_max_new_tokens = config.max_completion_length
    run.argv = [*merged, "--output_dir", config.output_dir]
    run.defaults = defaults_name
    return config, run


class MetricsJsonl(TrainerCallback):
    """Appends one JSON line per logged training step to `path`, flushed and fsynced."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            append_jsonl(self.path, {"step": state.global_step, **logs})


def _warn(message: str) -> None:
    print(f"eapo train: {message}", file=sys.stderr, flush=True)


def heldout_accuracy(model: Any, tokenizer: Any, problems: Any, run: RunArguments, seed: int) -> dict[str, float]:
    """avg@k and pass@j on held-out `problems`: a `Task` (its held-out rows, scored by its reward)
    or a list of tiny-world `CountdownProblem`s (scored by `countdown_reward`)."""
    from eapo.evaluation.heldout import task_accuracy
    from eapo.tasks.countdown import countdown_dataset
    from eapo.tasks.rewards import countdown_reward

    if hasattr(problems, "heldout"):
        rows, reward = problems.heldout, problems.reward
    else:
        rows, reward = countdown_dataset(problems), countdown_reward
    return task_accuracy(model, tokenizer, rows, reward, run.eval_k, seed=seed, progress=True, **_eval_sampling(run))


def _eval_sampling(run: RunArguments) -> dict[str, Any]:
    """The sampling options of every held-out evaluation of a run (before/after and periodic)."""
    return {
        "threshold": run.eval_threshold,
        "temperature": run.eval_temperature,
        "top_p": run.eval_top_p,
        "max_new_tokens": run.eval_max_new_tokens,
        "batch_size": run.eval_batch_size,
    }


def _check_before_writing(config: Any, run: RunArguments) -> Path | None:
    """Every check that needs no model weights, before anything in the run folder changes.
    Returns the checkpoint to resume from (None for a fresh run)."""
    from eapo.cli.validate import ValidationError, check_model_and_tokenizer, check_resume, check_run_args
    from eapo.tasks.countdown import CountdownProblem, format_prompt
    from eapo.trainer.checkpoint import last_checkpoint
    from eapo.world import BASE_MODEL_DIR

    check_run_args(run)
    periodic = run.heldout_eval_steps, run.heldout_eval_k, run.heldout_eval_problems
    if periodic[0] < 0 or (periodic[0] > 0 and min(periodic[1:]) < 1):
        raise ValidationError(
            "heldout_eval_steps={}, heldout_eval_k={}, heldout_eval_problems={}: use heldout_eval_steps >= 0 "
            "(0 = off) and heldout_eval_k, heldout_eval_problems >= 1".format(*periodic)
        )
    checkpoint = check_resume(run.resume) if run.resume else None
    if checkpoint is None and Path(config.output_dir).is_dir() and last_checkpoint(config.output_dir) is not None:
        raise ValidationError(
            f"output_dir={config.output_dir!r} already holds a run with checkpoints: continue it with "
            f"--resume {config.output_dir}, or pass another --output_dir"
        )
    model_dir = Path(run.model_path or run.model_name_or_path or BASE_MODEL_DIR)
    if (model_dir / "adapter_config.json").is_file() and not (model_dir / "config.json").exists():
        return checkpoint  # a LoRA adapter folder: its base model is checked when it loads (eapo.models.policy)
    texts = [format_prompt(CountdownProblem((3, 5, 7), 22)), "3*5=15,15+7=22"] if run.task == "countdown" else []
    check_model_and_tokenizer(model_dir, texts)
    return checkpoint


def _load_task(config: Any, run: RunArguments) -> Any:
    """The run's task (data files read, columns mapped) before any model loads: a bad task is exit code 2."""
    from eapo.cli.validate import ValidationError
    from eapo.tasks.registry import TaskError, load_run_task

    try:
        return load_run_task(run, seed=config.seed)
    except TaskError as err:
        raise ValidationError(f"task: {err}") from None


def _prepare(config: Any, run: RunArguments, task: Any) -> Any:
    from eapo.cli.validate import ValidationError
    from eapo.models.policy import PolicyError, prepare
    from eapo.tasks.registry import TaskError

    try:
        return prepare(run, config.seed, config.trust_remote_code, task=task)
    except PolicyError as err:
        raise SystemExit(f"eapo train: {err}") from None
    except TaskError as err:
        raise ValidationError(f"task: {err}") from None


def _heldout_before(run_dir: Path, setup: Any, run: RunArguments, seed: int) -> dict[str, float]:
    """Held-out accuracy of the starting policy, computed once per run folder (a resumed run reuses it)."""
    from eapo.trainer.checkpoint import atomic_write_text

    path = run_dir / "eval_before.json"
    if run.resume and path.exists():
        return json.loads(path.read_text())
    before = heldout_accuracy(setup.model, setup.tokenizer, setup.task, run, seed=seed)
    atomic_write_text(path, json.dumps(before, indent=2) + "\n")
    return before


def heldout_callback(run_dir: Path, setup: Any, run: RunArguments, seed: int) -> Any:
    """The periodic held-out evaluation of `eapo train` (`RUN_DIR/heldout.jsonl`, see `eapo.evaluation.heldout`):
    the first `heldout_eval_problems` held-out prompts of the task, `heldout_eval_k` samples each."""
    from eapo.evaluation.heldout import HELDOUT_FILE, HeldoutEvalCallback, task_accuracy

    rows = setup.task.heldout.select(range(min(run.heldout_eval_problems, len(setup.task.heldout))))
    k = run.heldout_eval_k

    def evaluate_fn(model: Any) -> dict[str, float]:
        return task_accuracy(model, setup.tokenizer, rows, setup.task.reward, k, seed=seed, **_eval_sampling(run))

    return HeldoutEvalCallback(run_dir / HELDOUT_FILE, evaluate_fn, every=run.heldout_eval_steps, k=k)


def train(config: Any, run: RunArguments) -> dict[str, Any]:
    """Run one training and fill its run folder (or continue it with `run.resume`); returns the evaluation summary."""
    from accelerate import PartialState

    from eapo.trainer import EAPOTrainer
    from eapo.trainer.callbacks import NoLearningSignalCallback
    from eapo.trainer.checkpoint import atomic_write_text, prepare_resume, step_logs, truncate_step_log

    main_process = PartialState().is_main_process
    checkpoint = _check_before_writing(config, run)
    task = _load_task(config, run)
    run_dir = Path(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        if main_process:
            for log in step_logs(run_dir):  # a fresh run starts its step logs over
                truncate_step_log(log, -1)
    else:
        if main_process:
            checkpoint = prepare_resume(run_dir)
            print(f"resuming {run_dir} from {checkpoint.name}")
    if main_process:
        resolved = {**config.resolved(), **vars(run), "resume": None}  # a later --resume gets these options
        atomic_write_text(run_dir / "config.json", json.dumps(resolved, indent=2, default=str))
    setup = _prepare(config, run, task)
    if setup.dropped_long_prompts and main_process:
        print(f"dropped {setup.dropped_long_prompts} train prompts longer than {run.max_prompt_length} tokens")
    evaluate = main_process and len(setup.task.heldout) > 0  # other processes go on to training
    before = _heldout_before(run_dir, setup, run, config.seed) if evaluate and run.eval_before else None
    callbacks = [MetricsJsonl(run_dir / "metrics.jsonl"), NoLearningSignalCallback(emit=_warn)]
    if run.heldout_eval_steps > 0 and len(setup.task.heldout) > 0:
        callbacks.append(heldout_callback(run_dir, setup, run, seed=config.seed))
    trainer = EAPOTrainer(
        model=setup.model,
        reward_funcs=setup.task.reward,
        args=config,
        train_dataset=setup.task.train,
        processing_class=setup.tokenizer,
        peft_config=setup.peft_config,
        callbacks=callbacks,
    )
    start = time.time()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.time() - start
    trainer.save_model(str(run_dir / "model"))
    after = heldout_accuracy(trainer.model, setup.tokenizer, setup.task, run, seed=config.seed) if evaluate else {}
    summary = {"before": before, "after": after, "train_seconds": seconds, "steps": trainer.state.global_step}
    if main_process:
        atomic_write_text(run_dir / "eval.json", json.dumps(summary, indent=2) + "\n")
        if run.report:
            from eapo.analysis.report import write_report

            summary["report"] = str(write_report(run_dir, seed=config.seed))
    return summary


def main(argv: list[str] | None = None) -> int:
    """`eapo train`: 0 on success, 2 on a bad option or input (one line on stderr, nothing written)."""
    from accelerate import PartialState

    from eapo.cli.validate import ValidationError
    from eapo.trainer.reliability import RewardFunctionError

    try:
        config, run = parse_args(sys.argv[1:] if argv is None else argv)
        summary = train(config, run)
    except ValidationError as err:
        print(f"eapo train: {err}", file=sys.stderr)
        return err.code
    except RewardFunctionError as err:
        print(f"eapo train: {err}", file=sys.stderr)
        return 1
    if not PartialState().is_main_process:  # one report per run, not per process
        return 0
    k = run.eval_k
    if summary["after"]:
        print(f"\nheld-out ({run.eval_problems} problems, {k} samples each, temperature {run.eval_temperature}):")
        for name in (f"avg@{k}", f"pass@{k}"):
            a = summary["after"][name]
            if not summary["before"]:
                print(f"  {name:>7}: {a:.3f}")
                continue
            b = summary["before"][name]
            print(f"  {name:>7}: {b:.3f} -> {a:.3f} ({100 * (a - b):+.1f} points)")
    print(f"run folder: {config.output_dir} ({summary['steps']} steps, {summary['train_seconds']:.0f} s of training)")
    if "report" in summary:
        print(f"report: {summary['report']}")
    return 0
