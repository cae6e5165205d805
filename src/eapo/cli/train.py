"""`eapo train`: parse the options and call the library's training pipeline (`eapo.pipeline.train`).

Options are parsed by TRL's `TrlParser` over `RunArguments` (run, task, model, evaluation) and `EAPOConfig`
(the method and every TRL GRPOConfig field), in increasing priority: the world's defaults
(`TINY_WORLD_DEFAULTS` for the shipped policy), a YAML config (`--config FILE`, TRL's format: a flat mapping of
option: value, plus an optional `env:` mapping), then command-line flags with TRL's names. The options given
(YAML and flags) are resolved over the world's defaults by `eapo.pipeline.options.resolve_options`, as a
notebook's `train_options(**fields)` is. `--resume RUN_DIR` continues a run with the options of its
`config.yaml` (flags after it override them). What the run folder holds: `eapo.pipeline.training`.

Bad options are one line on stderr and exit code 2 (the parser's own `ValidationError`, the library's
`EapoError`); a reward that fails is exit code 1; Ctrl-C saves a checkpoint and exits 130 with the command that
resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import os
import sys
from pathlib import Path
from typing import Any

from eapo.cli.validate import ValidationError
from eapo.errors import EapoError
from eapo.pipeline.options import (
    CONFIG_YAML,
    RENAMED,
    RunArguments,
    resolve_options,
    with_new_names,
    world_defaults,
)
from eapo.pipeline.training import (  # noqa: F401 (re-exported: the names stay importable from here)
    Interrupted,
    TrainResult,
    heldout_accuracy,
    heldout_callback,
    start_line,
)
from eapo.trainer.defaults import TINY_WORLD_DEFAULTS  # noqa: F401 (re-exported)

HELP_FILE = Path(__file__).with_name("train_help.txt")  # `eapo train --help`, rendered ahead (see `render_help`)
HELP_WIDTH = 110


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
    `--help` answers without importing torch; a test keeps the file equal to this). Regenerate it (and the methods
    table of the docs) with `python scripts/generate_docs.py`."""
    from eapo.trainer.defaults import REAL_MODEL_DEFAULTS

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_WIDTH)
    try:
        parser = build_parser()
        tiny = world_defaults(None)[1]
        parser.set_defaults(**tiny)
        for action in parser._actions:
            if action.dest in RENAMED and action.help != argparse.SUPPRESS:
                action.help, action.default = f"Old name of --{RENAMED[action.dest]}: sets it.", argparse.SUPPRESS
                continue
            if action.dest == "bf16":  # world_defaults: a real model trains in bf16 where there is a GPU
                action.help = f"{action.help} (default: tiny world %(default)s; real model True on a GPU)"
                continue
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
    if isinstance(value, dict) and expected is None:
        return value  # a mapping option (`*_kwargs`): passed on as the mapping, as TRL's parser does
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
    except UnicodeDecodeError:
        raise ValidationError(f"config: cannot read {path}: it is not UTF-8 text; pass a YAML file") from None
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
    """The options set on the command line (whatever their value), with their parsed values; an unknown one is a
    `ValidationError`."""
    unset = object()
    saved = [(action, action.default) for action in parser._actions]  # per action: --x and --no_x share a dest
    for action, _ in saved:
        action.default = unset
    try:
        namespace, rest = parser.parse_known_args(argv)
    finally:
        for action, default in saved:
            action.default = default
    if rest:
        raise ValidationError(f"unrecognised argument {rest[0]!r}: see `eapo train --help`")
    return {k: v for k, v in vars(namespace).items() if v is not unset and k != "config"}


def _split_argv(argv: list[str]) -> tuple[list[str], str | None, str | None]:
    """(argv without --config/--resume, the --config file, the --resume folder)."""
    out, config, resume = [], None, None
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag in ("--config", "--resume"):
            if i + 1 >= len(argv) or argv[i + 1].startswith("--") or not argv[i + 1].strip():
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


def _resolved_run_options(run_dir: Path, parser: Any) -> dict[str, Any]:
    """The run options (`RunArguments`) a resumed run resolved at its start, from its config.json: under its
    config.yaml and flags, so that its evaluations stay as they started even where config.yaml left an option out
    (a folder written before 5c0a3ee: an option equal to its field default, such as a real-model run's
    `--eval_problems 200`) or a default changed since. Empty when config.json cannot be read."""
    import json

    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict):
        return {}
    actions = _actions(parser)
    names = {f.name for f in dataclasses.fields(RunArguments) if f.init} - {"resume", "overwrite_output_dir"}
    out = {}
    for key in sorted(names & set(saved) & set(actions)):
        try:
            value = _check_value(run_dir / "config.json", key, saved[key], actions[key])
        except ValidationError:
            continue  # not an option's value (config.json writes what it cannot encode as text)
        if value is not None:
            out[key] = value
    return out


