"""The errors eapo's library raises, in one module (the bottom layer: every package may import it).

Bad input is a `ValueError` of the `EapoError` family whose message is one line naming the problem and the fix;
library code raises these and nothing else for bad input, so a notebook's `except ValueError` (or `except
Exception`) catches them. Only the command line turns them into one line on stderr and exit code 2 (`eapo.cli`).
A reward function that fails while training or evaluating is a `RewardFunctionError` (exit code 1).
"""

from __future__ import annotations


class EapoError(ValueError):
    """Bad input or options: `str(err)` is one line naming the problem and the fix (the CLI's exit code 2)."""


class ConfigError(EapoError):
    """An `EAPOConfig` field, or a combination of fields, that eapo refuses."""


class TaskError(EapoError):
    """A task, data file, column or reward that cannot be used."""


class PolicyError(EapoError):
    """A model folder or model option that cannot be used."""


class SuiteError(EapoError):
    """An evaluation recipe that cannot be used."""


class InputError(EapoError):
    """Any other option value, file or folder that cannot be used (a model folder, a run folder, a GGUF file)."""


class RewardFunctionError(RuntimeError):
    """A reward function raised, returned a non-finite value or the wrong number of values."""


def require(module: str, package: str, extra: str, needed_by: str, error: type[EapoError] | None = None) -> None:
    """Raise `error` (default InputError) in one line where `module` is not installed: `needed_by` needs the pip
    package `package`, which eapo's optional dependency group `extra` brings."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise (error or InputError)(
            f"{needed_by} needs the `{package}` package: pip install 'eapo[{extra}]' (or pip install {package})"
        )
