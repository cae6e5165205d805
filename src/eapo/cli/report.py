"""`eapo report RUN_DIR`: write RUN_DIR/report.html (see `eapo.analysis.report`)."""

from __future__ import annotations

import argparse

from eapo.analysis.report import DEFAULT_PROBLEMS, DEFAULT_SHOW, REPORT_DIR, write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="an `eapo train` output folder (config.json, metrics.jsonl, model/)")
    parser.add_argument(
        "--problems",
        type=int,
        default=DEFAULT_PROBLEMS,
        help="held-out prompts sampled (histograms); default %(default)s",
    )
    parser.add_argument(
        "--show", type=int, default=DEFAULT_SHOW, help="of which shown (token view); default %(default)s"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed; default %(default)s")


def main(args: argparse.Namespace) -> int:
    path = write_report(args.run_dir, problems=args.problems, show=args.show, seed=args.seed)
    print(f"report: {path} (figures in {path.parent / REPORT_DIR})")
    return 0
