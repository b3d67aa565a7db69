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
from lit_algos.errors import ConfigError


HASH_EXCLUDED_TRAIN = (
    "seed", "devices", "num_nodes", "strategy", "accelerator", "micro_batch_size", "checkpoint_every_tokens", "wandb",
)
HASH_EXCLUDED_DATA = ("cache_dir", "num_workers", "tiktoken_cache_dir")


@dataclass
class Config:
    name: str = "default"  # the recipe name, recorded with every run
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.optim.name == "muon" and self.train.strategy == "fsdp":
            raise ConfigError(
                "train.strategy", "fsdp",
                "Muon orthogonalises whole matrices, and FSDP gives each rank a shard of them; use ddp with optim.name=muon, or another optimizer with fsdp.",
            )

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        return from_dict(cls, data)

    def config_hash(self) -> str:
        """A stable hash of what is trained: the same for every seed and every device layout.

        Left out: names, the seed (seeds of one recipe share a hash), and systems fields that by
        design do not change the per-token curve (device count, strategy, micro-batching, logging).
        """
        payload = {k: v for k, v in self.to_dict().items() if k not in ("name", "description")}
        payload["train"] = {k: v for k, v in payload["train"].items() if k not in HASH_EXCLUDED_TRAIN}
        payload["data"] = {k: v for k, v in payload["data"].items() if k not in HASH_EXCLUDED_DATA}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


__all__ = [
    "AttentionConfig", "Config", "DataConfig", "MLPConfig", "ModelConfig", "NormConfig", "OptimConfig",
    "PositionConfig", "ScheduleConfig", "TrainConfig", "WandbConfig",
]