# Options a resumed run cannot change: the checkpoint's optimizer (its param groups) and scheduler (its base rates)
# are restored over the ones built from the new value, so the run would record one value and train with the other.
KEPT_BY_CHECKPOINT = ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "optim")


def _check_kept_by_checkpoint(run_dir: Path, flags: dict[str, Any], config: Any) -> None:
    """A ValidationError where a flag given with `--resume` changes a `KEPT_BY_CHECKPOINT` option from the value in
    the run's config.json."""
    import json

    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return  # check_resume says what is wrong with the folder
    for key in KEPT_BY_CHECKPOINT:
        if key not in flags or not isinstance(saved, dict) or key not in saved:
            continue
        now, then = getattr(config, key), saved[key]
        now = getattr(now, "value", now)  # an enum (optim) as its text
        same = now == then or (isinstance(now, float) and isinstance(then, (int, float)) and float(then) == now)
        if not same:
            raise ValidationError(
                f"resume: --{key} {now} differs from the run's {then}: its checkpoint's optimizer and scheduler keep "
                f"the run's {key}; leave --{key} out, or train a new run (--output_dir) from the checkpoint's model"
            )


def parse_args(argv: list[str]) -> tuple[Any, RunArguments]:
    """(EAPOConfig, RunArguments) from the world's defaults < `--config` YAML < flags (a `--resume`d run: the run
    options its config.json resolved < its config.yaml < flags; its `run.inputs`, what is written back to its
    config.yaml, are config.yaml's options and the flags). Raises `ValidationError` (exit code 2, one line)
    on a bad option."""
    argv, config_file, resume = _split_argv(list(argv))
    if resume is not None:
        config_file = str(_resume_config(resume, config_file))
    parser = build_parser()
    from_yaml = read_config(config_file, parser) if config_file else {}
    given = _given(parser, argv)
    if resume is not None:
        for key in ("output_dir", "overwrite_output_dir"):
            if key in given:
                raise ValidationError(
                    f"resume: --resume continues the run in its own folder {resume}: leave out --{key}"
                )
        given["output_dir"] = resume
    from_json = _resolved_run_options(Path(resume), parser) if resume is not None else {}
    try:
        # each layer's old option names moved onto the new ones first, so that a flag beats a YAML or saved value
        # under either name
        layers = [with_new_names(layer) for layer in (from_json, from_yaml, given)]
        config, run = resolve_options({k: v for layer in layers for k, v in layer.items()}, resume=resume)
    except EapoError as err:
        raise ValidationError(str(err)) from None
    if resume is not None:
        _check_kept_by_checkpoint(Path(resume), layers[2], config)
        # config.yaml stays what the run started with, plus the flags given now: the options filled in from
        # config.json are not written into it (a second resume, or `eapo ablate`'s check of a folder's options
        # against its planned flags, would find a run with other options)
        kept = {*layers[1], *layers[2], "resume", "overwrite_output_dir"}
        run.inputs = {k: v for k, v in run.inputs.items() if k in kept}
    return config, run


def train(config: Any, run: RunArguments) -> dict[str, Any]:
    """`eapo.pipeline.train` for the command line (and `eapo compare`/`ablate`): its summary (eval.json, plus
    `report`); a bad option or input is a `ValidationError` (one line, exit code 2)."""
    from eapo.pipeline.training import train as train_run

    try:
        return train_run(config, run).summary
    except EapoError as err:
        raise ValidationError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    """`eapo train`: 0 on success, 2 on a bad option or input (one line on stderr, nothing written), 130 after
    Ctrl-C (one line saying how to resume)."""
    from eapo.errors import RewardFunctionError

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


_SUMMARY_NAMES = {"format_rate": "format rate", "accuracy_formatted": "accuracy among well-formatted"}


def print_summary(summary: dict[str, Any], config: Any, run: RunArguments) -> None:
    """Held-out numbers before -> after (with the format rate and the accuracy among well-formatted completions
    for a task that reads answers), the run folder and the report."""
    k = run.eval_k
    if summary["after"]:
        print(f"\nheld-out ({summary['problems']} problems x {k} samples, temperature {run.eval_temperature}):")
        names = [f"avg@{k}", f"pass@{k}", *(n for n in ("format_rate", "accuracy_formatted") if n in summary["after"])]
        width = max(len(_SUMMARY_NAMES.get(n, n)) for n in names)
        for name in names:
            label, a, b = _SUMMARY_NAMES.get(name, name), summary["after"][name], (summary["before"] or {}).get(name)
            if a is None or b is None:
                print(f"  {label:>{width}}: {_fmt(b) + ' -> ' if summary['before'] else ''}{_fmt(a)}")
            else:
                print(f"  {label:>{width}}: {b:.3f} -> {a:.3f} ({100 * (a - b):+.1f} points)")
    print(f"run folder: {config.output_dir} ({summary['steps']} steps, {summary['train_seconds']:.0f} s of training)")
    if "report" in summary:
        print(f"report: {summary['report']}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
