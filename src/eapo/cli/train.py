"""`eapo train`: RL on the embedded tiny countdown world (or a model folder), one run folder per run.

Options are parsed by TRL's `TrlParser` over `RunArguments` (run, task, model, evaluation) and `EAPOConfig`
(the method and every TRL GRPOConfig field), in increasing priority: the world's defaults
(`TINY_WORLD_DEFAULTS` for the shipped policy), a YAML config (`--config FILE`, TRL's format: a flat mapping of
option: value, plus an optional `env:` mapping), then command-line flags with TRL's names. Only the options
set by the defaults, the YAML or a flag are passed to `EAPOConfig`, so a method's preset fills exactly the
fields nobody set (`EAPOConfig.explicit_fields`).

The run folder (`--output_dir`, default `runs/<method>-seed<seed>`) gets `config.yaml` (the options the run
was started with; `eapo train --config RUN_DIR/config.yaml` reproduces it), `config.json` (every resolved
field), `metrics.jsonl` (one line per optimizer step), `heldout.jsonl` (held-out accuracy every
`--heldout_eval_steps` steps, see `eapo.evaluation.heldout`), `checkpoint-*/` (atomic), `model/` (the final
policy, safetensors), `eval_before.json` and `eval.json` (held-out accuracy before and after) and
`report.html`. `--resume RUN_DIR` continues a run from its newest loadable checkpoint with the options of
its `config.yaml` (flags after it override them). Ctrl-C saves a checkpoint at the end of the current step
and stops (a second Ctrl-C stops at once); the message says how to resume. Every option is checked before
anything is loaded or written (`eapo.cli.validate`, exit code 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from eapo.cli.validate import ValidationError, saved_nothing
from eapo.models.policy import ModelArguments
from eapo.tasks.registry import TaskArguments
from eapo.trainer.defaults import TINY_WORLD_DEFAULTS, defaults_for  # noqa: F401 (TINY_WORLD_DEFAULTS: re-export)

AUTO = "__auto__"
CONFIG_YAML = "config.yaml"
HELP_FILE = Path(__file__).with_name("train_help.txt")  # `eapo train --help`, rendered ahead (see `render_help`)
HELP_WIDTH = 110


@dataclass
class RunArguments(TaskArguments, ModelArguments):
    """`eapo train` options that are not EAPOConfig fields (task, model and LoRA options: see the bases)."""

    _argument_group_name: ClassVar[str] = "eapo train: run, task, model and evaluation options"

    model_path: str | None = field(
        default=None, metadata={"help": "Model folder to train (default: the shipped tiny-world base policy)."}
    )
    eval_problems: int = field(default=200, metadata={"help": "Held-out problems evaluated before and after."})
    eval_k: int = field(default=8, metadata={"help": "Samples per held-out problem (avg@k, pass@k)."})
    eval_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the evaluation."})
    report: bool = field(default=True, metadata={"help": "Write report.html (`eapo report`) at the end of training."})
    report_problems: int = field(
        default=32, metadata={"help": "Held-out prompts the end-of-run report samples (histograms, token view)."}
    )
    resume: str | None = field(
        default=None,
        metadata={"help": "Continue the run in this folder from its newest loadable checkpoint (its saved options)."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start a fresh run in a non-empty --output_dir, deleting what is there (else refused)."},
    )
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
    # The options the run was started with (defaults, YAML and flags resolved to one mapping): config.yaml.
    inputs: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    defaults: str = field(default="tiny-world", init=False)  # which set of world defaults applied (config.json)
    applied_defaults: dict[str, Any] = field(default_factory=dict, init=False, repr=False)  # set by them, not by you


def _trl_parser_class() -> type:
    from trl import TrlParser

    class TrainParser(TrlParser):
        """TRL's parser, with argparse's usage dump replaced by one line (exit code 2)."""

        def error(self, message: str) -> None:  # type: ignore[override]
            raise ValidationError(f"{message} (see `eapo train --help`)")

    return TrainParser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """One spelling per option (`--max_steps`, not also `--max-steps`, which still parses)."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        shown = [o for o in action.option_strings if not (o.startswith("--") and "-" in o[2:])]
        if not shown or shown == action.option_strings:
            return super()._format_action_invocation(action)
        copy = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar)
        return super()._format_action_invocation(copy)


