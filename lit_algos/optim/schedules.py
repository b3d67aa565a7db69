"""Registry axis 'schedule': LR multipliers (of each group's peak LR) per optimizer step.

Every entry follows the registry contract (``lit_algos.registry``): its options derive from
``ScheduleOptions`` (``warmup_steps``, which every schedule has) and add what its shape reads
(``min_lr_ratio`` for the decaying ones, ``decay_fraction`` for wsd); the target is the shape
after warmup, ``(options, step, total_steps) -> multiplier``. A recipe names it with
``optim.schedule: {kind: wsd, ...}``. A new schedule is one file in this package and one import
line in ``__init__.py``; the parametrized tests check its warmup, range and reload.

Conventions, shared by every schedule:

- ``step`` is the 0-based index of the optimizer step about to be taken; ``LambdaLR`` evaluates
  the multiplier at 0 on construction and at ``k`` after ``k`` ``scheduler.step()`` calls, so
  step ``k`` really runs at ``lr_multiplier(cfg, k, total_steps)``.
- Warmup is linear over ``warmup_steps``: step ``s < warmup_steps`` uses ``(s + 1) / warmup_steps``,
  so the first step already moves and step ``warmup_steps - 1`` is at the peak.
- Decaying schedules reach ``min_lr_ratio`` exactly at the last step, ``total_steps - 1``, and
  stay there for any later step (a run that overshoots its budget does not restart the schedule).
  For train-to-target runs ``total_steps`` is the step count of the budget (computed by the
  caller), so the schedule is the same whether or not the target stops the run early.

Shapes after warmup (``w = warmup_steps``, ``T = total_steps``, ``m = min_lr_ratio``):

- ``constant``: 1.
- ``linear``: from 1 at step ``w`` down to ``m`` at step ``T - 1``.
- ``cosine``: half a cosine from 1 at step ``w`` down to ``m`` at step ``T - 1``.
- ``inverse_sqrt``: ``sqrt(max(w, 1) / (step + 1))``, continuous with the warmup (1 at step
  ``w - 1``) and without a floor; ``T`` and ``m`` are unused, so the schedule does not depend on
  the budget. With ``w = 0`` it is ``1 / sqrt(step + 1)``.
- ``wsd`` (warmup-stable-decay): 1 until the last ``decay_fraction`` of the ``T`` steps, then
  linear from 1 (at the decay's first step) down to ``m`` at step ``T - 1``. The stable phase never
  starts before warmup ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lit_algos.registry import ComponentOptions, registry
from lit_algos.utils.typed import check_positive, check_range


@dataclass
class ScheduleOptions(ComponentOptions):
    """The base of every schedule's options: a linear warmup."""

    warmup_steps: int = 0  # linear warmup: step s (0-based) uses (s + 1) / warmup_steps of the peak

    def __post_init__(self):
        check_positive("warmup_steps", self.warmup_steps, allow_zero=True)


@dataclass
class DecayOptions(ScheduleOptions):
    """A schedule that decays to a floor at the last step (linear, cosine)."""

    min_lr_ratio: float = 0.1  # final LR as a fraction of the peak

    def __post_init__(self):
        super().__post_init__()
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)


@dataclass
class WSDOptions(DecayOptions):
    decay_fraction: float = 0.2  # the share of steps spent decaying at the end

    def __post_init__(self):
        super().__post_init__()
        check_range("decay_fraction", self.decay_fraction, 0.0, 1.0)


SCHEDULES = registry("schedule", options_base=ScheduleOptions)
# A schedule after warmup: (cfg, step, total_steps) -> multiplier; step >= cfg.warmup_steps.
Shape = Callable[[ScheduleOptions, int, int], float]


def _progress(start: int, step: int, total_steps: int) -> float:
    """Where ``step`` lies between ``start`` (0) and the last step ``total_steps - 1`` (1), clamped."""
    span = total_steps - 1 - start
    if span <= 0:
        return 1.0 if step >= start else 0.0
    return min(1.0, max(0.0, (step - start) / span))


@SCHEDULES.register("constant", help="flat at the peak LR after warmup", options=ScheduleOptions)
def _constant(cfg: ScheduleOptions, step: int, total_steps: int) -> float:
    return 1.0


@SCHEDULES.register("linear", help="linear decay to min_lr_ratio at the last step", options=DecayOptions)
def _linear(cfg: ScheduleOptions, step: int, total_steps: int) -> float:
    p = _progress(cfg.warmup_steps, step, total_steps)
    return 1.0 - (1.0 - cfg.min_lr_ratio) * p


@SCHEDULES.register("cosine", help="cosine decay to min_lr_ratio at the last step", options=DecayOptions)
def _cosine(cfg: ScheduleOptions, step: int, total_steps: int) -> float:
    p = _progress(cfg.warmup_steps, step, total_steps)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))


@SCHEDULES.register(
    "inverse_sqrt",
    help="sqrt(warmup / (step + 1)) after warmup (budget-independent)",
    options=ScheduleOptions,
)
def _inverse_sqrt(cfg: ScheduleOptions, step: int, total_steps: int) -> float:
    return min(1.0, math.sqrt(max(cfg.warmup_steps, 1) / (step + 1)))


def wsd_decay_start(cfg: ScheduleOptions, total_steps: int) -> int:
    """First step of the wsd decay phase: the last ``decay_fraction`` of the steps, not before warmup ends."""
    decay_steps = round(cfg.decay_fraction * total_steps)
    return max(cfg.warmup_steps, total_steps - decay_steps)


@SCHEDULES.register(
    "wsd",
    help="warmup-stable-decay: flat, then linear decay to min_lr_ratio over the last decay_fraction",
    options=WSDOptions,
)
def _wsd(cfg: ScheduleOptions, step: int, total_steps: int) -> float:
    start = wsd_decay_start(cfg, total_steps)
    if step < start or start >= total_steps:  # stable phase, or no decay phase at all
        return 1.0
    p = _progress(start, step, total_steps)
    return 1.0 - (1.0 - cfg.min_lr_ratio) * p


def lr_multiplier(cfg: ScheduleOptions, step: int, total_steps: int) -> float:
    """Fraction of the peak LR used at optimizer step ``step`` (0-based) of a ``total_steps`` run."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    shape: Shape = SCHEDULES.get(cfg.kind)
    return shape(cfg, step, total_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleOptions, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` scaling every param group's peak LR (``group["initial_lr"]``) by the schedule.

    Step it once per optimizer step (Lightning: ``{"scheduler": s, "interval": "step"}``). The
    multiplier is a closure, so the scheduler's state_dict holds only counters and reloads with
    ``torch.load(weights_only=True)``.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")

    def multiplier(step: int) -> float:
        return lr_multiplier(cfg, step, total_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
