"""eapo: token-level entropy credit for RLVR.

The public API: the pure token-level functions, the method registry, and the TRL trainer subclass.
"""

from eapo.core import (
    Quadrant,
    eapo_advantages,
    entroadv_advantages,
    forking_mask,
    group_entropy_stats,
    quadrant_labels,
    quadrant_mask,
    quadrant_statistics,
    token_entropy,
    w_reinforce_advantages,
)
from eapo.core.methods import METHODS, RolloutBatch, TokenUpdate, get_method, register_method
from eapo.evaluation.metrics import maj_at_k, pass_at_k

__version__ = "0.1.0"


def __getattr__(name: str):
    # The trainer pulls in transformers and TRL (seconds to import): load it only when asked for.
    if name in ("EAPOConfig", "EAPOTrainer"):
        from eapo import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'eapo' has no attribute {name!r}")


__all__ = [
    "METHODS",
    "EAPOConfig",
    "EAPOTrainer",
    "Quadrant",
    "RolloutBatch",
    "TokenUpdate",
    "eapo_advantages",
    "entroadv_advantages",
    "forking_mask",
    "get_method",
    "group_entropy_stats",
    "maj_at_k",
    "pass_at_k",
    "quadrant_labels",
    "quadrant_mask",
    "quadrant_statistics",
    "register_method",
    "token_entropy",
    "w_reinforce_advantages",
]
