"""What a training run shows while it runs: a rich bar in a terminal, plain lines in a log.

``ProgressLines`` prints one line when the run starts (run id, folder, recipe, budget), one every
``every`` optimizer steps and one after every evaluation, each flushed at once, so a run piped to
a file, under nohup or in a SLURM log can be followed with ``tail -f``:

    run debug-s0-20261203-... | folder runs/debug-s0-... | recipe debug (config 1a2b..., seed 0) | budget 16,384 tokens (64 steps) | ...
    step 5/64 | tokens 1,280 | loss 6.1234 | lr 2.25e-03 | 9,876 tok/s | MFU 1.2% | elapsed 3s | ETA 41s
    eval step 16/64 | tokens 4,096 | val loss 5.4321 (bpb 2.101) | loss 5.5000 | lr ... | elapsed 9s | ETA 27s

``BudgetProgress`` is the terminal's bar: the share of the budget spent, step, train and
validation loss (after the first evaluation), lr, tokens/s, elapsed time and ETA. Both start with
the run's header (``RunHeader``), which ``lit_algos.train`` prints before Lightning is even imported.

ETA is the wall time still to go at the pace so far (evaluations included): elapsed x (budget
left / budget done this session). A run with no step or time budget (a target alone) has none.
"""

from __future__ import annotations

import math
import sys
import time

import lightning as L
from rich.progress import BarColumn, Progress, TextColumn

from lit_algos.training.callbacks import RateWindow, TrainClock
from lit_algos.training.header import RunHeader, duration  # noqa: F401  (RunHeader: public here too)


class _Pace(L.Callback):
    """Shared arithmetic: budget done, ETA, lr, throughput window (for the line and the bar)."""

    def __init__(self, clock: TrainClock, header: RunHeader):
        self.clock, self.header = clock, header
        self.start = time.monotonic()
        self._done0 = 0.0  # budget already done when this session started (resumed runs)
        self._train_start: float | None = None
        self._window = RateWindow()

    def done(self, step: int) -> float:
        """Share of the budget spent (0..1): steps or training seconds, whichever is further along."""
        h = self.header
        done = step / h.max_steps if h.max_steps else 0.0
        if h.max_seconds:
            done = max(done, self.clock.train_seconds / h.max_seconds)
        return min(done, 1.0)

    def eta(self, step: int) -> float | None:
        if self._train_start is None or not (self.header.max_steps or self.header.max_seconds):
            return None
        done = self.done(step)
        progress = done - self._done0
        if progress <= 0:
            return None
        return (time.monotonic() - self._train_start) * (1.0 - done) / progress

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def on_train_start(self, trainer, pl_module):
        self._train_start = time.monotonic()
        self._done0 = self.done(trainer.global_step)
        self._window.restart(trainer.global_step, self.clock)

    def rate(self, trainer, pl_module) -> tuple[float | None, float | None]:
        """(tokens/s, MFU) over the timed steps since the previous call."""
        peak = getattr(pl_module, "peak_flops", None)
        return self._window.read(
            trainer.global_step, self.clock, self.header.tokens_per_step, pl_module.flops_per_token,
            peak, trainer.world_size,
        )  # fmt: skip

    @staticmethod
    def lr_text(pl_module) -> str:
        lrs = pl_module.lr_metrics() if hasattr(pl_module, "lr_metrics") else {}
        if not lrs:
            return "lr -"
        return "lr " + " ".join(
            f"{k.removeprefix('lr/')} {v:.2e}" if len(lrs) > 1 else f"{v:.2e}" for k, v in lrs.items()
        )


