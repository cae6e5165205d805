"""`eapo methods`: the registered training methods with their GRPOConfig presets."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    from eapo.core.methods import METHODS

    width = max(len(name) for name in METHODS)
    for name in sorted(METHODS):
        method = METHODS[name]
        preset = ", ".join(f"{k}={v}" for k, v in method.preset.items()) or "-"
        print(f"{name:<{width}}  {method.summary}")
        print(f"{'':<{width}}  preset: {preset}; dynamic sampling: {'on' if method.dynamic_sampling else 'off'}")
    return 0
