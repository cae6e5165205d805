"""`eapo version`: the eapo and TRL versions."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    from importlib.metadata import version

    from eapo import __version__

    print(f"eapo {__version__} (trl {version('trl')})")
    return 0
