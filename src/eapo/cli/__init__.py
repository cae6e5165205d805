"""The `eapo` command line."""

from __future__ import annotations

import argparse
import importlib
import sys


def _cmd_methods(_: argparse.Namespace) -> int:
    from eapo.core.methods import METHODS

    width = max(len(name) for name in METHODS)
    for name in sorted(METHODS):
        method = METHODS[name]
        preset = ", ".join(f"{k}={v}" for k, v in method.preset.items()) or "-"
        print(f"{name:<{width}}  {method.summary}")
        print(f"{'':<{width}}  preset: {preset}; dynamic sampling: {'on' if method.dynamic_sampling else 'off'}")
    return 0


def _cmd_warmstart(args: argparse.Namespace) -> int:
    from eapo.world.warmstart import warmstart

    summary = warmstart(args.output_dir, seed=args.seed, target_pass1=args.target_pass1, max_steps=args.max_steps)
    print(f"warm start: {summary['steps']} steps, held-out pass@1 {summary['heldout_pass1']:.3f} -> {args.output_dir}")
    return 0


# Subcommands whose module has `add_arguments(parser)` and `main(args) -> int`, in help order.
MODULE_COMMANDS = [
    ("eval", "eapo.cli.eval", "avg@k, pass@k and maj@k of a model folder on a task"),
    ("compare", "eapo.cli.compare", "run several methods over seeds and tabulate them with 95%% intervals"),
    ("report", "eapo.cli.report", "write RUN_DIR/report.html: curves, quadrants and a token entropy view"),
    ("evalsuite", "eapo.cli.evalsuite", "a model on several math benchmarks from an evaluation recipe (YAML)"),
    ("credit", "eapo.cli.credit", "token credit I(o_t; r | s_t) by branching rollouts vs the entropy bound"),
    ("ablate", "eapo.cli.ablate", "quadrant ablations over seeds: table with 95%% intervals and curves"),
    ("model", "eapo.models.command", "make a local model folder: SmolLM2-135M-Instruct, or convert a GGUF file"),
]


def _cmd_version(_: argparse.Namespace) -> int:
    import trl

    from eapo import __version__

    print(f"eapo {__version__} (trl {trl.__version__})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eapo", description="Token-level entropy credit for RLVR.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("methods", help="list the registered training methods").set_defaults(func=_cmd_methods)
    sub.add_parser("train", help="RL on the tiny countdown world (or --model_path); see `eapo train --help`")
    warm = sub.add_parser("warmstart", help="build the tiny-world base policy by supervised fine-tuning")
    warm.add_argument("--output_dir", default="runs/warmstart", help="where the checkpoint is written")
    warm.add_argument("--seed", type=int, default=0)
    warm.add_argument("--target_pass1", type=float, default=0.3, help="stop when held-out pass@1 reaches this")
    warm.add_argument("--max_steps", type=int, default=3000)
    warm.set_defaults(func=_cmd_warmstart)
    for name, module_name, help_text in MODULE_COMMANDS:
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text)
        module.add_arguments(command)
        command.set_defaults(func=module.main)
    sub.add_parser("version", help="print the eapo and TRL versions").set_defaults(func=_cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "train":  # TRL-style flags: parsed by HfArgumentParser, not argparse
        from eapo.cli.train import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
