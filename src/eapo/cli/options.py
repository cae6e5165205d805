"""Options shared by the commands, so that one concept has one flag everywhere: `--model_path` for a model
folder, `--task` and its flags as in `eapo train`, `--eval_k` samples per problem, `--eval_problems`
problems, `--max_steps` steps, `--output_dir` the folder results go to (older spellings stay as aliases)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from eapo.cli.validate import ValidationError


def add_model_argument(parser: argparse.ArgumentParser, positional: bool = False, default_help: str = "") -> None:
    """`--model_path DIR` (and, with `positional`, the same as an optional first argument)."""
    text = "model folder (safetensors, with its tokenizer)" + (f"; default: {default_help}" if default_help else "")
    if positional:
        parser.add_argument("model", nargs="?", default=None, metavar="MODEL_PATH", help=f"{text} (= --model_path)")
    parser.add_argument("--model_path", "--model", dest="model_path", default=None, help=text)


def model_path(args: argparse.Namespace) -> str | None:
    """The model folder of a command's arguments (positional or --model_path; both given must agree)."""
    positional = getattr(args, "model", None)
    if positional and args.model_path and positional != args.model_path:
        raise ValidationError(f"two models given ({positional} and --model_path {args.model_path}): pass one")
    return positional or args.model_path


# the tasks and rewards of `eapo.tasks.registry` (its TaskArguments' help says the same; importing it here would
# import `datasets` for every --help)
TASK_HELP = ("countdown (the tiny world), arithmetic, wordproblems[:D] (D=1..5), rg:NAME (a reasoning-gym task), "
             "or a .jsonl/.parquet/.csv file or saved datasets folder")  # fmt: skip
REWARD_HELP = "countdown, arithmetic, wordproblems, math, rg or module:function (default: the task's; math for files)"


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """The task flags of `eapo train` (`eapo.tasks.registry.TaskArguments`, `--prompt_format`)."""
    group = parser.add_argument_group("task (as in eapo train)")
    group.add_argument("--task", default="countdown", help=TASK_HELP)
    group.add_argument("--reward", default=None, help=REWARD_HELP)
    group.add_argument("--prompt_column", default="prompt", help="prompt column of a data file")
    group.add_argument("--answer_column", default="answer", help="answer column of a data file")
    group.add_argument("--prompt_format", default="auto", choices=("auto", "chat", "text"), help="as eapo train")
    group.add_argument("--system_prompt", default="auto", help="auto (the task's own), none, or the text")
    group.add_argument("--train_size", type=int, default=10_000, help="train entries of a reasoning-gym task")
    group.add_argument(
        "--threshold", type=float, default=1.0, help="a sample is correct when its reward >= this (1: full score)"
    )


def check_counts(args: argparse.Namespace, minimums: dict[str, int]) -> None:
    """Each `--flag` at least its minimum, in one line naming every bad one."""
    values = {k: getattr(args, k) for k in minimums}
    problems = [f"--{k} {v}: use at least {minimums[k]}" for k, v in values.items() if v < minimums[k]]
    if problems:
        raise ValidationError("; ".join(problems))


def load_model(path: str | None, dtype: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a model folder (default: the shipped tiny-world policy), its weights in `dtype`
    (None: as saved), checked first: a missing folder, a run folder, pickled or corrupt weights, an unknown dtype
    are one line and exit code 2."""
    from eapo.cli.validate import check_model_dir
    from eapo.models.policy import PolicyError, load_policy

    if path is not None and not (Path(path) / "adapter_config.json").is_file():
        check_model_dir(path)
    try:
        return load_policy(path, dtype=dtype)
    except PolicyError as err:
        raise ValidationError(str(err)) from None


def load_heldout(args: argparse.Namespace, problems: int) -> Any:
    """The task of the command's task flags with its first `problems` held-out problems (before any model loads:
    a bad task is one line)."""
    from eapo.tasks.registry import TaskError, load_run_task

    try:
        task = load_run_task(args, seed=getattr(args, "seed", 0), eval_size=problems)
    except TaskError as err:
        raise ValidationError(f"task: {err}") from None
    if len(task.heldout) == 0:
        raise ValidationError(f"task {args.task!r} has no held-out problems: give a data file with a test split")
    return task


def render_heldout(task: Any, args: argparse.Namespace, tokenizer: Any) -> bool:
    """Render the held-out prompts as `eapo train` renders them; returns whether they are chat messages."""
    from eapo.models.policy import render_prompts

    return render_prompts(task, tokenizer, args.prompt_format, args.system_prompt, train=False)
