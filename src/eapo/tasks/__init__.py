"""Verifiable reasoning tasks: problem generators, text formats and exact solution sets."""

from eapo.tasks.countdown import (
    MAX_DIGITS,
    OPS,
    CountdownProblem,
    apply_op,
    countdown_dataset,
    format_prompt,
    format_solution,
    format_step,
    generate_problems,
    problem_key,
    solutions,
    train_heldout_split,
)

__all__ = [
    "MAX_DIGITS",
    "OPS",
    "CountdownProblem",
    "apply_op",
    "countdown_dataset",
    "format_prompt",
    "format_solution",
    "format_step",
    "generate_problems",
    "problem_key",
    "solutions",
    "train_heldout_split",
]
