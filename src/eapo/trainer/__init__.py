"""Trainer integration: `EAPOConfig(GRPOConfig)` and `EAPOTrainer(GRPOTrainer)`, with checkpoints, resume and
guarded rewards. The two classes import TRL (seconds): they load on first use, so `eapo.trainer.checkpoint`
and friends stay cheap to import."""

from __future__ import annotations

from typing import Any

__all__ = ["EAPOConfig", "EAPOTrainer"]


def __getattr__(name: str) -> Any:
    if name == "EAPOConfig":
        from eapo.trainer.config import EAPOConfig

        return EAPOConfig
    if name == "EAPOTrainer":
        from eapo.trainer.trainer import EAPOTrainer

        return EAPOTrainer
    raise AttributeError(f"module 'eapo.trainer' has no attribute {name!r}")