def build_parser() -> Any:
    """TRL's `TrlParser` over (RunArguments, EAPOConfig), its options in groups: eapo's method options, then the
    run, task, model and evaluation options, then model loading and LoRA (TRL's ModelConfig), then TRL's own.
    `--model_name_or_path` (TRL's name) is a hidden alias of `--model_path`; `--no_X` (= `--X false`) is hidden."""
    from trl import GRPOConfig, ModelConfig

    from eapo.trainer.config import EAPOConfig

    parser = _trl_parser_class()(
        (RunArguments, EAPOConfig),
        prog="eapo train",
        usage="eapo train [--config YAML] [--resume RUN_DIR] [--OPTION VALUE ...]",
        description="RL with token-level entropy credit (EAPO and its baselines) through TRL's GRPOTrainer. "
        "Defaults are the tiny world's (the shipped policy); where a real model's differ, both are shown.",
        epilog="Precedence: the world's defaults < --config YAML < flags. A true/false option --X also takes --no_X "
        "(= --X false); --model_name_or_path is TRL's name of --model_path. Docs: README.md, docs/method.md.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--config", metavar="YAML", help="A YAML file of option: value (TRL's format; flags win).")
    own = {f.name for f in dataclasses.fields(EAPOConfig)} - {f.name for f in dataclasses.fields(GRPOConfig)}
    loading = {f.name for f in dataclasses.fields(ModelConfig)}
    run_group = next(g for g in parser._action_groups if g.title == RunArguments._argument_group_name)
    method = parser.add_argument_group("eapo method options (EAPOConfig)")
    model = parser.add_argument_group("model loading and LoRA (TRL ModelConfig)")
    trl = parser.add_argument_group("TRL options (GRPOConfig, transformers TrainingArguments)")
    for group in (parser._optionals, run_group):
        for action in list(group._group_actions):
            if action.dest in ("help", "config") or (group is run_group and action.dest not in loading):
                continue
            group._group_actions.remove(action)
            (method if action.dest in own else model if action.dest in loading else trl)._group_actions.append(action)
    for action in parser._actions:
        if action.dest == "model_name_or_path" or (action.option_strings[:1] or [""])[0].startswith("--no_"):
            action.help = argparse.SUPPRESS
    run_group._group_actions.sort(key=lambda a: a.dest != "model_path")  # the model first, then the task
    rest = [g for g in parser._action_groups if g not in (method, run_group, model, trl)]
    parser._action_groups = [*rest, method, run_group, model, trl]
    return parser


def render_help() -> str:
    """`eapo train --help` as the parser prints it at a fixed width (shipped as train_help.txt, so that
    `--help` answers without importing torch; a test keeps the file equal to this). Regenerate it with
    `python -c 'import eapo.cli.train as t; t.HELP_FILE.write_text(t.render_help())'`."""
    from eapo.trainer.defaults import REAL_MODEL_DEFAULTS

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_WIDTH)
    try:
        parser = build_parser()
        tiny = world_defaults(None)[1]
        parser.set_defaults(**tiny)
        for action in parser._actions:
            real = REAL_MODEL_DEFAULTS.get(action.dest, action.default)
            if action.help not in (None, argparse.SUPPRESS) and real != action.default:
                action.help = f"{action.help} (default: tiny world %(default)s; real model {real})"
        return parser.format_help()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def _actions(parser: Any) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}


