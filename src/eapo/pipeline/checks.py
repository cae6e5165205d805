"""Checks of an `eapo train` run that happen before any model is loaded or any file is written: the model folder
and its tokenizer, the run folder (fresh, resumed, or left by a start that saved nothing) and the run's own options.

Every failure is an `eapo.errors.InputError`: a one-line message naming the field and the fix (the CLI's exit code
2). The checks read only small files (`config.json`, the tokenizer, safetensors headers), never the weights.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eapo.errors import InputError
from eapo.io import safetensors_problem


def check_model_dir(path: str | Path, field: str = "model_path") -> Path:
    """A loadable model folder: it exists, has `config.json` and `*.safetensors` weights (never pickles)."""
    path = Path(path)
    fix = f"pass --{field} a model folder saved with save_pretrained (safetensors)"
    if not path.exists():
        raise InputError(
            f"{field}={str(path)!r} does not exist: {fix}, or build one with `eapo warmstart --output_dir {path}`"
        )
    if path.is_file() and path.suffix.lower() == ".gguf":  # converted once, not at every run (eapo.models.gguf)
        raise InputError(
            f"{field}={str(path)!r} is a GGUF file: convert it once with `eapo model convert {path} --output_dir DIR` "
            "and pass --model_path DIR"
        )
    if not path.is_dir():
        raise InputError(f"{field}={str(path)!r} is a file, not a folder: {fix}")
    _check_not_a_run_folder(path, field)
    config = path / "config.json"
    try:
        data = json.loads(config.read_text())
    except OSError:
        raise InputError(f"{field}={str(path)!r} has no readable config.json: {fix}") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{field}={str(path)!r}: config.json is not valid JSON ({err.msg}): {fix}") from None
    except UnicodeDecodeError:
        raise InputError(f"{field}={str(path)!r}: config.json is not UTF-8 text: {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("vocab_size"), int):
        raise InputError(f"{field}={str(path)!r}: config.json has no integer vocab_size: {fix}")
    if not list(path.glob("*.safetensors")):
        pickled = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
        if pickled:
            raise InputError(
                f"{field}={str(path)!r} has only pickled weights ({', '.join(pickled)}): eapo loads safetensors only "
                "(pickles can run code); convert with model.save_pretrained(path, safe_serialization=True)"
            )
        raise InputError(f"{field}={str(path)!r} has no *.safetensors weights: {fix}")
    for weights in sorted(path.glob("*.safetensors")):
        problem = safetensors_problem(weights)
        if problem:
            raise InputError(f"{field}={str(path)!r}: {problem}: copy or save the model folder again")
    return path


def _check_not_a_run_folder(path: Path, field: str) -> None:
    """An `eapo train` run folder where a model folder is expected: name what to pass instead."""
    if (path / "model" / "config.json").is_file() and not _is_model_config(path / "config.json"):
        what = f"pass its trained policy, --{field} {path / 'model'}"
    else:
        what = _newest(path, field) if is_run_folder(path) else None
    if what:
        raise InputError(f"{field}={str(path)!r} is an `eapo train` run folder, not a model folder: {what}")


def is_run_folder(path: Path) -> bool:
    """An `eapo train` run folder: config.yaml next to a config.json that is the run's options, not a model's."""
    return (path / "config.yaml").is_file() and (path / "config.json").is_file() and not _is_model_config(
        path / "config.json"
    )


def _newest(run_dir: Path, field: str) -> str:
    """What to pass instead of a run folder that has no model/ yet: its newest checkpoint, if any."""
    from eapo.trainer.checkpoint import last_checkpoint

    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None:
        return "it has no model/ and no checkpoint yet: wait for its first checkpoint (every --save_steps steps)"
    return f"it has no model/ yet (still training?): pass its newest checkpoint, --{field} {checkpoint}"


def _is_model_config(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()).get("vocab_size"), int)
    except (OSError, ValueError, AttributeError):
        return False


def check_tokenizer(tokenizer: Any, vocab_size: int, texts: Iterable[str], field: str = "model_path") -> None:
    """The tokenizer fits the model's embedding: `len(tokenizer) <= vocab_size` and every id of `texts` is in range."""
    size = len(tokenizer)
    if size > vocab_size:
        raise InputError(
            f"{field}: the tokenizer has {size} tokens but the model's vocab_size is {vocab_size}: "
            "use the tokenizer saved with this model (or resize the model's embeddings and save it again)"
        )
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        bad = [i for i in ids if not 0 <= i < vocab_size]
        if bad:
            raise InputError(
                f"{field}: the tokenizer maps {text[:40]!r} to token id {bad[0]}, outside the model's vocab_size "
                f"{vocab_size}: use the tokenizer saved with this model"
            )


def check_model_and_tokenizer(path: str | Path, texts: Iterable[str], field: str = "model_path") -> None:
    """`check_model_dir`, then load only the tokenizer and `check_tokenizer` against config.json's vocab_size."""
    from transformers import AutoTokenizer

    path = check_model_dir(path, field)
    vocab_size = json.loads((path / "config.json").read_text())["vocab_size"]
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"{field}={str(path)!r}: the tokenizer does not load ({first}): save it next to the model with "
            "tokenizer.save_pretrained(path)"
        ) from None
    check_tokenizer(tokenizer, vocab_size, texts, field)


