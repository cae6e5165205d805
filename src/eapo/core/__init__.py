"""Pure token-level math: tensors and explicit keyword arguments in, tensors out."""

from eapo.core.advantages import (
    broadcast_advantages,
    eapo_advantages,
    entroadv_advantages,
    shape_advantages,
    w_reinforce_advantages,
    zero_std_groups,
)
from eapo.core.entropy import group_entropy_stats, row_entropy_moments, stats_from_moments, token_entropy
from eapo.core.losses import clip_cov_token_loss, kl_cov_token_loss, token_covariance
from eapo.core.masks import forking_mask
from eapo.core.quadrants import (
    QUADRANTS,
    Quadrant,
    labels_from_stats,
    parse_quadrants,
    quadrant_labels,
    quadrant_mask,
    quadrant_statistics,
)

__all__ = [
    "QUADRANTS",
    "Quadrant",
    "broadcast_advantages",
    "clip_cov_token_loss",
    "eapo_advantages",
    "entroadv_advantages",
    "forking_mask",
    "group_entropy_stats",
    "kl_cov_token_loss",
    "labels_from_stats",
    "parse_quadrants",
    "quadrant_labels",
    "quadrant_mask",
    "quadrant_statistics",
    "row_entropy_moments",
    "shape_advantages",
    "stats_from_moments",
    "token_covariance",
    "token_entropy",
    "w_reinforce_advantages",
    "zero_std_groups",
]
