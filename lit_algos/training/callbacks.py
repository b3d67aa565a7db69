"""Callbacks that turn a Lightning fit into a train-to-target measurement.

Lightning runs the loop: ``validation_step`` every ``eval_every_tokens`` (``val_check_interval``),
``EarlyStopping`` stops at the target and on divergence, ``ModelCheckpoint`` writes ``last.ckpt``
after every evaluation. What Lightning has no callback for lives here, one concern each:

- ``TrainClock``: the speedrun clock. It runs over training steps and data loading; evaluation,
  checkpointing and the first optimizer step of each session (compilation / allocator warm-up)
  are excluded and reported separately.
- ``BudgetStop``: stops when the step budget (tokens / FLOPs) or the seconds budget is spent,
  through ``trainer.should_stop``, so that Lightning runs one closing evaluation at that step.
- ``TargetStopping``: ``EarlyStopping`` at the target (``stopping_threshold``), on a non-finite
  loss (``check_finite``) and on the relative divergence rule (loss > factor x the first one).
- ``EvalCheckpoint``: ``ModelCheckpoint`` writing ``last.ckpt`` atomically after evaluations.
(What a run shows while it runs, the bar and the plain log lines, is in ``progress.py``.)

The stateful ones save their state in checkpoints so ``--resume`` continues the same run.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from lit_algos.flops import mfu


def _step_boundary(trainer, last_seen: int) -> bool:
    """Whether the batch that just ended completed an optimizer step (not a micro-batch inside accumulation)."""
    return trainer.global_step != last_seen


class RateWindow:
    """Tokens/s and MFU over the timed optimizer steps since the previous reading: the warm-up
    steps' time is off the clock (compilation), so their tokens are off the count too. The
    metrics row (``LitGPT``) and the progress line keep one each, at their own cadence."""

    def __init__(self):
        self._at = (0, 0.0, 0)  # (step, train seconds, warm-up steps) at the previous reading

    def restart(self, step: int, clock: TrainClock) -> None:
        self._at = (step, clock.train_seconds, clock.excluded_steps)

    def read(
        self, step: int, clock: TrainClock, tokens_per_step: int, flops_per_token: float, peak, devices: int
    ) -> tuple[float | None, float | None]:
        """(tokens/s, MFU against ``peak`` per device) since the previous reading; starts the next window."""
        step0, seconds0, warm0 = self._at
        self.restart(step, clock)
        timed = (step - step0) - (clock.excluded_steps - warm0)
        if timed <= 0 or clock.train_seconds <= seconds0:
            return None, None
        tokens_per_second = timed * tokens_per_step / (clock.train_seconds - seconds0)
        return tokens_per_second, mfu(tokens_per_second * flops_per_token, peak, devices)


class TrainClock(L.Callback):
    """Training seconds: paused during validation and checkpointing, warm-up steps kept apart.

    The clock runs from the start of fit, pauses when validation starts and restarts at the next
    training batch, so data loading and the optimizer steps are timed and evaluation and the
    checkpoint written after it are not. The first ``warmup_steps`` optimizer steps of each fit
    (compilation, allocator warm-up) go to ``warmup_seconds``; their tokens still count.
    """

    def __init__(self, warmup_steps: int = 1):
        self.warmup_steps = warmup_steps
        self.train_seconds = 0.0
        self.warmup_seconds = 0.0
        self._since: float | None = None  # perf_counter when the clock last (re)started
        self._session_start_step = 0  # warm-up is the first step(s) of each fit, resumed ones included
        self.excluded_steps = 0  # optimizer steps whose time went to warm-up (their tokens still count)
        self._last_warm_step = 0
        self._last_step_seen = -1

    @staticmethod
    def _sync() -> None:
        # CUDA kernels run asynchronously: without a sync the clock would stop when the step is
        # enqueued, not when it is done.
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def start(self) -> None:
        """Start (or restart) the clock; a no-op while it runs."""
        if self._since is None:
            self._sync()
            self._since = time.perf_counter()

    def pause(self, trainer: L.Trainer) -> None:
        """Stop the clock and add the time since it started to training or (first steps) warm-up seconds."""
        if self._since is None:
            return
        self._sync()
        elapsed = time.perf_counter() - self._since
        self._since = None
        if trainer.global_step <= self._session_start_step + self.warmup_steps:
            self.warmup_seconds += elapsed
            if trainer.global_step > self._last_warm_step:  # count each untimed optimizer step once
                self.excluded_steps += 1
                self._last_warm_step = trainer.global_step
        else:
            self.train_seconds += elapsed

    def on_train_start(self, trainer, pl_module):
        self._session_start_step = trainer.global_step
        self._last_step_seen = trainer.global_step
        self.start()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.start()  # after an evaluation; a no-op while the clock runs

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if _step_boundary(trainer, self._last_step_seen):
            # Split the time at each step so that the warm-up steps can be told apart.
            self._last_step_seen = trainer.global_step
            self.pause(trainer)
            self.start()

    def on_validation_start(self, trainer, pl_module):
        self.pause(trainer)

    def on_train_end(self, trainer, pl_module):
        self.pause(trainer)

    def on_exception(self, trainer, pl_module, exception):
        self.pause(trainer)

    def state_dict(self):
        return {
            "train_seconds": self.train_seconds,
            "warmup_seconds": self.warmup_seconds,
            "excluded_steps": self.excluded_steps,
            "last_warm_step": self._last_warm_step,
        }

    def load_state_dict(self, state):
        self.train_seconds = float(state["train_seconds"])
        self.warmup_seconds = float(state["warmup_seconds"])
        self.excluded_steps = int(state.get("excluded_steps", 0))
        self._last_warm_step = int(state.get("last_warm_step", 0))


class BudgetStop(L.Callback):
    """Stop when ``max_steps`` (from max_tokens / max_flops) or ``max_seconds`` of training clock is spent.

    Setting ``trainer.should_stop`` at an optimizer step makes Lightning run the validation loop at
    that step before leaving, so every run ends with an evaluation of its final weights even when
    the budget ends between two scheduled evaluations.
    """

    def __init__(self, clock: TrainClock, max_steps: int | None, max_seconds: float | None):
        self.clock = clock
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.spent = False
        self._last_step_seen = -1

    def on_train_start(self, trainer, pl_module):
        self._last_step_seen = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not _step_boundary(trainer, self._last_step_seen):
            return
        self._last_step_seen = trainer.global_step
        steps_spent = self.max_steps is not None and trainer.global_step >= self.max_steps
        if steps_spent or self.seconds_spent(trainer):
            self.spent = True
            trainer.should_stop = True

    def seconds_spent(self, trainer) -> bool:
        """Whether the time budget is spent, agreed by all ranks: each rank has its own clock, and a
        rank that stopped alone would leave the others waiting in a collective."""
        if self.max_seconds is None:
            return False
        spent = self.clock.train_seconds >= self.max_seconds
        return bool(trainer.strategy.reduce_boolean_decision(spent, all=False))

    def state_dict(self):
        return {"spent": self.spent}

    def load_state_dict(self, state):
        self.spent = bool(state.get("spent", False))


class TargetStopping(EarlyStopping):
    """``EarlyStopping`` on ``val/loss``: at the target, on a non-finite loss, and on divergence.

    Lightning's ``divergence_threshold`` is absolute; lit_algos's rule is relative (the loss rose
    above ``divergence_factor`` x the first evaluation), so the threshold is set from the first
    evaluation. A non-finite *training* loss also stops the run at once (the closing evaluation
    then records the diverged weights). There is no patience: a run is never stopped for not improving.
    ``target=None`` (or ``train.stop_at_target: false``) keeps only the divergence rules.
    """

    def __init__(self, target: float | None, divergence_factor: float, monitor: str = "val/loss"):
        super().__init__(
            monitor=monitor,
            mode="min",
            stopping_threshold=target,
            check_finite=True,
            patience=sys.maxsize,
            check_on_train_epoch_end=False,
            verbose=False,
        )
        self.divergence_factor = divergence_factor
        self.first_score: float | None = None
        self.train_loss_diverged = False
        self._last_step_seen = -1
        self._nan_seen = False

    def _evaluate_stopping_criteria(self, current):
        value = float(current)
        if self.first_score is None and math.isfinite(value):
            self.first_score = value
            self.divergence_threshold = self.divergence_factor * value
        # "Reached" is loss <= target (docs/design.md §6); Lightning's stopping_threshold is strict (<).
        if self.stopping_threshold is not None and math.isfinite(value) and value <= self.stopping_threshold:
            self.stopping_reason = EarlyStoppingReason.STOPPING_THRESHOLD
            return True, f"{self.monitor} = {value} <= target {self.stopping_threshold}."
        return super()._evaluate_stopping_criteria(current)

    def on_train_start(self, trainer, pl_module):
        self._last_step_seen = trainer.global_step
        self._nan_seen = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not bool(torch.isfinite(loss.detach()).all()):
            self._nan_seen = True
        # Stop at the optimizer step's end, never inside accumulation: the closing evaluation is at a step.
        if _step_boundary(trainer, self._last_step_seen):
            self._last_step_seen = trainer.global_step
            # Agreed by all ranks: one rank leaving the loop alone would hang the others in a collective.
            if trainer.strategy.reduce_boolean_decision(self._nan_seen, all=False):
                self.train_loss_diverged = True
                self.stopping_reason = EarlyStoppingReason.NON_FINITE_METRIC
                trainer.should_stop = True

    @property
    def status(self) -> str | None:
        """'reached', 'diverged', or None while neither rule has stopped the run."""
        if self.stopping_reason == EarlyStoppingReason.STOPPING_THRESHOLD:
            return "reached"
        if self.train_loss_diverged or self.stopping_reason in (
            EarlyStoppingReason.NON_FINITE_METRIC,
            EarlyStoppingReason.DIVERGENCE_THRESHOLD,
        ):
            return "diverged"
        return None

    def state_dict(self):
        state = super().state_dict()
        state.update(first_score=self.first_score, train_loss_diverged=self.train_loss_diverged)
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.first_score = state.get("first_score")
        self.train_loss_diverged = bool(state.get("train_loss_diverged", False))
        if self.first_score is not None:
            self.divergence_threshold = self.divergence_factor * self.first_score


class EvalCheckpoint(ModelCheckpoint):
    """``last.ckpt`` after every ``every_n_evals``-th evaluation and after the closing one, written atomically.

    Lightning's ``save_last`` only follows a top-k save; lit_algos keeps no top-k (the curve is in the
    record), so the last checkpoint is saved directly. The file is written beside the target and
    renamed over it, so a crash never leaves half a checkpoint.
    """

    def __init__(self, dirpath, every_n_evals: int = 1):
        super().__init__(
            dirpath=dirpath,
            save_last=True,
            save_top_k=0,
            monitor=None,
            save_on_train_epoch_end=False,
            enable_version_counter=False,
        )
        self.every_n_evals = max(1, every_n_evals)
        self._evals = 0

    def on_validation_end(self, trainer, pl_module):
        if self._should_skip_saving_checkpoint(trainer):
            return
        self._evals += 1
        if self._evals % self.every_n_evals == 0 or trainer.should_stop:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        tmp = filepath + ".tmp"
        try:
            trainer.save_checkpoint(tmp, self.save_weights_only)
        except BaseException:  # e.g. the disk filled up: no half checkpoint stays (and its space is freed)
            if trainer.is_global_zero:
                Path(tmp).unlink(missing_ok=True)
            raise
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            os.replace(tmp, filepath)  # atomic on POSIX: readers see the old or the new file, never half
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)

    def state_dict(self):
        state = super().state_dict()
        state["evals"] = self._evals
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self._evals = int(state.get("evals", 0))
