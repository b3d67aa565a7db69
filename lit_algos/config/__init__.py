"""The typed, nested run config and the recipe loader.

``Config`` is the root: ``model``, ``optim``, ``data``, ``train``. A recipe YAML fills it,
possibly ``extends:`` other recipes, and ``--set a.b.c=value`` overrides any field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from lit_algos.config.base import from_dict, to_dict
from lit_algos.config.data import DataConfig
from lit_algos.config.model import AttentionConfig, MLPConfig, ModelConfig, NormConfig, PositionConfig
from lit_algos.config.optim import OptimConfig, ScheduleConfig
from lit_algos.config.train import TrainConfig, WandbConfig


@dataclass
class Config:
    name: str = "default"  # the recipe name, recorded with every run
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        return from_dict(cls, data)

    def config_hash(self) -> str:
        """A stable hash of everything that changes the training run (not its name or description)."""
        payload = {k: v for k, v in self.to_dict().items() if k not in ("name", "description")}
        payload["train"] = {k: v for k, v in payload["train"].items() if k not in ("wandb",)}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


__all__ = [
    "AttentionConfig", "Config", "DataConfig", "MLPConfig", "ModelConfig", "NormConfig", "OptimConfig",
    "PositionConfig", "ScheduleConfig", "TrainConfig", "WandbConfig",
]
