"""The `eapo` command line."""

from __future__ import annotations

import argparse
import sys


def _cmd_methods(_: argparse.Namespace) -> int:
    from eapo.methods import METHODS

    width = max(len(name) for name in METHODS)
    for name in sorted(METHODS):
        method = METHODS[name]
        preset = ", ".join(f"{k}={v}" for k, v in method.preset.items()) or "-"
        print(f"{name:<{width}}  {method.summary}")
        print(f"{'':<{width}}  preset: {preset}; dynamic sampling: {'on' if method.dynamic_sampling else 'off'}")
    return 0


def _cmd_version(_: argparse.Namespace) -> int:
    import trl

    from eapo import __version__

    print(f"eapo {__version__} (trl {trl.__version__})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eapo", description="Token-level entropy credit for RLVR.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("methods", help="list the registered training methods").set_defaults(func=_cmd_methods)
    sub.add_parser("version", help="print the eapo and TRL versions").set_defaults(func=_cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
