"""Bad input on the command line: `ValidationError`, one line and exit code 2.

The command line raises `ValidationError` for what its own parsing finds (an unknown flag, a YAML value of the
wrong type); the library raises `eapo.errors.EapoError` (a `ValueError`), which the commands print as one line
with exit code 2 too. The checks of a run before anything is loaded or written are the library's
(`eapo.pipeline.checks`); their names stay importable from here.
"""

from __future__ import annotations

from eapo.pipeline.checks import (  # noqa: F401 (re-exported)
    check_model_and_tokenizer,
    check_model_dir,
    check_resume,
    check_run_args,
    check_tokenizer,
    is_run_folder,
    restart_command,
    saved_nothing,
)

EXIT_CODE = 2


class ValidationError(SystemExit):
    """A bad option or input found by the command line's own parsing: `str(err)` is the one-line message, the exit
    status is 2."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = EXIT_CODE

    def __str__(self) -> str:
        return str(self.args[0])
