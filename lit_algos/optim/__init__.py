"""Optimizers and learning-rate schedules (registry axes 'optimizer' and 'schedule')."""

from lit_algos.optim.muon import Muon, muon_scale, newton_schulz
from lit_algos.optim.optimizers import (
    TAGS,
    build_optimizer,
    lr_metrics,
    param_group_kind,
    parameter_tags,
    tagged_groups,
)
from lit_algos.optim.schedules import build_scheduler, lr_multiplier, wsd_decay_start

__all__ = [
    "TAGS",
    "Muon",
    "build_optimizer",
    "build_scheduler",
    "lr_metrics",
    "lr_multiplier",
    "muon_scale",
    "newton_schulz",
    "param_group_kind",
    "parameter_tags",
    "tagged_groups",
    "wsd_decay_start",
]
