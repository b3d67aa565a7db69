"""Progress of a whole sweep: runs done / total, ETA from measured throughput, a line per evaluation.

Runs rewrite their record after every evaluation, so the sweep's process (or the submitting
machine, for SLURM on a shared filesystem) follows them by polling ``runs_dir/<spec_id>/record.json``.

ETA: the FLOPs still to do (each unfinished run's budget minus what its record shows) divided
by the FLOP rate this sweep has measured so far (FLOPs added by its runs / wall seconds since it
began, so evaluation, warm-up and the number of parallel workers are all in it). Before the
first evaluation there is no measurement: the ETA is the plan's estimate (past records of this
machine, divided by the workers) marked "est.", or "unknown".
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console

from lit_algos.sweeps.engine import PlannedRun


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class SweepProgress:
    """Follows a sweep's runs. ``enabled=False``: silent (the caller prints its own summary)."""

    def __init__(
        self,
        plans: list[PlannedRun],
        todo: list[PlannedRun],
        runs_dir: Path,
        *,
        console=None,
        enabled: bool = True,
        workers: int = 1,
        poll_seconds: float = 2.0,
    ):
        self.runs_dir = Path(runs_dir)
        self.console = console or Console()
        self.enabled = enabled
        self.total = len(plans)
        self.done = self.total - len(todo)
        self.todo = {p.spec_id: p for p in todo}
        self.workers = max(1, workers)
        self.poll_seconds = poll_seconds
        self.flops_now = {p.spec_id: p.done_flops for p in todo}
        self.flops_start = dict(self.flops_now)
        self.evals_seen: dict[str, int] = {}
        self.mtimes: dict[str, float] = {}
        self.active: set[str] = set()
        self.finished_ids: set[str] = set()
        self.t0 = time.time()
        self._last_poll = 0.0
        self._bar = None
        self._task = None
        self.tty = bool(getattr(self.console, "is_terminal", False)) and sys.stdout.isatty()

    # ---- measured figures --------------------------------------------------------------------
    def rate(self) -> float | None:
        """FLOP/s of this sweep so far (all workers together), None before the first evaluation."""
        added = sum(max(0.0, self.flops_now[s] - self.flops_start[s]) for s in self.flops_now)
        elapsed = time.time() - self.t0
        return added / elapsed if added > 0 and elapsed > 0 else None

    def remaining_flops(self) -> float | None:
        left = 0.0
        for sid, plan in self.todo.items():
            if sid in self.finished_ids:
                continue
            if plan.est_flops is None:
                return None
            left += max(0.0, plan.est_flops - self.flops_now[sid])
        return left

    def eta(self) -> tuple[float | None, str]:
        rate, left = self.rate(), self.remaining_flops()
        if rate and left is not None:
            return left / rate, "measured"
        pending = [p for s, p in self.todo.items() if s not in self.finished_ids]
        if pending and all(p.est_seconds is not None for p in pending):
            return sum(p.est_seconds for p in pending) / self.workers, "est."
        return (0.0, "measured") if not pending else (None, "")

    def eta_text(self) -> str:
        seconds, how = self.eta()
        return _duration(seconds) + (f" ({how})" if how == "est." else "")

    # ---- events --------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.enabled:
            return
        self.console.print(
            f"sweep: {self.total} runs, {self.done} finished already, {len(self.todo)} to train; "
            f"ETA {self.eta_text()}"
        )
        if self.tty:
            # the bar only on a terminal
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]sweep"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("runs · ETA {task.fields[eta]}"),
                console=self.console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                "sweep", total=self.total, completed=self.done, eta=self.eta_text()
            )

    def started(self, plan: PlannedRun, how: str | None = None) -> None:
        self.active.add(plan.spec_id)
        if self.enabled:
            how = how or ("resuming" if plan.state == "interrupted" else "training")
            self._print(
                f"[{self.done}/{self.total} done] {how} {plan.name} seed {plan.seed} ({plan.spec_id})"
            )

    def finished(self, plan: PlannedRun, ok: bool) -> None:
        self._read(plan.spec_id, force=True)
        self.active.discard(plan.spec_id)
        self.finished_ids.add(plan.spec_id)
        self.done += 1
        if self.enabled:
            status = self._status(plan.spec_id) or ("done" if ok else "failed")
            self._print(
                f"[{self.done}/{self.total} done] {plan.name} seed {plan.seed}: {status if ok else 'FAILED'}"
                f"; ETA {self.eta_text()}"
            )
            self._update_bar()

    def poll(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_poll < self.poll_seconds:
            return
        self._last_poll = now
        for sid in list(self.active):
            self._read(sid)
        self._update_bar()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # ---- internals -----------------------------------------------------------------------------
    def _record(self, sid: str) -> dict | None:
        try:
            return json.loads((self.runs_dir / sid / "record.json").read_text())
        except (OSError, ValueError):
            return None

    def _status(self, sid: str) -> str | None:
        data = self._record(sid)
        return data.get("status") if data else None

    def _read(self, sid: str, force: bool = False) -> None:
        path = self.runs_dir / sid / "record.json"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        if not force and self.mtimes.get(sid) == mtime:
            return
        self.mtimes[sid] = mtime
        data = self._record(sid)
        if not data:
            return
        curve = data.get("curve") or []
        seen = self.evals_seen.get(sid)
        if seen is None:
            # the first look: evaluations from before this sweep (a resumed run) are not news
            seen = self.evals_seen[sid] = len(curve) if self.todo[sid].state == "interrupted" else 0
        for i, point in enumerate(curve[seen:], start=seen + 1):
            self.flops_now[sid] = max(self.flops_now[sid], float(point.get("flops") or 0.0))
            if self.enabled:
                plan = self.todo[sid]
                budget = (
                    f" ({point['tokens'] / plan.budget_tokens:.0%} of budget)" if plan.budget_tokens else ""
                )
                loss = point.get("val_loss")
                self._print(
                    f"[{self.done}/{self.total} done] {plan.name} seed {plan.seed} eval {i}: step {point['step']}, "
                    f"{point['tokens']:.3g} tokens{budget}, val loss {loss if loss is None else f'{loss:.4f}'}; "
                    f"ETA {self.eta_text()}"
                )
        self.evals_seen[sid] = len(curve)

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, highlight=False, markup=False)
        else:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def _update_bar(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, eta=self.eta_text())
