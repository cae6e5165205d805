"""The tiny world's countdown problems: defined next to the task, in `eapo.tasks.countdown` (one fixed, seeded
train/held-out split and the completion budget the shipped policy was trained for); the names stay importable
from here."""

from eapo.tasks.countdown import (  # noqa: F401 (re-exported)
    MAX_COMPLETION_LENGTH,
    N_HELDOUT,
    N_TRAIN,
    TASK,
    TASK_SEED,
    tiny_world_split,
)
