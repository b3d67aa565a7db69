"""Optimizers and learning-rate schedules (registry axes 'optimizer' and 'schedule').

Importing this package registers every entry: one import line per file below (a new optimizer
or schedule is one file plus its line here).
"""

from lit_algos.optim import muon, optimizers, schedules  # noqa: F401  (registration)
from lit_algos.optim.muon import Muon, MuonOptions, muon_scale, newton_schulz
from lit_algos.optim.optimizers import (
    TAGS,
    AdamOptions,
    OptimizerOptions,
    SGDOptions,
    build_optimizer,
    lr_metrics,
    param_group_kind,
    parameter_tags,
    tagged_groups,
)
from lit_algos.optim.schedules import (
    DecayOptions,
    ScheduleOptions,
    WSDOptions,
    build_scheduler,
    lr_multiplier,
    wsd_decay_start,
)

__all__ = [
    "TAGS",
    "AdamOptions",
    "DecayOptions",
    "Muon",
    "MuonOptions",
    "OptimizerOptions",
    "SGDOptions",
    "ScheduleOptions",
    "WSDOptions",
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
