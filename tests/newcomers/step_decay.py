"""Step decay: the LR times gamma every `every` steps after warmup."""

from __future__ import annotations

from dataclasses import dataclass

from lit_algos.optim.schedules import SCHEDULES, ScheduleOptions
from lit_algos.utils.typed import check_positive, check_range


@dataclass
class StepDecayOptions(ScheduleOptions):
    gamma: float = 0.5
    every: int = 10

    def __post_init__(self):
        super().__post_init__()
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_positive("every", self.every)


@SCHEDULES.register("step_decay", help="times gamma every `every` steps", options=StepDecayOptions)
def _step_decay(cfg: StepDecayOptions, step: int, total_steps: int) -> float:
    return cfg.gamma ** ((step - cfg.warmup_steps) // cfg.every)
