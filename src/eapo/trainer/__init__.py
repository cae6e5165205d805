"""Trainer integration: `EAPOConfig(GRPOConfig)` and `EAPOTrainer(GRPOTrainer)`."""

from eapo.trainer.config import EAPOConfig
from eapo.trainer.trainer import EAPOTrainer

__all__ = ["EAPOConfig", "EAPOTrainer"]