# (option, valid, fix) of `eapo train`'s own options and TRL's LoRA ones, after the finite check
_RUN_RULES: tuple[tuple[str, Any, str], ...] = (
    ("eval_problems", lambda x: x >= 0, "use a value >= 0 (0: no evaluation before and after)"),
    ("eval_offset", lambda x: x >= 0, "use a value >= 0"),
    ("eval_k", lambda x: x >= 1, "use a value >= 1"),
    ("eval_batch_size", lambda x: x >= 1, "use a value >= 1"),
    ("report_problems", lambda x: x >= 1, "use a value >= 1"),
    ("max_train_minutes", lambda x: x >= 0, "use a value >= 0 (0: no limit)"),
    ("eval_temperature", lambda x: x > 0, "use a value > 0 (1.0 samples)"),
    ("eval_top_p", lambda x: 0 < x <= 1, "use a fraction in (0, 1] (1.0 turns it off)"),
    ("eval_max_new_tokens", lambda x: x is None or x >= 1, "use a value >= 1, or leave it out (the training length)"),
    ("max_prompt_length", lambda x: x is None or x >= 1, "use a value >= 1, or leave it out (no limit)"),
    ("lora_r", lambda x: x >= 1, "use a rank >= 1"),
    ("lora_alpha", lambda x: x > 0, "use a value > 0"),
    ("lora_dropout", lambda x: 0 <= x < 1, "use a fraction in [0, 1)"),
)


def check_run_args(run: Any) -> None:
    """`eapo train`'s own options (RunArguments): finite numbers within their ranges."""
    from eapo.core.options import nonfinite_field

    if (problem := nonfinite_field(run)) is not None:
        raise InputError(problem)
    for name, is_valid, fix in _RUN_RULES:
        value = getattr(run, name, None)
        if hasattr(run, name) and not is_valid(value):
            raise InputError(f"{name}={value!r} is invalid: {fix}")


def saved_nothing(run_dir: str | Path) -> bool:
    """Whether `run_dir` holds an `eapo train` start that failed before it saved anything a retry would lose: its
    options (config.json, config.yaml) and what was written before the first step, but no checkpoint-*, no
    model/ and no step in metrics.jsonl. Such a folder counts as empty: the same command starts it again."""
    from eapo.io import read_jsonl
    from eapo.trainer.checkpoint import METRICS_FILE, checkpoints

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or (run_dir / "model").exists() or checkpoints(run_dir):
        return False
    metrics = run_dir / METRICS_FILE
    return not metrics.is_file() or not read_jsonl(metrics)


def restart_command(run_dir: str | Path) -> str:
    """The command that starts the run of `run_dir` again from its saved options."""
    overwrite = "" if saved_nothing(run_dir) else " --overwrite_output_dir true"
    return f"eapo train --config {Path(run_dir) / 'config.yaml'}{overwrite}"


def check_resume(run_dir: str | Path, say: Any = print) -> Path:
    """`--resume RUN_DIR`: a run folder with its saved options and at least one checkpoint that loads. Newer
    checkpoints that do not load (truncated, corrupt) are skipped, each with one line through `say`."""
    from eapo.trainer.checkpoint import last_checkpoint

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise InputError(
            f"resume={str(run_dir)!r} is not an `eapo train` run folder (no config.json): pass the folder a run wrote"
        )
    checkpoint = last_checkpoint(run_dir, skipped=lambda path, why: say(f"resume: skipping {path.name}: {why}"))
    if checkpoint is None:
        raise InputError(
            f"resume={str(run_dir)!r} has no complete checkpoint-* folder: start the run again with "
            f"`{restart_command(run_dir)}` (add --save_steps N to checkpoint every N steps)"
        )
    return checkpoint


def _parent_problem(path: Path) -> str | None:
    """What stops a file or folder from being made at `path`: an ancestor that is a file; None otherwise."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else f"its parent {str(parent)!r} is a file"
    return None


def check_output_file(path: str | Path | None, flag: str) -> Path | None:
    """The file a command writes at its end (`--output`), checked at its start: not empty text, not a folder, its
    parent a folder or to be made. None stays None (nothing to write)."""
    if path is None:
        return None
    if str(path).strip() == "":
        raise InputError(f"--{flag} '': give a file name, or leave --{flag} out")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--{flag} {str(path)!r} is a folder: give a file name (e.g. {str(path / 'result.json')!r})")
    if (problem := _parent_problem(path)) is not None:
        raise InputError(f"--{flag} {str(path)!r}: {problem}; give another path")
    return path


def check_output_folder(path: str | Path, flag: str, *, empty: bool = False) -> Path:
    """The folder a command writes into, checked at its start: not empty text, not a file, its parent a folder or
    to be made; `empty`: also new or empty (a command that would overwrite what is there)."""
    if str(path).strip() == "":
        raise InputError(f"--{flag} '': give a folder")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"--{flag} {str(path)!r} is a file, not a folder: give a folder")
    if (problem := _parent_problem(path)) is not None:
        raise InputError(f"--{flag} {str(path)!r}: {problem}; give another folder")
    if empty and path.is_dir() and any(path.iterdir()):
        raise InputError(f"--{flag} {str(path)!r} is not empty: give a new or empty folder")
    return path