def _check_value(path: Path, key: str, value: Any, action: argparse.Action) -> Any:
    """A YAML value checked (and converted, as a flag would be) against the option's type; one line if wrong."""
    if value is None:
        return None
    if isinstance(value, list):
        if action.nargs not in ("+", "*") and action.type is not str:
            raise ValidationError(f"config {path}: {key}: expected one value, got the list {value}")
        return [_check_value(path, key, v, action) for v in value] if action.nargs in ("+", "*") else value
    kind = action.type
    name = getattr(kind, "__name__", str(kind))
    expected = {"int": "an integer", "float": "a number", "string_to_bool": "true or false"}.get(name)
    wrong = (
        (name == "int" and (isinstance(value, bool) or not isinstance(value, (int, str))))
        or (name == "float" and (isinstance(value, bool) or not isinstance(value, (int, float, str))))
        or (name == "string_to_bool" and not isinstance(value, (bool, str)))
    )
    try:
        converted = value if wrong or kind is None or isinstance(value, bool) else kind(str(value))
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        wrong = True
    if wrong:
        raise ValidationError(f"config {path}: {key}: expected {expected or name}, got {value!r}")
    if isinstance(converted, enum.Enum):
        converted = converted.value
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(str(c) for c in action.choices)
        raise ValidationError(f"config {path}: {key}: expected one of {choices}, got {value!r}")
    return converted


