"""The `eapo` command line: one module per command in this package, each with the same shape,
`add_arguments(parser)` and `run(args) -> int` (as TRL's and torchtune's CLIs do).

`eapo train` is the exception in parsing only: its options are the dataclass fields of `RunArguments` and
`EAPOConfig`, parsed by TRL's `TrlParser` (`eapo.cli.train.main`). Every command reports bad input as one
line on stderr with exit code 2 (the library's `eapo.errors.EapoError` family and the command line's own
`eapo.cli.validate.ValidationError`), and Ctrl-C as one line with exit code
130. Modules import torch and TRL inside functions only, so `eapo --help` and `eapo CMD --help` answer fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from eapo.cli.validate import EXIT_CODE, ValidationError
from eapo.errors import EapoError

# (command, module, help) in help order. `%%` is a literal % in argparse help.
COMMANDS = [
    ("train", "eapo.cli.train", "RL on the tiny countdown world or a model folder (see `eapo train --help`)"),
    ("eval", "eapo.cli.eval", "avg@k, pass@k and maj@k of a model folder on any task of `eapo train`"),
    ("compare", "eapo.cli.compare", "several methods over seeds: table with 95%% intervals, paired to a baseline"),
    ("ablate", "eapo.cli.ablate", "quadrant ablations over seeds: table with 95%% intervals and curves"),
    ("credit", "eapo.cli.credit", "token credit I(o_t; r | s_t) by branching rollouts vs the entropy bound"),
    ("report", "eapo.cli.report", "write RUN_DIR/report.html: curves, quadrants and a token entropy view"),
    ("evalsuite", "eapo.cli.evalsuite", "a model on several math benchmarks from an evaluation recipe (YAML)"),
    ("model", "eapo.cli.model", "make a local model folder: SmolLM2-135M-Instruct, or convert a GGUF file"),
    ("methods", "eapo.cli.methods", "list the registered training methods and their presets"),
    ("warmstart", "eapo.cli.warmstart", "build the tiny-world base policy by supervised fine-tuning"),
    ("version", "eapo.cli.version", "print the eapo and TRL versions"),
]


class _Parser(argparse.ArgumentParser):
    """argparse with its usage dump on bad input replaced by one line (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValidationError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="eapo", description="Token-level entropy credit for RLVR (EAPO) on TRL's GRPOTrainer.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        if name == "train":  # parsed by TRL's parser in eapo.cli.train; listed here for `eapo --help`
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=(module.__doc__ or "").strip().split("\n\n")[0])
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"] and ("-h" in argv or "--help" in argv):  # pre-rendered: no torch import
        print((Path(__file__).with_name("train_help.txt")).read_text(), end="")
        return 0
    if argv and argv[0] == "train":
        from eapo.cli.train import main as train_main

        return train_main(argv[1:])
    command = argv[0] if argv and not argv[0].startswith("-") else None
    prog = f"eapo {command}" if command else "eapo"
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except ValidationError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return err.code
    except EapoError as err:  # the library's bad-input errors: one line, exit code 2 (the CLI alone maps them)
        print(f"{prog}: {err}", file=sys.stderr)
        return EXIT_CODE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (Ctrl-C); finished results are kept: run the same command again to continue",
              file=sys.stderr)  # fmt: skip
        return 130


if __name__ == "__main__":
    sys.exit(main())