class ProgressLines(_Pace):
    """Plain, flushed lines for logs: the header, every ``every`` steps, and after every evaluation."""

    def __init__(self, clock: TrainClock, header: RunHeader, every: int, stream=None):
        super().__init__(clock, header)
        self.every = max(1, every)
        self.stream = stream
        self._stepped_at = -1

    def print(self, line: str) -> None:
        print(line, file=self.stream or sys.stdout, flush=True)

    def _steps(self, step: int) -> str:
        return f"{step}/{self.header.max_steps}" if self.header.max_steps else str(step)

    def _tail(self, trainer, pl_module) -> list[str]:
        tps, mfu = self.rate(trainer, pl_module)
        step = trainer.global_step
        return [
            self.lr_text(pl_module),
            f"{tps:,.0f} tok/s" if tps is not None else "- tok/s",
            f"MFU {mfu:.1%}" if mfu is not None else "MFU -",
            f"elapsed {duration(self.elapsed())}",
            f"ETA {duration(self.eta(step))}",
        ]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if not trainer.is_global_zero or step == self._stepped_at:  # once per optimizer step
            return
        self._stepped_at = step
        if step % self.every:
            return
        head = [f"step {self._steps(step)}", f"tokens {step * self.header.tokens_per_step:,}"]
        loss = f"loss {pl_module.step_loss:.4f}" if hasattr(pl_module, "step_loss") else "loss -"
        self.print(" | ".join([*head, loss, *self._tail(trainer, pl_module)]))

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        step = trainer.global_step
        metrics = trainer.callback_metrics
        val = float(metrics["val/loss"]) if "val/loss" in metrics else math.nan
        bpb = f" (bpb {float(metrics['val/bpb']):.4f})" if "val/bpb" in metrics else ""
        loss = getattr(pl_module, "step_loss", math.nan)
        head = [
            f"eval step {self._steps(step)}",
            f"tokens {step * self.header.tokens_per_step:,}",
            f"val loss {val:.4f}{bpb}",
            f"loss {loss:.4f}",
        ]
        self.print(" | ".join([*head, *self._tail(trainer, pl_module)]))


class BudgetProgress(_Pace):
    """The terminal's rich bar: share of the budget, step, losses, lr, tokens/s, elapsed and ETA."""

    def __init__(self, clock: TrainClock, header: RunHeader, console=None):
        super().__init__(clock, header)
        self.console = console
        self.progress = None
        self.task = None
        self.val_loss: float | None = None
        self._last_step = -1

    def on_fit_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}% of budget"),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=1.0, info="starting ...")

    def on_train_start(self, trainer, pl_module):
        super().on_train_start(trainer, pl_module)
        if self.progress is not None:
            self.progress.update(self.task, info="first step (warm-up, not timed) ...")

    def on_validation_start(self, trainer, pl_module):
        if self.progress is not None and not trainer.sanity_checking:
            self.progress.update(self.task, info=self._info(trainer, pl_module, "evaluating ..."))

    def on_validation_end(self, trainer, pl_module):
        value = trainer.callback_metrics.get("val/loss")
        if value is not None and not trainer.sanity_checking:
            self.val_loss = float(value)

    def _info(self, trainer, pl_module, extra: str = "") -> str:
        step = trainer.global_step
        timed = step - self.clock.excluded_steps  # tokens/s over the whole run so far (warm-up excluded)
        seconds = self.clock.train_seconds
        tps = timed * self.header.tokens_per_step / seconds if seconds > 0 and timed > 0 else None
        parts = [f"step {step}"]
        loss = getattr(pl_module, "step_loss", math.nan)
        if math.isfinite(loss):
            parts.append(f"loss {loss:.3f}")
        if self.val_loss is not None:  # nothing before the first evaluation
            parts.append(f"val {self.val_loss:.3f}")
        parts.append(self.lr_text(pl_module))
        if tps is not None:
            parts.append(f"{tps:,.0f} tok/s")
        parts += [f"elapsed {duration(self.elapsed())}", f"ETA {duration(self.eta(step))}"]
        return "  ".join(parts + ([extra] if extra else []))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.progress is None:
            return
        step = trainer.global_step
        if step == self._last_step:  # update once per optimizer step, not per micro-batch
            return
        self._last_step = step
        self.progress.update(self.task, completed=self.done(step), info=self._info(trainer, pl_module))

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def on_train_end(self, trainer, pl_module):
        self.stop()

    def on_exception(self, trainer, pl_module, exception):
        self.stop()
