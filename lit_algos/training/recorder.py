"""``RunRecorder``: the callback that keeps the curve and writes the run record.

After every evaluation it appends an ``EvalPoint`` (step, tokens, FLOPs, training seconds,
validation loss and bits per byte) and rewrites ``record.json`` atomically, so a run killed at
any moment leaves a readable record with its curve up to the last evaluation (``interrupted``
after Ctrl-C / SIGTERM, and also after ``kill -9``: the record names its writing process in
``owner``, and a ``running`` record whose process is gone reads as interrupted; ``failed`` after
an error).
At every optimizer step it keeps the mean training loss (all micro-batches, all ranks; computed by
``LitGPT``, which also logs the metrics). Its state travels in checkpoints, so a resumed run
continues the same curve.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import lightning as L

from lit_algos.peaks import mfu as mfu_of
from lit_algos.records import EvalPoint, RunRecord, current_owner, interpolate_to_target
from lit_algos.training.callbacks import TrainClock
from lit_algos.training.module import bits_per_byte, cost_axes


def now_iso() -> str:
    """The UTC time now, ISO 8601 to the second (record timestamps)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunRecorder(L.Callback):
    """Keeps the evaluation curve and the per-step train loss, and rewrites record.json after every evaluation."""

    def __init__(
        self,
        record: RunRecord,
        path: Path,
        *,
        clock: TrainClock,
        tokens_per_step: int,
        flops_per_token: float,
        bytes_per_token: float,
        peak_flops: float | None = None,
    ):
        self.record = record  # the static part (config, fingerprints, counts); the curve is added here
        self.path = Path(path)
        self.clock = clock
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.bytes_per_token = bytes_per_token  # val bytes / val tokens, for bits per byte
        self.peak_flops = peak_flops  # per device, for MFU (benchmark.device_peak); None: no MFU
        self.curve: list[EvalPoint] = []
        self.train_curve: list[list[float]] = []  # [step, mean train loss] per optimizer step
        self.eval_seconds = 0.0
        self._eval_start: float | None = None
        self._last_step_seen = -1

    # ---- the record ----------------------------------------------------------------------------
    def point(self, step: int, val_loss: float) -> EvalPoint:
        # The same axes LitGPT logs with val/loss (cost_axes), so a logger's curve and the record agree.
        axes = cost_axes(step, self.tokens_per_step, self.flops_per_token, self.clock.train_seconds)
        bpb = bits_per_byte(val_loss, self.bytes_per_token)
        return EvalPoint(step, axes["tokens"], axes["flops"], axes["train_seconds"], val_loss, bpb)

    def snapshot(self, status: str, *, error: str | None = None, finished: bool = False) -> RunRecord:
        """The record as of now: the static part plus the curve, to-target figures and throughput."""
        final = self.curve[-1] if self.curve else None
        tokens_per_second = mfu = None
        if final is not None and final.train_seconds > 0:
            # Throughput over the timed steps only: the warm-up steps' tokens are not in train_seconds.
            timed = max(0.0, 1.0 - self.clock.excluded_steps / final.step) if final.step else 0.0
            tokens_per_second = final.tokens * timed / final.train_seconds
            hw = self.record.hardware
            devices = hw.get("n_devices", 1) * hw.get("num_nodes", 1)
            mfu = mfu_of(final.flops * timed / final.train_seconds, self.peak_flops, devices)
        target = self.record.target_loss
        to_target = interpolate_to_target(self.curve, target) if target is not None else None
        return replace(
            self.record,
            status=status,
            curve=list(self.curve),
            final=final,
            train_curve=[list(x) for x in self.train_curve],
            reached=to_target is not None,
            to_target=to_target,
            tokens_per_second=tokens_per_second,
            mfu=mfu,
            eval_seconds=self.eval_seconds,
            warmup_seconds=self.clock.warmup_seconds,
            warmup_steps=self.clock.excluded_steps,
            finished_at=now_iso() if finished else "",
            owner=current_owner(),
            error=error,
        )

    def write(self, trainer: L.Trainer | None, status: str, **kwargs) -> RunRecord:
        record = self.snapshot(status, **kwargs)
        if trainer is None or trainer.is_global_zero:
            record.save(self.path)  # atomic: a kill leaves the previous or this version
        return record

    # ---- loggers -------------------------------------------------------------------------------
    @staticmethod
    def send_to_loggers(trainer: L.Trainer, metrics: dict, step: int) -> None:
        for logger in trainer.loggers:
            try:
                logger.log_metrics(metrics, step=step)
            except Exception as err:  # a logger failure is a warning, never a stopped run
                warnings.warn(f"logger {type(logger).__name__} failed: {err}", stacklevel=1)

    # ---- hooks ---------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module):
        self._last_step_seen = trainer.global_step
        self.write(trainer, "running")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step == self._last_step_seen:  # a micro-batch inside gradient accumulation
            return
        self._last_step_seen = step
        self.train_curve.append([step, pl_module.step_loss])  # reduced over ranks by LitGPT

    def on_validation_start(self, trainer, pl_module):
        self._eval_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or self._eval_start is None:
            return
        self.eval_seconds += time.perf_counter() - self._eval_start
        self._eval_start = None
        value = trainer.callback_metrics.get("val/loss")
        val_loss = float(value) if value is not None else math.nan
        point = self.point(trainer.global_step, val_loss)
        if self.curve and self.curve[-1].step == point.step:  # never two points at one step
            self.curve[-1] = point
        else:
            self.curve.append(point)
        self.write(trainer, "running")

    def state_dict(self):
        return {
            "curve": [asdict(p) for p in self.curve],
            "train_curve": self.train_curve,
            "eval_seconds": self.eval_seconds,
        }

    def load_state_dict(self, state):
        self.curve = [EvalPoint(**p) for p in state["curve"]]
        self.train_curve = [list(x) for x in state["train_curve"]]
        self.eval_seconds = float(state["eval_seconds"])


class RunIdSync(L.Callback):
    """Ranks that rank 0 did not start itself (srun, torchrun, the other nodes of a multi-node
    launch) could not inherit its run id; they take it from rank 0 once the process group is up,
    so every rank's record names the same run. Only rank 0 writes the record and the config."""

    def __init__(self, record: RunRecord):
        self.record = record

    def setup(self, trainer, pl_module, stage):
        self.record.run_id = trainer.strategy.broadcast(self.record.run_id, src=0)
