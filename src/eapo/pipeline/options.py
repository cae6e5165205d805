"""The options of a training run, typed: `EAPOConfig` (the method and every TRL field) and `RunArguments` (task,
model, evaluation and run-folder options), resolved as `eapo train` resolves them and checked in one place.

Priority, lowest first: the world's defaults (`eapo.trainer.defaults`: the tiny world's for the shipped policy,
a CPU-sized budget for any other model), then the options given (`resolve_options`: a mapping, e.g. a YAML file
and flags merged by the command line, or `train_options(**fields)` from a notebook). Only the options the
defaults or the caller set are passed to `EAPOConfig`, so a method's preset fills exactly the fields nobody set
(`EAPOConfig.explicit_fields`). `check_options` refuses values the config classes accept but that cannot make a
sensible run. Every problem is an `eapo.errors.EapoError` (one line).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from eapo.errors import ConfigError, EapoError, InputError, require
from eapo.models.policy import ModelArguments
from eapo.tasks.registry import TaskArguments
from eapo.trainer.defaults import defaults_for

AUTO = "__auto__"


CONFIG_YAML = "config.yaml"


@dataclass
class RunArguments(TaskArguments, ModelArguments):
    """`eapo train` options that are not EAPOConfig fields (task, model and LoRA options: see the bases)."""

    _argument_group_name: ClassVar[str] = "eapo train: run, task, model and evaluation options"

    model_path: str | None = field(
        default=None, metadata={"help": "Model folder to train (default: the shipped tiny-world base policy)."}
    )
    max_train_minutes: float = field(
        default=0.0,
        metadata={
            "help": "Stop training after this many minutes of optimizer steps (periodic evaluations not counted; a "
            "resumed run continues its budget); max_steps still caps the run; 0 = no time limit."
        },
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
    heldout_eval_problems: int = field(
        default=100,
        metadata={
            "help": "Held-out problems of each periodic eval: the task's first N (the final eval takes the first "
            "eval_problems; the run loads the larger number)."
        },
    )
    heldout_eval_k: int = field(default=8, metadata={"help": "Samples per problem of each periodic eval."})
    # The options the run was started with (defaults, YAML and flags resolved to one mapping): config.yaml.
    inputs: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    defaults: str = field(default="tiny-world", init=False)  # which set of world defaults applied (config.json)
    applied_defaults: dict[str, Any] = field(default_factory=dict, init=False, repr=False)  # set by them, not by you


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

    from eapo.pipeline.checks import check_run_args

    for name in _POSITIVE:
        value = getattr(config, name, None)
        if value is not None and value < 1:
            raise InputError(f"{name}={value} is invalid: use a positive number (at least 1)")
    if config.save_strategy == "steps" and config.save_steps <= 0:
        raise InputError(f"save_steps={config.save_steps} is invalid: use a positive number, or save_strategy no")
    if config.learning_rate < 0:
        raise InputError(f"learning_rate={config.learning_rate} is invalid: use a value >= 0")
    for tracker in config.report_to or []:
        package = _TRACKERS.get(tracker, tracker)
        if tracker not in ("none", "all") and importlib.util.find_spec(package) is None:
            raise InputError(
                f"report_to={tracker}: the {package} package is not installed: pip install {package}, "
                "or leave it out (--report_to none); metrics.jsonl is written either way"
            )
    check_run_args(run)
    if run.model_revision not in (None, "main"):  # TRL's hub option: eapo loads local folders only
        raise InputError(
            f"model_revision={run.model_revision}: eapo loads a local model folder (--model_path), which has no "
            "revisions; save that revision into a folder and pass it"
        )
    if run.use_peft:
        require("peft", "peft", "lora", "use_peft (a LoRA adapter)")
    periodic = run.heldout_eval_steps, run.heldout_eval_k, run.heldout_eval_problems
    if periodic[0] < 0 or (periodic[0] > 0 and min(periodic[1:]) < 1):
        raise InputError(
            "heldout_eval_steps={}, heldout_eval_k={}, heldout_eval_problems={}: use heldout_eval_steps >= 0 "
            "(0 = off) and heldout_eval_k, heldout_eval_problems >= 1".format(*periodic)
        )


def _model_of(values: dict[str, Any]) -> str | None:
    """The model folder a run trains (resolved), None for the shipped tiny-world policy."""
    path = values.get("model_path") or values.get("model_name_or_path")
    return str(Path(path).resolve()) if path else None


# Other names of options, each moved onto its option before the layers (saved options, --config, flags) merge, so
# that a layer's value under either name beats a lower layer's (a conflicting pair is refused). transformers 5's old
# names: the old name only counts where the new one is unset, and both world default sets set
# activation_checkpointing, so an old name given alone was dropped without a word. TRL's name of the model: a
# YAML's model_path beat a --model_name_or_path flag.
RENAMED = {"gradient_checkpointing": "activation_checkpointing",
           "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
           "model_name_or_path": "model_path"}  # fmt: skip


def with_new_names(given: Mapping[str, Any]) -> dict[str, Any]:
    """`given` with each other name of `RENAMED` moved onto its option (an unset one, None, dropped); ConfigError
    where both are given with different values."""
    out = dict(given)
    for old, new in RENAMED.items():
        if old not in out:
            continue
        value = out.pop(old)
        if value is None:
            continue
        if out.get(new) is not None and out[new] != value:
            raise ConfigError(
                f"{old}={value} and {new}={out[new]} disagree: {old} is another name of {new}, give only {new}"
            )
        out[new] = value
    return out


def resolve_options(given: Mapping[str, Any], resume: str | None = None) -> tuple[Any, RunArguments]:
    """`(EAPOConfig, RunArguments)` of a run from the options `given` (typed values by field name) over the world's
    defaults; `resume`: the run folder it continues (its saved options are in `given`). `run.inputs` records the
    options the run was started with (its config.yaml). Old option names (`RENAMED`) count as their new ones."""
    import torch

    from eapo.trainer.config import EAPOConfig

    given = with_new_names(given)

    config_fields = {f.name for f in dataclasses.fields(EAPOConfig) if f.init}
    run_fields = {f.name for f in dataclasses.fields(RunArguments) if f.init}
    for key in given:
        if key not in config_fields and key not in run_fields:
            close = difflib.get_close_matches(str(key), sorted(config_fields | run_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"unknown option {key!r}{hint}: see `eapo train --help`")
    for key in ("model_path", "output_dir", "task"):  # "" would be the tiny world's model, this folder, no task
        if isinstance(given.get(key), str) and not given[key].strip():
            raise InputError(f"{key}='' is invalid: give a path, or leave --{key} out")
    name, defaults = world_defaults(given.get("model_path") or given.get("model_name_or_path"))
    if given.get("fp16"):  # the user's precision: no bf16 default beside it (TRL refuses both)
        defaults["bf16"] = False
    values = {"use_cpu": not torch.cuda.is_available(), **defaults, **given}
    field_defaults = {f.name: _default_of(f) for f in dataclasses.fields(EAPOConfig) if f.init}
    if values.get("output_dir") in (None, AUTO):
        values["output_dir"] = default_output_dir({**field_defaults, **values})
    inputs = {k: values[k] for k in sorted(config_fields & set(values))}
    try:
        config = EAPOConfig(**inputs)
        run = RunArguments(**{k: v for k, v in values.items() if k in run_fields})
    except EapoError:
        raise
    except (ValueError, OverflowError) as err:  # OverflowError: a huge number TRL turns into an int
        message = str(err).strip().splitlines()[0]
        if "must be divisible by num_generations" in message:
            message = _group_size_message({**field_defaults, **values})
        raise ConfigError(message) from None
    run.resume = resume
    run.defaults = name
    run.applied_defaults = {k: v for k, v in defaults.items() if k not in given and k != "bf16"}
    if run.eval_max_new_tokens is None:
        run.eval_max_new_tokens = config.max_completion_length
    # every run option that was given or set by the world's defaults (a given value equal to the field's default
    # too: the other world's default may differ, e.g. eval_problems 200 vs the real-model set's 16)
    run_inputs = {k: v for k, v in sorted(values.items()) if k in run_fields}
    run.inputs = _yaml_safe({**inputs, **run_inputs, "resume": None, "overwrite_output_dir": False})
    if "use_cpu" not in given:  # this machine's, not the run's: `--config RUN/config.yaml` on a GPU uses the GPU
        run.inputs.pop("use_cpu", None)
    return config, run


def train_options(**fields: Any) -> tuple[Any, RunArguments]:
    """`(EAPOConfig, RunArguments)` of a run from keyword options, as `eapo train --FIELD VALUE ...` would resolve
    them (the world's defaults for the rest): `train_options(method="grpo", max_steps=50, eval_problems=50)`."""
    return resolve_options(fields)


def _default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
