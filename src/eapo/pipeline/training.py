"""`eapo train`'s work as one library function: `train(config, run) -> TrainResult`.

    from eapo.pipeline import train, train_options

    config, run = train_options(method="grpo", max_steps=50, eval_problems=50)   # the world's defaults for the rest
    result = train(config, run)
    result.run_dir, result.before["avg@8"], result.after["avg@8"]

The run folder (`config.output_dir`, default `runs/<method>-seed<seed>`) gets `config.yaml` (the options the run
was started with; `eapo train --config RUN_DIR/config.yaml` reproduces it), `config.json` (every resolved field),
`metrics.jsonl` (one line per optimizer step), `heldout.jsonl` (held-out accuracy every `heldout_eval_steps`
steps, see `eapo.evaluation.heldout`), `checkpoint-*/` (atomic, every `save_steps` steps), `model/` (the final
policy, safetensors),
`eval_before.json` and `eval.json` (held-out accuracy before and after; `wall_seconds`: the run's wall time over
all its sessions until eval.json, kept in `wall.json` as it goes) and `report.html`. `run.resume` continues a run
from its newest loadable checkpoint. Ctrl-C saves a checkpoint at the end of the current step and raises
`Interrupted`, whose message says how to resume. Every option is checked before anything is loaded or written
(`eapo.pipeline.options.check_options`, `eapo.pipeline.checks`).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eapo.errors import InputError, TaskError
from eapo.pipeline.checks import check_model_and_tokenizer, check_resume, saved_nothing
from eapo.pipeline.options import CONFIG_YAML, RunArguments, _model_of, check_options

if TYPE_CHECKING:
    from eapo.tasks.registry import Task


@dataclass
class TrainResult:
    """One finished training run: its folder and its evaluation summary (`RUN_DIR/eval.json`, plus `report`)."""

    run_dir: Path
    summary: dict[str, Any]

    @property
    def before(self) -> dict[str, Any] | None:
        """Held-out scores of the starting policy (`avg@k`, `pass@j`, ...), None when not evaluated or failed."""
        return self.summary["before"]

    @property
    def after(self) -> dict[str, Any]:
        """Held-out scores of the trained policy (empty when the evaluation failed: see `failed`)."""
        return self.summary["after"]

    @property
    def failed(self) -> dict[str, str]:
        """Evaluations whose reward failed, by when (`before`, `after`, `step N`), with the error."""
        return self.summary["failed"]

    @property
    def steps(self) -> int:
        return self.summary["steps"]

    @property
    def model_dir(self) -> Path:
        """The trained policy (`eapo.models.policy.load_policy` loads it, LoRA adapters included)."""
        return self.run_dir / "model"


def heldout_accuracy(
    model: Any,
    tokenizer: Any,
    task: Task,
    run: RunArguments,
    seed: int,
    when: str = "after",
    reward_error_policy: str = "raise",
) -> dict[str, Any]:
    """avg@k and pass@j on the task's first `run.eval_problems` held-out rows (`final_rows`), scored by its reward
    (with its answer extractor, maj@k and the format numbers too), with the problems evaluated and their correct
    counts (`eapo.evaluation.heldout.problem_record`: pairing and the evaluation's standard error). The reward is
    guarded as in training (`reward_error_policy`); `when` labels the progress bar."""
    from eapo.evaluation.heldout import task_accuracy

    return task_accuracy(
        model, tokenizer, final_rows(task, run), task.reward, run.eval_k, seed=seed, progress=True, per_problem=True,
        reward_error_policy=reward_error_policy, desc=f"held-out eval ({when})", extract_answer=task.extract_answer,
        stop_strings=task.stop_strings, **_eval_sampling(run),
    )  # fmt: skip


def final_rows(task: Task, run: RunArguments) -> Any:
    """The held-out rows of the evaluation before and after training: the task's first `run.eval_problems`."""
    return task.heldout.select(range(min(run.eval_problems, len(task.heldout))))


def _eval_sampling(run: RunArguments) -> dict[str, Any]:
    """The sampling options of every held-out evaluation of a run (before/after and periodic)."""
    return {
        "threshold": run.eval_threshold,
        "temperature": run.eval_temperature,
        "top_p": run.eval_top_p,
        "max_new_tokens": run.eval_max_new_tokens,
        "batch_size": run.eval_batch_size,
    }


def _check_run_folder(config: Any, run: RunArguments) -> Path | None:
    """A fresh run needs an empty (or new) output_dir unless --overwrite_output_dir; a resumed one, a checkpoint
    that loads. Returns the checkpoint to resume from (None for a fresh run)."""

    if run.resume:
        return check_resume(run.resume)
    out = Path(config.output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output_dir={config.output_dir!r} is a file: pass a folder")
    if out.is_dir() and any(out.iterdir()) and not run.overwrite_output_dir and not saved_nothing(out):
        raise InputError(
            f"output_dir={config.output_dir!r} is not empty{_resume_hint(out, run)}pass another --output_dir, or "
            "--overwrite_output_dir true to delete what is there"
        )
    return None


def _resume_hint(out: Path, run: RunArguments) -> str:
    """': continue it with --resume OUT, ' when `out` holds a run of the same model with a checkpoint; else what
    the folder holds (never --resume for another model's run, which would continue that model)."""
    from eapo.trainer.checkpoint import last_checkpoint

    try:
        saved = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return ": "
    if not isinstance(saved, dict):
        return ": "
    if _model_of(saved) != _model_of(vars(run)):
        other = _model_of(saved) or "the shipped tiny-world policy"
        return f" (it holds a run of another model, {other}): "
    if last_checkpoint(out) is None:
        return " (it holds a run with no checkpoint to continue): "
    return f": continue it with --resume {out}, "


def run_model_dir(run: RunArguments) -> Path | None:
    """The model folder a run loads (default: the shipped tiny-world policy), to check before it loads; None for a
    LoRA adapter folder, whose base model is checked when it loads (eapo.models.policy)."""
    from eapo.world import BASE_MODEL_DIR

    model_dir = Path(run.model_path or run.model_name_or_path or BASE_MODEL_DIR)
    if (model_dir / "adapter_config.json").is_file() and not (model_dir / "config.json").exists():
        return None
    return model_dir


def _check_before_writing(config: Any, run: RunArguments) -> Path | None:
    """Every check that needs no model weights, before anything in the run folder changes.
    Returns the checkpoint to resume from (None for a fresh run)."""
    from eapo.tasks.countdown import CountdownProblem, format_prompt

    check_options(config, run)
    checkpoint = _check_run_folder(config, run)
    model_dir = run_model_dir(run)
    if model_dir is None:
        return checkpoint
    texts = [format_prompt(CountdownProblem((3, 5, 7), 22)), "3*5=15,15+7=22"] if run.task == "countdown" else []
    check_model_and_tokenizer(model_dir, texts)
    return checkpoint


def heldout_rows(run: RunArguments) -> int:
    """How many held-out problems a run loads: the first `eval_problems` are the evaluation before and after, the
    first `heldout_eval_problems` the periodic one (when on), so `--eval_problems 50 --heldout_eval_problems 100`
    evaluates 100 problems every `heldout_eval_steps` steps and the first 50 of them at the end."""
    return max(run.eval_problems, run.heldout_eval_problems if run.heldout_eval_steps > 0 else 0)


def _load_task(config: Any, run: RunArguments) -> Any:
    """The run's task (data files read, columns mapped) before any model loads: a bad task is a `TaskError`.
    Its held-out set holds `heldout_rows(run)` problems."""
    from eapo.tasks.registry import load_run_task

    try:
        return load_run_task(run, seed=config.seed, eval_size=heldout_rows(run))
    except TaskError as err:
        raise TaskError(f"task: {err}") from None


def _prepare(config: Any, run: RunArguments, task: Any) -> Any:
    """The policy loaded and the task's prompts rendered for it (`eapo.models.policy.prepare`)."""
    from eapo.models.policy import prepare

    try:
        return prepare(run, config.seed, config.trust_remote_code, task=task)
    except TaskError as err:
        raise TaskError(f"task: {err}") from None


def _guarded_eval(when: str, evaluate: Any, failures: dict[str, str]) -> dict[str, Any] | None:
    """`evaluate()`, or None when the task's reward failed in it (under reward_error_policy raise): the failure is
    said in one line and recorded in `failures[when]` (eval.json's "failed"), and the run goes on."""
    from eapo.trainer.reliability import RewardFunctionError

    try:
        return evaluate()
    except RewardFunctionError as err:
        failures[when] = str(err)
        _warn(f"held-out evaluation ({when}) failed: {err}")
        return None


def _heldout_before(
    run_dir: Path, setup: Any, config: Any, run: RunArguments, failures: dict[str, str]
) -> dict[str, Any] | None:
    """Held-out accuracy of the starting policy, computed once per run folder (a resumed run reuses it)."""
    from eapo.io import atomic_write_text

    path = run_dir / "eval_before.json"
    if run.resume and path.exists():
        return json.loads(path.read_text())
    policy = config.reward_error_policy
    before = _guarded_eval(
        "before",
        lambda: heldout_accuracy(setup.model, setup.tokenizer, setup.task, run, config.seed, "before", policy),
        failures,
    )
    if before is not None:
        atomic_write_text(path, json.dumps(before, indent=2) + "\n")
    return before


def heldout_callback(
    run_dir: Path, setup: Any, run: RunArguments, seed: int, reward_error_policy: str = "raise",
    failures: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    """The periodic held-out evaluation of `eapo train` (`RUN_DIR/heldout.jsonl`, see `eapo.evaluation.heldout`):
    the first `heldout_eval_problems` held-out prompts of the task, `heldout_eval_k` samples each, the reward guarded
    as in training. An evaluation whose reward fails is recorded in `failures` and writes no line."""
    from eapo.evaluation.heldout import HeldoutEvalCallback, task_accuracy
    from eapo.trainer.checkpoint import HELDOUT_FILE

    rows = setup.task.heldout.select(range(min(run.heldout_eval_problems, len(setup.task.heldout))))
    k = run.heldout_eval_k
    failures = {} if failures is None else failures
    callback: Any = None

    def evaluate_fn(model: Any) -> dict[str, Any]:
        when = f"step {callback.step}"
        result = _guarded_eval(
            when,
            lambda: task_accuracy(
                model, setup.tokenizer, rows, setup.task.reward, k, seed=seed, progress=True,
                reward_error_policy=reward_error_policy, desc=f"held-out eval ({when})",
                extract_answer=setup.task.extract_answer, stop_strings=setup.task.stop_strings,
                **_eval_sampling(run),
            ),  # fmt: skip
            failures,
        )
        return {**result, "problems": len(rows)} if result else {}

    callback = HeldoutEvalCallback(run_dir / HELDOUT_FILE, evaluate_fn, every=run.heldout_eval_steps, k=k)
    return callback


def _start_run_folder(run_dir: Path, config: Any, run: RunArguments, checkpoint: Path | None) -> Path | None:
    """Make the run folder ready (fresh: emptied when --overwrite_output_dir; resumed: cut back to the
    checkpoint) and write its options; returns the checkpoint to resume from."""
    import shutil

    import yaml

    from eapo.io import atomic_write_text
    from eapo.trainer.checkpoint import prepare_resume

    if checkpoint is None:
        if run_dir.is_dir() and (run.overwrite_output_dir or saved_nothing(run_dir)):
            for child in run_dir.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        checkpoint = prepare_resume(run_dir)
        print(f"resuming {run_dir} from {checkpoint.name}")
    resolved = {**config.resolved(), **vars(run), "resume": None}
    atomic_write_text(run_dir / "config.json", json.dumps(resolved, indent=2, default=str))
    atomic_write_text(run_dir / CONFIG_YAML, yaml.safe_dump(run.inputs, sort_keys=True))
    return checkpoint


def _fit(trainer: Any, checkpoint: Path | None) -> bool:
    """`trainer.train()` with Ctrl-C handling; True when training was stopped by Ctrl-C."""
    from eapo.trainer.callbacks import StopOnInterrupt

    stop = StopOnInterrupt()
    trainer.add_callback(stop)
    with stop:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return stop.interrupted


def _warn(message: str) -> None:
    print(f"eapo train: {message}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    """Training stopped by Ctrl-C; the message says where the run can be resumed from."""


def _interrupted(run_dir: Path, trainer: Any = None) -> Interrupted:
    from eapo.trainer.checkpoint import last_checkpoint

    step = f" at step {trainer.state.global_step}" if trainer is not None else ""
    checkpoint = last_checkpoint(run_dir) if run_dir.is_dir() else None
    if checkpoint is None:
        again = "" if not run_dir.is_dir() or saved_nothing(run_dir) else " with --overwrite_output_dir true"
        return Interrupted(f"interrupted{step} before any checkpoint was saved: run the same command again{again}")
    return Interrupted(
        f"interrupted{step}; {checkpoint.name} is saved: continue with `eapo train --resume {run_dir}`"
    )


def train(config: Any, run: RunArguments) -> TrainResult:
    """Run one training and fill its run folder (or continue it with `run.resume`): check the options, load the
    task and the model, evaluate the starting policy, train, save, evaluate again and write the report. Returns
    the run folder and the held-out numbers before and after (`TrainResult`).

    Bad options or input raise an `eapo.errors.EapoError` before anything is written. Ctrl-C raises `Interrupted`
    (a checkpoint of the last finished step is saved). A run that trains to the end always saves its model,
    eval.json and summary: a held-out evaluation whose reward fails (under reward_error_policy raise) is said in
    one line and listed in eval.json's "failed"."""
    from accelerate import PartialState

    from eapo.io import atomic_write_text
    from eapo.trainer.callbacks import RunClock
    from eapo.trainer.checkpoint import WALL_FILE

    started = time.monotonic()
    main_process = PartialState().is_main_process
    checkpoint = _check_before_writing(config, run)
    task = _load_task(config, run)
    run_dir = Path(config.output_dir)
    if main_process:
        print(start_line(config, run), flush=True)
        if (hint := recipe_hint(config, run)) is not None:
            print(hint, flush=True)
        from eapo.core.methods import options_of_other_methods

        for option, owner in options_of_other_methods(config.method, run.inputs):
            _warn(f"--{option} is an option of method {owner}; method {config.method} does not use it")
    trainer, failures, clock = None, {}, None
    try:
        setup = _prepare(config, run, task)  # before anything is written: a model that does not load leaves no file
        if main_process:
            checkpoint = _start_run_folder(run_dir, config, run, checkpoint)
            clock = RunClock(run_dir / WALL_FILE, started)
        if setup.dropped_long_prompts and main_process:
            print(f"dropped {setup.dropped_long_prompts} train prompts longer than {run.max_prompt_length} tokens")
        evaluate = main_process and len(final_rows(setup.task, run)) > 0  # other processes go on to training
        before = _heldout_before(run_dir, setup, config, run, failures) if evaluate and run.eval_before else None
        _tick(clock)
        trainer = _trainer(config, run, setup, run_dir, failures, clock)
        start = time.time()
        if _fit(trainer, checkpoint):
            raise _interrupted(run_dir, trainer)  # the clock ticks below, as for any exception
        seconds = time.time() - start
        trainer.save_model(str(run_dir / "model"))
        trainer.create_model_card(model_name=run_dir.name)
        after = None
        if evaluate:
            after = _guarded_eval(
                "after",
                lambda: heldout_accuracy(
                    trainer.model, setup.tokenizer, setup.task, run, config.seed, "after", config.reward_error_policy
                ),
                failures,
            )
    except KeyboardInterrupt:
        _tick(clock)
        raise _interrupted(run_dir, trainer) from None
    except BaseException:  # a crash: its session's time stays on record for the run that resumes
        _tick(clock)
        raise
    summary = {
        "problems": len(final_rows(setup.task, run)),
        "k": run.eval_k,
        "temperature": run.eval_temperature,
        "before": before,
        "after": after or {},
        "failed": failures,
        "train_seconds": seconds,
        "wall_seconds": _tick(clock),
        "steps": trainer.state.global_step,
    }
    if main_process:
        atomic_write_text(run_dir / "eval.json", json.dumps(summary, indent=2) + "\n")
        if run.report:
            summary["report"] = _write_report(run_dir, config.seed, run.report_problems)
    return TrainResult(run_dir, summary)


def _tick(clock: Any) -> float | None:
    """The run clock's total, written (`RunClock.tick`); None on a process without one."""
    return None if clock is None else round(clock.tick(), 3)


def _trainer(
    config: Any, run: RunArguments, setup: Any, run_dir: Path, failures: dict[str, str], clock: Any = None
) -> Any:
    """The run's `EAPOTrainer` with eapo train's callbacks (step log, no-signal warning, periodic held-out eval,
    console) and its model card pointing at `RUN_DIR/model`."""
    from eapo.trainer import EAPOTrainer
    from eapo.trainer.callbacks import (
        CheckpointEverySaveSteps,
        MetricsJsonl,
        NoLearningSignalCallback,
        TrainTimeLimit,
        use_console,
    )
    from eapo.trainer.checkpoint import HELDOUT_FILE

    callbacks = [MetricsJsonl(run_dir / "metrics.jsonl"), NoLearningSignalCallback(emit=_warn)]
    callbacks.append(CheckpointEverySaveSteps())  # the final policy is RUN_DIR/model, not another checkpoint
    if run.max_train_minutes > 0:  # before the held-out callback: its evaluations are not counted
        callbacks.append(TrainTimeLimit(run.max_train_minutes))
    if run.heldout_eval_steps > 0 and len(setup.task.heldout) > 0:
        callbacks.append(heldout_callback(run_dir, setup, run, config.seed, config.reward_error_policy, failures))
    if clock is not None:  # after the held-out callback: a step's time includes its periodic evaluation
        callbacks.append(clock)
    if config.use_vllm and setup.task.stop_strings:  # vLLM ends completions at the task's stop strings itself
        stops = {"stop": list(setup.task.stop_strings), "include_stop_str_in_output": True}
        config.generation_kwargs = {**(config.generation_kwargs or {}), **stops}
    trainer = EAPOTrainer(
        model=setup.model,
        reward_funcs=setup.task.reward,
        args=config,
        train_dataset=setup.task.train,
        processing_class=setup.tokenizer,
        peft_config=setup.peft_config,
        callbacks=callbacks,
    )
    trainer.model_card_path = run_dir / "model"
    trainer.answer_extractor = setup.task.extract_answer  # metrics.jsonl: answers/format_rate, ..._formatted
    trainer.stop_strings = setup.task.stop_strings  # transformers generation (vLLM: above)
    use_console(trainer, run_dir / HELDOUT_FILE if run.heldout_eval_steps > 0 else None)
    return trainer


# The options a start line names when the world's defaults set them (not a flag or the YAML).
_SHOWN_DEFAULTS = ("max_steps", "max_completion_length", "per_device_train_batch_size", "num_generations",
                   "learning_rate", "eval_problems", "eval_k", "heldout_eval_steps")  # fmt: skip


def start_line(config: Any, run: RunArguments) -> str:
    """The first line of a run: which defaults applied, what the method changes compared with GRPO (also marked
    as said, so EAPOTrainer does not repeat it) and a rough cost (`eapo.trainer.summary`)."""
    from eapo.trainer.summary import mark_announced, method_line

    mark_announced(config)
    shown = [f"{k} {run.applied_defaults[k]}" for k in _SHOWN_DEFAULTS if k in run.applied_defaults]
    defaults = f"{run.defaults} defaults" + (f" ({', '.join(shown)}, ...)" if shown else "")
    if run.resume:
        defaults = f"resuming {run.resume} with its saved options"
    cost = _cost(config, run)
    if run.max_train_minutes > 0:
        cost = f"{run.max_train_minutes:g} minutes of training steps, at most {config.max_steps} steps (at most {cost})"
    return f"eapo train: {defaults}; {method_line(config)}; cost: {cost}"


def recipe_hint(config: Any, run: RunArguments) -> str | None:
    """A second start line for a run on one of the models `eapo model` makes, on a CPU, at TRL's learning rate (a
    real-model default, not set by a flag or a YAML): what to expect, and the shipped recipe that learns there
    (`eapo.trainer.recipes.CPU_RECIPES`). None otherwise, and when resuming."""
    import torch

    from eapo.trainer.recipes import RECIPES_DIR, cpu_recipe_for

    if run.resume or run.defaults != "real-model" or "learning_rate" not in run.applied_defaults:
        return None
    model_dir = run.model_path or run.model_name_or_path
    recipe = None if torch.cuda.is_available() else cpu_recipe_for(model_dir)
    if recipe is None:
        return None
    import yaml

    path = RECIPES_DIR / recipe.file
    options = yaml.safe_load(path.read_text()) or {}
    lora = f"LoRA rank {options.get('lora_r', '?')}, " if options.get("use_peft") else ""
    return (
        f"note: these are TRL's defaults, sized for GPUs (learning rate {config.learning_rate:g}, "
        f"{config.per_device_train_batch_size} completions a step): expect a CPU run of them to change this model "
        f"little. The recipe measured to learn on a CPU ({lora}learning rate {options.get('learning_rate', '?')}, "
        f"{options.get('per_device_train_batch_size', '?')} completions a step, {options.get('max_steps', '?')} "
        f"steps; docs/benchmarks.md): eapo train --config {path} --model_path {model_dir}"
    )


def _cost(config: Any, run: RunArguments) -> str:
    from accelerate import PartialState

    from eapo.io import safetensors_parameters
    from eapo.trainer.summary import run_cost
    from eapo.world import BASE_MODEL_DIR

    model_dir = Path(run.model_path or run.model_name_or_path or BASE_MODEL_DIR)
    try:
        vocab = json.loads((model_dir / "config.json").read_text()).get("vocab_size")
    except (OSError, ValueError, AttributeError):
        vocab = None
    steps, every = config.max_steps, run.heldout_eval_steps
    periodic = (1 + steps // every + (1 if steps % every else 0)) if every > 0 else 0
    evals = run.eval_problems * run.eval_k * (2 if run.eval_before else 1)
    evals += periodic * run.heldout_eval_problems * run.heldout_eval_k
    saves = steps // config.save_steps if config.save_strategy == "steps" else 0  # CheckpointEverySaveSteps
    return run_cost(
        steps=steps,
        completions_per_step=config.per_device_train_batch_size * config.gradient_accumulation_steps
        * PartialState().num_processes,
        max_rounds=config.dynamic_sampling_max_rounds if config.dynamic_sampling else 1,
        completion_tokens=config.max_completion_length,
        eval_completions=evals,
        eval_tokens=run.eval_max_new_tokens or config.max_completion_length,
        parameters=safetensors_parameters(model_dir),
        micro_batch_rows=config.per_device_train_batch_size,
        vocab_size=vocab if isinstance(vocab, int) else None,
        checkpoints=min(saves, config.save_total_limit or saves),
    )  # fmt: skip


def _write_report(run_dir: Path, seed: int, problems: int) -> str:
    """report.html, or one line saying why it was skipped (matplotlib missing): the run itself is done."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return "skipped (matplotlib is not installed: pip install matplotlib, then `eapo report " + str(run_dir) + "`)"
    from eapo.analysis.report import write_report
    from eapo.trainer.reliability import RewardFunctionError

    try:
        return str(write_report(run_dir, problems=problems, show=min(4, problems), seed=seed))
    except RewardFunctionError as err:
        return f"not written: {err}"
