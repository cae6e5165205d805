"""Run folders shared by `eapo compare` and `eapo ablate`: a finished run is reused only when it was trained with
exactly the options now requested; a folder holding a run with other options is never reused or replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eapo.cli.validate import ValidationError

# Options that name where a run lives or how it was started, not what it trained (`use_cpu`: the machine's; the
# config.yaml of a run started before 2026-12-07 records it)
_NOT_COMPARED = {"output_dir", "resume", "overwrite_output_dir", "use_cpu"}


def run_state(run_dir: Path, train_flags: list[str]) -> str:
    """"new" (no run there yet), "finished" (a run with these exact options and its eval.json: reuse it) or
    "unfinished" (a run with these options that did not finish: `eapo ablate` resumes it from its last checkpoint,
    `eapo compare` trains it again). A folder with a run of other options, or with files that are no run, raises
    `ValidationError` naming the first differences."""
    import yaml

    from eapo.cli.train import CONFIG_YAML, parse_args

    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "new"
    saved_file = run_dir / CONFIG_YAML
    if not saved_file.is_file():
        raise ValidationError(
            f"{run_dir} is not empty and holds no eapo run options ({CONFIG_YAML}): pass another --output_dir, or "
            "delete that folder"
        )
    saved = yaml.safe_load(saved_file.read_text()) or {}
    requested = parse_args([*train_flags, "--output_dir", str(run_dir)])[1].inputs
    keys = sorted((set(saved) | set(requested)) - _NOT_COMPARED)
    differ = [k for k in keys if saved.get(k) != requested.get(k)]
    if differ:
        shown = "; ".join(f"{k}: {saved.get(k)!r} there, {requested.get(k)!r} now" for k in differ[:3])
        more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
        raise ValidationError(
            f"{run_dir} holds a run with other options ({shown}{more}): pass another --output_dir, or delete "
            "that folder to train it again"
        )
    return "finished" if (run_dir / "eval.json").is_file() else "unfinished"


def check_extra_flags(command: str, extra: list[str], owned: dict[str, Any]) -> None:
    """The `eapo train` flags after `--` of `eapo compare` / `eapo ablate` may not set an option the command sets
    itself (`owned`: option -> the value the command passes, None where it differs by run): a flag after `--` wins
    over the command's own, so its tables would read runs trained otherwise (an avg@k of another k); a `--config`
    YAML among them may not set one to another value either (the command's flags would win over it silently)."""
    import yaml

    flags = [f for f in extra if f != "--"]
    for i, flag in enumerate(flags):
        if not flag.startswith("--"):
            continue
        name = flag[2:].split("=", 1)[0].replace("-", "_")
        name = name[3:] if name.startswith("no_") and name[3:] in owned else name
        if name in owned:
            raise ValidationError(
                f"--{name} after --: eapo {command} sets it for every run itself; give it to eapo {command} (before --)"
                " or leave it out"
            )
        if name != "config":
            continue
        path = flag.split("=", 1)[1] if "=" in flag else (flags[i + 1] if i + 1 < len(flags) else "")
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # eapo train says what is wrong with it
        for key, value in data.items() if isinstance(data, dict) else []:
            if key in owned and (owned[key] is None or str(value) != str(owned[key])):
                fix = "leave it out of the file" if owned[key] is None else f"give eapo {command} --{key} {value}"
                raise ValidationError(
                    f"{path} sets {key}: {value}, which eapo {command} sets for every run itself"
                    + ("" if owned[key] is None else f" ({owned[key]})")
                    + f": {fix}"
                )


def train_or_resume(run_dir: Path, train_flags: list[str], state: str) -> None:
    """Train one run in-process: a new one fresh, an unfinished one from its newest loadable checkpoint when it
    has one (else again from scratch). Ctrl-C (the run keeps its checkpoint) is raised as KeyboardInterrupt."""
    from eapo.cli.train import Interrupted, parse_args, train
    from eapo.trainer.checkpoint import last_checkpoint

    if state == "unfinished" and last_checkpoint(run_dir) is not None:
        argv = ["--resume", str(run_dir)]
    else:
        argv = [*train_flags, "--output_dir", str(run_dir), "--overwrite_output_dir", "true"]
    try:
        train(*parse_args(argv))
    except Interrupted as err:
        print(f"[{run_dir.name}] {err}")
        raise KeyboardInterrupt from None
