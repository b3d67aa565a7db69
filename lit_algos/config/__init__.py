"""The typed, nested run config and the recipe loader.

``Config`` is the root: ``model``, ``optim``, ``data``, ``train``. A recipe YAML fills it,
possibly ``extends:`` other recipes, and ``--set a.b.c=value`` overrides any field. ``optim``
is a registry section (``optim: {kind: muon, ...}``, entries in ``lit_algos.optim``), like the
model's components.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from lit_algos.config import optim as optim_section
from lit_algos.config.data import DataConfig
from lit_algos.config.model import AttentionConfig, MLPConfig, ModelConfig, NormConfig, PositionConfig
from lit_algos.config.optim import OptimConfig, ScheduleConfig
from lit_algos.config.train import TrainConfig, WandbConfig
from lit_algos.errors import ConfigError
from lit_algos.registry import ComponentOptions, component_field, validate_sections
from lit_algos.utils.typed import from_dict, to_dict

HASH_EXCLUDED_TRAIN = (
    "seed",
    "devices",
    "num_nodes",
    "strategy",
    "accelerator",
    "micro_batch_size",
    "checkpoint_every_tokens",
    "wandb",
    "log_every",  # how often metrics are logged, not what is trained
    "stop_at_target",  # where a run stops, not what it trains: the per-token curve is the same
    "chunked_loss",  # the loss's strategy (lit_algos.loss): the same loss up to float rounding
    "keep_freed_memory",  # how host memory is allocated, not what is computed
)  # train.trainer (profiler, anomaly detection, ...) stays in the hash: some options change the math
HASH_EXCLUDED_DATA = ("cache_dir", "num_workers", "tiktoken_cache_dir")


def _drop_nulls(node):
    """A null field hashes like an absent one, so adding an optional field (default null) to the
    config later does not change the hash of every recipe that does not use it."""
    if isinstance(node, dict):
        return {k: _drop_nulls(v) for k, v in node.items() if v is not None}
    return node


def _hash_form(config: dict) -> dict:
    """``config`` in the layout hashes were first computed on, so that no hash changed when the
    optimizer and the mixer became registry sections: the flat optimizer section
    (``lit_algos.config.optim.hash_form``) and ``mixer`` as a string, null for the transformer."""
    out = dict(config)
    if "optim" in out:
        out["optim"] = optim_section.hash_form(out["optim"])
    model = out.get("model")
    mixer = model.get("mixer") if isinstance(model, dict) else None
    if isinstance(mixer, dict) and not {k for k, v in mixer.items() if v is not None} - {"kind"}:
        kind = mixer.get("kind")
        out["model"] = {**model, "mixer": None if kind in (None, "transformer") else kind}
    return out


def hash_config_dict(config: dict) -> str:
    """A stable hash of what is trained: the same for every seed and every device layout.

    Left out: names, the seed (seeds of one recipe share a hash), and systems fields that by
    design do not change the per-token curve (device count, strategy, micro-batching, logging).
    Works on the plain dict stored in run records, so old records hash without re-validation,
    in either layout of the optimizer section (``_hash_form``).
    """
    payload = {k: v for k, v in _hash_form(config).items() if k not in ("name", "description")}
    for section, excluded in (("train", HASH_EXCLUDED_TRAIN), ("data", HASH_EXCLUDED_DATA)):
        if isinstance(payload.get(section), dict):
            payload[section] = {k: v for k, v in payload[section].items() if k not in excluded}
    payload = _drop_nulls(payload)
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Config:
    name: str = "default"  # the recipe name, recorded with every run
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: ComponentOptions = component_field("optimizer", "adamw")  # registry 'optimizer' (lit_algos.optim)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        # The name labels the run's record (its "recipe" field), its directory and its W&B group, and
        # `ceg --ref NAME` finds runs by it: one word (a variant such as modern-no-qk or retro+rope).
        if (
            not isinstance(self.name, str)
            or not re.fullmatch(r"[^\s/\\.][^\s\\]*", self.name)
            or ".." in self.name
        ):
            raise ConfigError(
                "name",
                self.name,
                "A run's name is one word: no spaces or backslashes, not starting with '.' or '/', no '..' "
                "(e.g. modern-no-qk, retro+rope, modern@tiny).",
            )
        validate_sections(self)  # the optimizer, against the whole config (Muon refuses FSDP)

    def to_dict(self) -> dict:
        """The config as plain nested dicts (what records and checkpoints store)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """A validated Config from its dict form (``to_dict``, a record's ``config``, in either
        layout of the optimizer section: ``lit_algos.config.optim.migrate``)."""
        return from_dict(cls, optim_section.migrate(data))

    def config_hash(self) -> str:
        """A stable hash of what is trained (``hash_config_dict``): names, seed and layout left out."""
        return hash_config_dict(self.to_dict())


__all__ = [
    "AttentionConfig",
    "Config",
    "DataConfig",
    "MLPConfig",
    "ModelConfig",
    "NormConfig",
    "OptimConfig",
    "PositionConfig",
    "ScheduleConfig",
    "TrainConfig",
    "WandbConfig",
]