def read_config(path: str | Path, parser: Any) -> dict[str, Any]:
    """A `--config` YAML file as a checked mapping (unknown keys and wrong types: one line naming file and key).
    An `env:` mapping sets environment variables, as TRL's parser does."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValidationError(f"config: cannot read {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"config {path}: expected a mapping of option: value")
    env = data.pop("env", None) or {}
    if not isinstance(env, dict):
        raise ValidationError(f"config {path}: env: expected a mapping of VARIABLE: value")
    for key, value in env.items():
        os.environ[str(key)] = str(value)
    actions = _actions(parser)
    out = {}
    for key, value in data.items():
        if key not in actions:
            close = difflib.get_close_matches(str(key), list(actions), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValidationError(f"config {path}: unknown option {key!r}{hint}: see `eapo train --help`")
        out[key] = _check_value(path, key, value, actions[key])
    return out


def _given(parser: Any, argv: list[str]) -> dict[str, Any]:
    """The options set on the command line (whatever their value), with their parsed values."""
    unset = object()
    saved = [(action, action.default) for action in parser._actions]  # per action: --x and --no_x share a dest
    for action, _ in saved:
        action.default = unset
    try:
        namespace, _ = parser.parse_known_args(argv)
    finally:
        for action, default in saved:
            action.default = default
    return {k: v for k, v in vars(namespace).items() if v is not unset and k != "config"}


def world_defaults(model_path: str | None) -> tuple[str, dict[str, Any]]:
    """The defaults of the world a run trains in (`eapo.trainer.defaults.defaults_for`): ("tiny-world", ...) for
    the shipped policy and its checkpoints, ("real-model", ...) for any other model."""
    import torch

    name, defaults = defaults_for(model_path)
    defaults.setdefault("bf16", torch.cuda.is_available())  # real models: TRL's bf16 on a GPU, float32 on a CPU
    return name, defaults


def _yaml_safe(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_yaml_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _yaml_safe(v) for k, v in value.items()}
    return value


def _split_argv(argv: list[str]) -> tuple[list[str], str | None, str | None]:
    """(argv without --config/--resume, the --config file, the --resume folder)."""
    out, config, resume = [], None, None
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag in ("--config", "--resume"):
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                what = "a YAML file" if flag == "--config" else "a run folder (the output_dir of an earlier run)"
                raise ValidationError(f"{flag[2:]}: {flag} needs {what}")
            config, resume = (argv[i + 1], resume) if flag == "--config" else (config, argv[i + 1])
            i += 2
            continue
        out.append(flag)
        i += 1
    return out, config, resume


def _resume_config(run_dir: str, config: str | None) -> Path:
    """The saved options of the run in `run_dir` (its config.yaml)."""
    if config is not None:
        raise ValidationError("resume: --resume takes the run's saved options; change them with flags, not --config")
    path = Path(run_dir) / CONFIG_YAML
    if not path.is_file():
        raise ValidationError(
            f"resume={run_dir!r} is not an `eapo train` run folder (no {CONFIG_YAML}): pass the folder a run wrote"
        )
    return path


def default_output_dir(values: dict[str, Any]) -> str:
    """`runs/<method>-seed<seed>` for the shipped tiny-world policy, `runs/<model>-<method>-seed<seed>` for any
    other model folder (a run's `model/` or `checkpoint-N` is named after its run), so two models never share a
    run folder by default."""
    from eapo.world import BASE_MODEL_DIR

    run = f"{values['method']}-seed{values['seed']}"
    path = values.get("model_path") or values.get("model_name_or_path")
    if not path or Path(path).resolve() == Path(BASE_MODEL_DIR).resolve():
        return str(Path("runs") / run)
    folder = Path(path).resolve()
    name = folder.name
    if name == "model" or name.startswith("checkpoint-"):
        name = f"{folder.parent.name}-{name}"
    return str(Path("runs") / f"{name.replace(' ', '_')}-{run}")


def parse_args(argv: list[str]) -> tuple[Any, RunArguments]:
    """(EAPOConfig, RunArguments) from the world's defaults < `--config` YAML < flags (a `--resume`d run: its
    config.yaml < flags). Raises `ValidationError` (exit code 2, one line) on a bad option."""
    import torch

    from eapo.trainer.config import EAPOConfig

    argv, config_file, resume = _split_argv(list(argv))
    if resume is not None:
        config_file = str(_resume_config(resume, config_file))
        argv = [*argv, "--output_dir", resume]
    parser = build_parser()
    from_yaml = read_config(config_file, parser) if config_file else {}
    given = {**from_yaml, **_given(parser, argv)}
    name, defaults = world_defaults(given.get("model_path") or given.get("model_name_or_path"))
    parser.set_defaults(**defaults, use_cpu=not torch.cuda.is_available(), output_dir=AUTO)
    parser.set_defaults_with_config(**from_yaml)  # TRL's: YAML values replace the defaults
    namespace, rest = parser.parse_known_args(argv)
    if rest:
        raise ValidationError(f"unrecognised argument {rest[0]!r}: see `eapo train --help`")
    values = vars(namespace)
    values.pop("config", None)
    if values["output_dir"] == AUTO:
        values["output_dir"] = default_output_dir(values)
    config_fields = {f.name for f in dataclasses.fields(EAPOConfig) if f.init}
    run_fields = {f.name for f in dataclasses.fields(RunArguments) if f.init}
    chosen = set(given) | set(defaults) | {"output_dir", "use_cpu"}
    inputs = {k: values[k] for k in sorted(config_fields & chosen)}
    try:
        config = EAPOConfig(**inputs)
        run = RunArguments(**{k: values[k] for k in run_fields})
    except ValueError as err:
        message = str(err).strip().splitlines()[0]
        if "must be divisible by num_generations" in message:
            message = _group_size_message(values)
        raise ValidationError(message) from None
    run.resume = resume
    run.defaults = name
    run.applied_defaults = {k: v for k, v in defaults.items() if k not in given and k != "bf16"}
    if run.eval_max_new_tokens is None:
        run.eval_max_new_tokens = config.max_completion_length
    run_defaults = RunArguments()
    run_inputs = {k: values[k] for k in sorted(run_fields) if values[k] != getattr(run_defaults, k)}
    run.inputs = _yaml_safe({**inputs, **run_inputs, "resume": None, "overwrite_output_dir": False})
    return config, run


def _group_size_message(values: dict[str, Any]) -> str:
    """TRL's "generation_batch_size (4) must be divisible by num_generations (3)" in the user's flags, with a
    batch size that works (each generation batch must hold whole groups of num_generations completions)."""
    import math

    from accelerate import PartialState

    group, batch = values["num_generations"], values["per_device_train_batch_size"]
    processes = PartialState().num_processes
    if values.get("generation_batch_size"):
        return (
            f"generation_batch_size={values['generation_batch_size']} is not a multiple of num_generations={group}: "
            f"use --generation_batch_size {math.ceil(values['generation_batch_size'] / group) * group}"
        )
    steps = values.get("steps_per_generation") or values["gradient_accumulation_steps"]
    unit = group // math.gcd(group, steps * processes)  # the batch must be a multiple of this
    fixed = math.ceil(batch / unit) * unit
    where = f" x {steps} steps_per_generation" if steps > 1 else ""
    where += f" x {processes} processes" if processes > 1 else ""
    return (
        f"per_device_train_batch_size={batch}{where} completions per generation batch is not a multiple of "
        f"num_generations={group} (each prompt's group of completions must fit in one batch): use "
        f"--per_device_train_batch_size {fixed}, or a --num_generations that divides it"
    )


def heldout_accuracy(
    model: Any,
    tokenizer: Any,
    problems: Any,
    run: RunArguments,
    seed: int,
    when: str = "after",
    reward_error_policy: str = "raise",
) -> dict[str, Any]:
    """avg@k and pass@j on held-out `problems`: a `Task` (its held-out rows, scored by its reward)
    or a list of tiny-world `CountdownProblem`s (scored by `countdown_reward`); with the problems evaluated
    and their correct counts (`eapo.evaluation.heldout.problem_record`: pairing and the evaluation's standard
    error). The reward is guarded as in training (`reward_error_policy`); `when` labels the progress bar."""
    from eapo.evaluation.heldout import task_accuracy
    from eapo.tasks.countdown import countdown_dataset
    from eapo.tasks.rewards import countdown_reward

    if hasattr(problems, "heldout"):
        rows, reward = problems.heldout, problems.reward
    else:
        rows, reward = countdown_dataset(problems), countdown_reward
    return task_accuracy(
        model, tokenizer, rows, reward, run.eval_k, seed=seed, progress=True, per_problem=True,
        reward_error_policy=reward_error_policy, desc=f"held-out eval ({when})", **_eval_sampling(run),
    )  # fmt: skip


def _eval_sampling(run: RunArguments) -> dict[str, Any]:
    """The sampling options of every held-out evaluation of a run (before/after and periodic)."""
    return {
        "threshold": run.eval_threshold,
        "temperature": run.eval_temperature,
        "top_p": run.eval_top_p,
        "max_new_tokens": run.eval_max_new_tokens,
        "batch_size": run.eval_batch_size,
    }


# Counts that must be positive for a run to mean anything (TRL reads max_steps <= 0 as "train by epochs").
_POSITIVE = ("max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "max_completion_length",
             "logging_steps", "num_iterations")  # fmt: skip
# report_to name -> the package it needs
_TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml",
             "clearml": "clearml", "dvclive": "dvclive", "trackio": "trackio", "swanlab": "swanlab",
             "codecarbon": "codecarbon", "neptune": "neptune", "aim": "aim", "flyte": "flytekit"}  # fmt: skip


def check_options(config: Any, run: RunArguments) -> None:
    """Option values that the config classes accept but that cannot make a sensible run."""
    import importlib.util

    from eapo.cli.validate import check_run_args

    for name in _POSITIVE:
        value = getattr(config, name, None)
        if value is not None and value < 1:
            raise ValidationError(f"{name}={value} is invalid: use a positive number (at least 1)")
    if config.save_strategy == "steps" and config.save_steps <= 0:
        raise ValidationError(f"save_steps={config.save_steps} is invalid: use a positive number, or save_strategy no")
    if config.learning_rate < 0:
        raise ValidationError(f"learning_rate={config.learning_rate} is invalid: use a value >= 0")
    for tracker in config.report_to or []:
        package = _TRACKERS.get(tracker, tracker)
        if tracker not in ("none", "all") and importlib.util.find_spec(package) is None:
            raise ValidationError(
                f"report_to={tracker}: the {package} package is not installed: pip install {package}, "
                "or leave it out (--report_to none); metrics.jsonl is written either way"
            )
    check_run_args(run)
    periodic = run.heldout_eval_steps, run.heldout_eval_k, run.heldout_eval_problems
    if periodic[0] < 0 or (periodic[0] > 0 and min(periodic[1:]) < 1):
        raise ValidationError(
            "heldout_eval_steps={}, heldout_eval_k={}, heldout_eval_problems={}: use heldout_eval_steps >= 0 "
            "(0 = off) and heldout_eval_k, heldout_eval_problems >= 1".format(*periodic)
        )


def _check_run_folder(config: Any, run: RunArguments) -> Path | None:
    """A fresh run needs an empty (or new) output_dir unless --overwrite_output_dir; a resumed one, a checkpoint
    that loads. Returns the checkpoint to resume from (None for a fresh run)."""
    from eapo.cli.validate import check_resume

    if run.resume:
        return check_resume(run.resume)
    out = Path(config.output_dir)
    if out.exists() and not out.is_dir():
        raise ValidationError(f"output_dir={config.output_dir!r} is a file: pass a folder")
    if out.is_dir() and any(out.iterdir()) and not run.overwrite_output_dir and not saved_nothing(out):
        raise ValidationError(
            f"output_dir={config.output_dir!r} is not empty{_resume_hint(out, run)}pass another --output_dir, or "
            "--overwrite_output_dir true to delete what is there"
        )
    return None


def _model_of(values: dict[str, Any]) -> str | None:
    """The model folder a run trains (resolved), None for the shipped tiny-world policy."""
    path = values.get("model_path") or values.get("model_name_or_path")
    return str(Path(path).resolve()) if path else None


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


def _check_before_writing(config: Any, run: RunArguments) -> Path | None:
    """Every check that needs no model weights, before anything in the run folder changes.
    Returns the checkpoint to resume from (None for a fresh run)."""
    from eapo.cli.validate import check_model_and_tokenizer
    from eapo.tasks.countdown import CountdownProblem, format_prompt
    from eapo.world import BASE_MODEL_DIR

    check_options(config, run)
    checkpoint = _check_run_folder(config, run)
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
        raise ValidationError(str(err)) from None
    except TaskError as err:
        raise ValidationError(f"task: {err}") from None


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
                reward_error_policy=reward_error_policy, desc=f"held-out eval ({when})", **_eval_sampling(run),
            ),  # fmt: skip
            failures,
        )
        return result or {}

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


def train(config: Any, run: RunArguments) -> dict[str, Any]:
    """Run one training and fill its run folder (or continue it with `run.resume`); returns the evaluation summary.
    Raises `Interrupted` after Ctrl-C (a checkpoint of the last finished step is saved). A run that trains to the
    end always saves its model, eval.json and summary: a held-out evaluation whose reward fails (under
    reward_error_policy raise) is said in one line and listed in eval.json's "failed"."""
    from accelerate import PartialState

    from eapo.io import atomic_write_text

    main_process = PartialState().is_main_process
    checkpoint = _check_before_writing(config, run)
    task = _load_task(config, run)
    run_dir = Path(config.output_dir)
    if main_process:
        print(start_line(config, run), flush=True)
    trainer, failures = None, {}
    try:
        setup = _prepare(config, run, task)  # before anything is written: a model that does not load leaves no file
        if main_process:
            checkpoint = _start_run_folder(run_dir, config, run, checkpoint)
        if setup.dropped_long_prompts and main_process:
            print(f"dropped {setup.dropped_long_prompts} train prompts longer than {run.max_prompt_length} tokens")
        evaluate = main_process and len(setup.task.heldout) > 0  # other processes go on to training
        before = _heldout_before(run_dir, setup, config, run, failures) if evaluate and run.eval_before else None
        trainer = _trainer(config, run, setup, run_dir, failures)
        start = time.time()
        if _fit(trainer, checkpoint):
            raise _interrupted(run_dir, trainer)
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
        raise _interrupted(run_dir, trainer) from None
    summary = {
        "problems": min(run.eval_problems, len(setup.task.heldout)),
        "k": run.eval_k,
        "temperature": run.eval_temperature,
        "before": before,
        "after": after or {},
        "failed": failures,
        "train_seconds": seconds,
        "steps": trainer.state.global_step,
    }
    if main_process:
        atomic_write_text(run_dir / "eval.json", json.dumps(summary, indent=2) + "\n")
        if run.report:
            summary["report"] = _write_report(run_dir, config.seed, run.report_problems)
    return summary


