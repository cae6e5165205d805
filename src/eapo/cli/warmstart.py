"""`eapo warmstart`: build the tiny world's base policy by supervised fine-tuning (see `eapo.pipeline.warmstart`)."""

from __future__ import annotations

import argparse

from eapo.cli.validate import ValidationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output_dir", default="runs/warmstart", help="where the checkpoint is written (a new or empty folder)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target_pass1", type=float, default=0.3, help="stop when held-out pass@1 reaches this")
    parser.add_argument("--max_steps", type=int, default=3000, help="most SFT steps")


def run(args: argparse.Namespace) -> int:
    if args.max_steps < 1:
        raise ValidationError(f"--max_steps {args.max_steps}: use at least 1")
    if not 0 < args.target_pass1 <= 1:
        raise ValidationError(f"--target_pass1 {args.target_pass1}: use a value in (0, 1]")
    from eapo.pipeline.checks import check_output_folder

    check_output_folder(args.output_dir, "output_dir", empty=True)  # before torch, TRL and the model load
    from eapo.pipeline.warmstart import warmstart

    summary = warmstart(args.output_dir, seed=args.seed, target_pass1=args.target_pass1, max_steps=args.max_steps)
    print(f"warm start: {summary['steps']} steps, held-out pass@1 {summary['heldout_pass1']:.3f} -> {args.output_dir}")
    return 0
