"""TargetStopping (EarlyStopping at the target and on divergence) and the EvalCheckpoint cadence, on a fake trainer."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from lit_algos.training.callbacks import TargetStopping


def fake_trainer():
    strategy = SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision)
    return SimpleNamespace(
        callback_metrics={}, fast_dev_run=False, strategy=strategy, should_stop=False, current_epoch=0
    )


def evaluate(stopper: TargetStopping, trainer, losses: list[float]) -> list[bool]:
    """Feed validation losses one evaluation at a time; the stop decision after each."""
    decisions = []
    for loss in losses:
        trainer.callback_metrics["val/loss"] = torch.tensor(loss)
        stopper._run_early_stopping_check(trainer)
        decisions.append(trainer.should_stop)
    return decisions


def test_stops_at_the_first_evaluation_at_or_below_the_target():
    stopper, trainer = TargetStopping(target=3.0, divergence_factor=4.0), fake_trainer()
    assert evaluate(stopper, trainer, [5.0, 4.0, 3.5, 6.0]) == [
        False,
        False,
        False,
        False,
    ]  # no patience rule
    assert evaluate(stopper, trainer, [3.0]) == [True]
    assert stopper.status == "reached"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_is_divergence(bad):
    stopper, trainer = TargetStopping(target=3.0, divergence_factor=4.0), fake_trainer()
    assert evaluate(stopper, trainer, [5.0, bad]) == [False, True]
    assert stopper.status == "diverged"


def test_divergence_is_relative_to_the_first_evaluation():
    stopper, trainer = TargetStopping(target=None, divergence_factor=2.0), fake_trainer()
    assert evaluate(stopper, trainer, [5.0, 9.9, 4.0]) == [False, False, False]
    assert evaluate(stopper, trainer, [10.1]) == [True]  # > 2 x 5.0
    assert stopper.status == "diverged"
    # The rule survives a checkpoint round trip (a resumed run keeps its first loss).
    restored = TargetStopping(target=None, divergence_factor=2.0)
    restored.load_state_dict(stopper.state_dict())
    assert restored.divergence_threshold == pytest.approx(10.0) and restored.status == "diverged"


def test_without_a_target_only_divergence_stops():
    stopper, trainer = TargetStopping(target=None, divergence_factor=4.0), fake_trainer()
    assert evaluate(stopper, trainer, [5.0, 0.1, 0.01]) == [False, False, False]
    assert stopper.status is None