def _trainer(config: Any, run: RunArguments, setup: Any, run_dir: Path, failures: dict[str, str]) -> Any:
    """The run's `EAPOTrainer` with eapo train's callbacks (step log, no-signal warning, periodic held-out eval,
    console) and its model card pointing at `RUN_DIR/model`."""
    from eapo.trainer import EAPOTrainer
    from eapo.trainer.callbacks import MetricsJsonl, NoLearningSignalCallback, use_console
    from eapo.trainer.checkpoint import HELDOUT_FILE

    callbacks = [MetricsJsonl(run_dir / "metrics.jsonl"), NoLearningSignalCallback(emit=_warn)]
    if run.heldout_eval_steps > 0 and len(setup.task.heldout) > 0:
        callbacks.append(heldout_callback(run_dir, setup, run, config.seed, config.reward_error_policy, failures))
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
    return f"eapo train: {defaults}; {method_line(config)}; cost: {_cost(config, run)}"


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
    saves = -(-steps // config.save_steps) if config.save_strategy == "steps" else 0  # the last step saves too
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


def main(argv: list[str] | None = None) -> int:
    """`eapo train`: 0 on success, 2 on a bad option or input (one line on stderr, nothing written), 130 after
    Ctrl-C (one line saying how to resume)."""
    from eapo.cli.validate import EXIT_CODE
    from eapo.errors import EapoError, RewardFunctionError

    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        print(HELP_FILE.read_text() if HELP_FILE.is_file() else render_help(), end="")
        return 0
    try:
        config, run = parse_args(argv)
        summary = train(config, run)
    except ValidationError as err:
        print(f"eapo train: {err}", file=sys.stderr)
        return err.code
    except EapoError as err:  # the library's bad-input errors: one line, exit code 2
        print(f"eapo train: {err}", file=sys.stderr)
        return EXIT_CODE
    except RewardFunctionError as err:
        print(f"eapo train: {err}", file=sys.stderr)
        return 1
    except Interrupted as err:
        print(f"eapo train: {err}", file=sys.stderr)
        return 130
    from accelerate import PartialState

    if PartialState().is_main_process:  # one summary per run, not per process
        print_summary(summary, config, run)
    if summary["failed"]:  # trained and saved, but an evaluation's reward failed (said above, in eval.json)
        which = ", ".join(summary["failed"])
        print(f"eapo train: held-out evaluation failed ({which}): see eval.json", file=sys.stderr)
        return 1
    return 0


def print_summary(summary: dict[str, Any], config: Any, run: RunArguments) -> None:
    k = run.eval_k
    if summary["after"]:
        print(f"\nheld-out ({summary['problems']} problems x {k} samples, temperature {run.eval_temperature}):")
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


if __name__ == "__main__":
    sys.exit(main())
