"""Trainer integration: `EAPOConfig(GRPOConfig)` and `EAPOTrainer(GRPOTrainer)`, with checkpoints, resume and
guarded rewards. The two classes import TRL (seconds): they load on first use, so `eapo.trainer.checkpoint`
and friends stay cheap to import."""

from __future__ import annotations

from eapo.lazy import lazy_exports

_EXPORTS = {"EAPOConfig": "eapo.trainer.config", "EAPOTrainer": "eapo.trainer.trainer"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
