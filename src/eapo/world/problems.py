"""The tiny world's countdown problems: one fixed, seeded train/held-out split shared by the warm start,
`eapo train`, evaluation and the report, and the completion budget the shipped policy was trained for."""

from __future__ import annotations

from eapo.tasks.countdown import CountdownProblem, train_heldout_split

# The tiny world's problems: one fixed split, shared by the warm start and by `eapo train`.
TASK_SEED = 2026
TASK = {"num_numbers": 3, "max_number": 13, "max_target": 99}
N_TRAIN, N_HELDOUT = 3000, 200
MAX_COMPLETION_LENGTH = 24


def tiny_world_split() -> tuple[list[CountdownProblem], list[CountdownProblem]]:
    """(train, held-out) countdown problems of the tiny world; no problem is in both."""
    return train_heldout_split(N_TRAIN, N_HELDOUT, seed=TASK_SEED, **TASK)
