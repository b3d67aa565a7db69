"""Callbacks that turn a Lightning fit into a train-to-target measurement.

- ``TrainClock``: the speedrun clock. It runs over training steps and data loading; evaluation,
  checkpointing and the first optimizer step (compilation / allocator warm-up) are excluded and
  reported separately.
- ``TargetTracker``: evaluates the whole validation set every N tokens, keeps the curve, stops at
  the target, on a spent budget or on divergence, and checkpoints after each evaluation.
- ``BudgetProgress``: a rich progress line with tokens/s, loss and the share of the budget spent.

Both stateful callbacks save their state in checkpoints so ``--resume`` continues the same curve.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch

from lit_algos.records import EvalPoint, ToTarget, interpolate_to_target


class TrainClock(L.Callback):
    def __init__(self, warmup_steps: int = 1):
        self.warmup_steps = warmup_steps
        self.train_seconds = 0.0
        self.warmup_seconds = 0.0
        self._since: float | None = None  # perf_counter when the clock last (re)started
        self._session_start_step = 0  # warm-up is the first step(s) of each fit, resumed ones included
        self.excluded_steps = 0  # optimizer steps whose time went to warm-up (their tokens still count)
        self._last_warm_step = 0

    @staticmethod
    def _sync() -> None:
        # CUDA kernels run asynchronously: without a sync the clock would stop when the step is
        # enqueued, not when it is done.
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def start(self) -> None:
        if self._since is None:
            self._sync()
            self._since = time.perf_counter()

    def pause(self, trainer: L.Trainer) -> None:
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
        self.start()

    def on_train_end(self, trainer, pl_module):
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


class TargetTracker(L.Callback):
    """Evaluate at fixed token counts, stop at the target/budget/divergence, checkpoint after each eval."""

    def __init__(
        self,
        *,
        clock: TrainClock,
        val_loader_fn,
        tokens_per_step: int,
        flops_per_token: float,
        eval_every_steps: int,
        target_loss: float | None,
        max_seconds: float | None,
        divergence_factor: float,
        bytes_per_token: float,
        checkpoint_path: Path | None,
        checkpoint_every_steps: int | None = None,
        on_eval=None,
        on_step=None,
        log_every_steps: int = 10,
        stop_at_target: bool = True,
    ):
        self.clock = clock
        self.val_loader_fn = val_loader_fn
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.eval_every_steps = eval_every_steps
        self.target_loss = target_loss
        self.max_seconds = max_seconds
        self.divergence_factor = divergence_factor
        self.bytes_per_token = bytes_per_token  # val bytes / val tokens, for bits per byte
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every_steps = checkpoint_every_steps or eval_every_steps
        self.on_eval = on_eval  # callable(point, trainer) for loggers / progress
        self.on_step = on_step  # callable(metrics, step, trainer): train loss for loggers
        self.log_every_steps = log_every_steps
        self.stop_at_target = stop_at_target  # false: the crossing is recorded, the run goes on
        self.curve: list[dict] = []
        self.train_curve: list[list[float]] = []  # [step, train loss] per optimizer step
        self.status: str = "running"
        self.eval_seconds = 0.0
        self._last_step_seen = -1

    # ---- helpers ---------------------------------------------------------------------------
    def point(self, trainer, val_loss: float) -> EvalPoint:
        step = trainer.global_step
        tokens = step * self.tokens_per_step
        bpb = val_loss / (math.log(2) * self.bytes_per_token) if math.isfinite(val_loss) else math.nan
        return EvalPoint(step, tokens, tokens * self.flops_per_token, self.clock.train_seconds, val_loss, bpb)

    def to_target(self) -> ToTarget | None:
        if self.target_loss is None:
            return None
        return interpolate_to_target([EvalPoint(**p) for p in self.curve], self.target_loss)

    def evaluate(self, trainer, pl_module) -> EvalPoint:
        start = time.perf_counter()
        val_loss, _ = pl_module.evaluate(self.val_loader_fn())
        self.eval_seconds += time.perf_counter() - start
        point = self.point(trainer, val_loss)
        self.curve.append(asdict(point))
        if self.on_eval is not None:
            self.on_eval(point, trainer)
        return point

    def judge(self, point: EvalPoint) -> str:
        if not math.isfinite(point.val_loss):
            return "diverged"
        first = self.curve[0]["val_loss"]
        if point.val_loss > self.divergence_factor * first:
            return "diverged"
        if self.stop_at_target and self.target_loss is not None and point.val_loss <= self.target_loss:
            return "reached"
        return "running"

    def save_checkpoint(self, trainer) -> None:
        if self.checkpoint_path is None:
            return
        tmp = self.checkpoint_path.with_name(self.checkpoint_path.name + ".tmp")
        trainer.save_checkpoint(tmp, weights_only=False)
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            os.replace(tmp, self.checkpoint_path)  # atomic: a crash never leaves half a checkpoint

    # ---- hooks -----------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module):
        self._last_step_seen = trainer.global_step  # the first step boundary is one optimizer step away

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step == self._last_step_seen:  # a micro-batch inside gradient accumulation
            return
        self._last_step_seen = step
        self.clock.pause(trainer)  # stop the clock while we evaluate / checkpoint
        loss = pl_module.pop_step_loss()
        self.train_curve.append([step, loss])
        if self.on_step is not None and step % self.log_every_steps == 0:
            tokens = step * self.tokens_per_step
            metrics = {
                "train/loss": loss,
                "tokens": tokens,
                "flops": tokens * self.flops_per_token,
                "train_seconds": self.clock.train_seconds,
            }
            self.on_step(metrics, step, trainer)
        if not math.isfinite(loss):
            self.evaluate(trainer, pl_module)
            self.status = "diverged"
            trainer.should_stop = True
            return
        last_step = (
            trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else math.inf
        )  # -1: unbounded
        if step % self.eval_every_steps == 0 or step >= last_step:
            status = self.judge(self.evaluate(trainer, pl_module))
            if status != "running":
                self.status = status
                trainer.should_stop = True
        if self.status == "running" and self.seconds_spent(trainer):
            if not self.curve or self.curve[-1]["step"] != step:
                self.status = self.judge(self.evaluate(trainer, pl_module))
            if self.status == "running":
                self.status = "budget_exhausted"
            trainer.should_stop = True
        if not trainer.should_stop and step % self.checkpoint_every_steps == 0:
            self.save_checkpoint(trainer)
        self.clock.start()

    def seconds_spent(self, trainer) -> bool:
        """Whether the time budget is spent, agreed by all ranks: each rank has its own clock, and a
        rank that stopped (and evaluated) alone would leave the others waiting in a collective."""
        if self.max_seconds is None:
            return False
        spent = self.clock.train_seconds >= self.max_seconds
        return bool(trainer.strategy.reduce_boolean_decision(spent, all=False))

    def on_train_end(self, trainer, pl_module):
        self.finish(trainer, pl_module)

    def finish(self, trainer, pl_module) -> None:
        """When fit ends normally: a last evaluation if the budget ended between evaluations."""
        if self.status == "running":
            if not self.curve or self.curve[-1]["step"] != trainer.global_step:
                self.status = self.judge(self.evaluate(trainer, pl_module))
            if self.status == "running":
                self.status = "budget_exhausted"

    def state_dict(self):
        return {
            "curve": self.curve,
            "train_curve": self.train_curve,
            "eval_seconds": self.eval_seconds,
            "status": self.status,
            "last_step_seen": self._last_step_seen,
        }

    def load_state_dict(self, state):
        self.curve = list(state["curve"])
        self.train_curve = [list(x) for x in state["train_curve"]]
        self.eval_seconds = float(state["eval_seconds"])
        self.status = state["status"]
        self._last_step_seen = int(state["last_step_seen"])


class BudgetProgress(L.Callback):
    """One rich progress bar: share of the budget spent, tokens/s, last train and val loss."""

    def __init__(self, clock: TrainClock, tokens_per_step: int, max_steps: int, max_seconds: float | None):
        self.clock = clock
        self.tokens_per_step = tokens_per_step
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.progress = None
        self.task = None
        self.val_loss = math.nan
        self._last_step = -1

    def on_train_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}% of budget"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=1.0, info="")

    def on_eval(self, point, trainer) -> None:
        self.val_loss = point.val_loss

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.progress is None:
            return
        step = trainer.global_step
        done = step / self.max_steps if self.max_steps else 0.0
        if self.max_seconds:
            done = max(done, self.clock.train_seconds / self.max_seconds)
        timed_tokens = (step - self.clock.excluded_steps) * self.tokens_per_step
        tps = timed_tokens / self.clock.train_seconds if self.clock.train_seconds > 0 else 0.0
        if trainer.global_step == self._last_step:  # update once per optimizer step, not per micro-batch
            return
        self._last_step = trainer.global_step
        # Lightning's outputs["loss"] is divided by the accumulation count; undo that for display.
        loss = (
            outputs["loss"].item() * trainer.accumulate_grad_batches
            if isinstance(outputs, dict)
            else math.nan
        )
        info = f"step {step}  loss {loss:.3f}  val {self.val_loss:.3f}  {tps:,.0f} tok/s"
        self.progress.update(self.task, completed=min(done, 1.0), info=info)

    def on_train_end(self, trainer, pl_module):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def on_exception(self, trainer, pl_module, exception):
        self.on_train_end(trainer, pl_module)
