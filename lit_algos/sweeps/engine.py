"""The sweep engine: plan a list of run specs against a runs directory, then train what is left.

Each spec's run lives in ``runs_dir/<spec_id>`` (the id is the spec's name, config hash and
seed, see spec.py), so a rerun of the same sweep finds its runs again:

- **finished** (``reached``, ``budget_exhausted``, ``diverged``): skipped. A diverged run is a
  result (the recipe diverges at this seed), not a failure, and is never retrained.
- **interrupted** (stopped by Ctrl-C / SIGTERM, killed, or ``failed`` with an error, and with a
  ``last.ckpt``): resumed from its last evaluation's checkpoint.
- **missing** (no record, or an unfinished record without a checkpoint): trained from the start;
  what was in its directory is removed first (it has nothing to resume from).
- **running**: another live process holds its lock; a worker that reaches it waits for the lock
  and then finds it finished (so nothing is trained twice).

A lock per spec id (``runs_dir/.sweep/locks/<spec_id>.lock``, an OS file lock through
``filelock``) is held while a run is decided and trained, so two workers or two sweeps sharing a
runs directory never train the same spec. The OS releases the lock when its process dies
(kill -9, a lost node on NFSv4), so a stale lock is taken over by the next worker without any
clean-up; the file keeps the holder's host and pid for the messages.

``runs_dir/.sweep/journal.jsonl`` gets one line per decision (train / resume / skip) and per
outcome: what a sweep did, for people and for the tests that count trainings.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import socket as _socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from lit_algos.config import Config
from lit_algos.errors import LitAlgosError
from lit_algos.records import FINISHED_STATUSES, RunRecord
from lit_algos.sweeps.spec import RunSpec

STATES = ("finished", "interrupted", "missing", "running")
SWEEP_DIR = ".sweep"  # inside runs_dir: locks, journal, logs (no record.json, so never taken for a run)
ACTION_ENV = "LIT_ALGOS_SWEEP_ACTION"
# A past run's FLOP rate stands for a planned run's only within this factor of FLOPs per token:
# small models run at a much lower FLOP rate (a 1-layer debug model at a tenth of a 4-layer one).
RATE_SIZE_FACTOR = 4.0  # rank 0's decision, inherited by DDP workers of the same run


@dataclass
class PlannedRun:
    """One spec of a sweep, resolved against the runs directory (no model built, no data read)."""

    spec: RunSpec
    spec_id: str
    config: Config
    state: str  # one of STATES
    run_dir: Path | None  # runs_dir/<spec_id> where it exists, else None
    budget_tokens: int | None  # tokens of the declared budget (None: only a time budget or a target)
    est_flops: float | None  # analytic training FLOPs per token x budget tokens
    est_seconds: float | None  # est_flops / a FLOP rate measured on this host (None: no past record)
    flops_per_token: float = 0.0
    done_flops: float = 0.0  # FLOPs already in the record (interrupted runs resume from there)
    status: str | None = None  # the record's status, when there is a record
    rate_source: str | None = None  # which past run the FLOP rate comes from
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def seed(self) -> int:
        return self.spec.seed


# ---- paths, locks, journal -----------------------------------------------------------------
def sweep_dir(runs_dir: Path) -> Path:
    return Path(runs_dir) / SWEEP_DIR


def lock_path(runs_dir: Path, spec_id: str) -> Path:
    return sweep_dir(runs_dir) / "locks" / f"{spec_id}.lock"


def log_path(runs_dir: Path, spec_id: str) -> Path:
    return sweep_dir(runs_dir) / "logs" / f"{spec_id}.log"


class SpecLock:
    """The lock of one spec id: an OS lock on a file (released by the OS when its holder dies)."""

    def __init__(self, runs_dir: Path, spec_id: str):
        self.path = lock_path(runs_dir, spec_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # thread_local=False: the lock belongs to the process (a sweep's poll thread may probe it)
        self._lock = FileLock(str(self.path), thread_local=False, is_singleton=False)

    def acquire(self, timeout: float = -1) -> bool:
        """Take the lock (wait up to ``timeout`` s; -1 forever); False if someone else holds it."""

        try:
            self._lock.acquire(timeout=timeout, poll_interval=0.5)
        except Timeout:
            return False
        self.path.with_suffix(".owner").write_text(
            json.dumps({"host": socket.gethostname(), "pid": os.getpid()})
        )
        return True

    def release(self) -> None:
        self._lock.release()

    def held_elsewhere(self) -> bool:
        """Whether a live process holds this lock now (probe: take and give back at once)."""
        if self._lock.is_locked:
            return False
        if self.acquire(timeout=0):
            self.release()
            return False
        return True

    def holder(self) -> str:
        owner = self.path.with_suffix(".owner")
        try:
            data = json.loads(owner.read_text())
            return f"{data['host']}:{data['pid']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    def __enter__(self) -> SpecLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def journal(runs_dir: Path, spec_id: str, action: str, **extra) -> None:
    """Append one event to the sweep journal (O_APPEND: lines from concurrent workers do not mix)."""
    path = sweep_dir(runs_dir) / "journal.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "time": time.time(),
        "spec_id": spec_id,
        "action": action,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **extra,
    }
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def read_journal(runs_dir: Path) -> list[dict]:
    path = sweep_dir(runs_dir) / "journal.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- planning --------------------------------------------------------------------------------
def disk_state(run_dir: Path) -> tuple[str, RunRecord | None]:
    """(state, record) of a run directory, ignoring locks: finished / interrupted / missing."""
    path = run_dir / "record.json"
    if not path.is_file():
        return "missing", None
    try:
        record = RunRecord.load(path)
    except LitAlgosError:
        return "missing", None  # unreadable: nothing to resume from
    if record.status in FINISHED_STATUSES:
        return "finished", record
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        return "interrupted", record
    return "missing", record


def budget_tokens(cfg: Config, flops_per_token: float) -> int | None:
    """Tokens the declared budget allows (the smaller of max_tokens and max_flops), None if unbounded."""
    # here: sweeps load with `lit-algos --help`, training loads torch
    from lit_algos.training.plan import plan_steps

    tokens_per_step, steps = plan_steps(cfg, flops_per_token)
    return None if steps is None else steps * tokens_per_step


def plan_sweep(
    specs: list[RunSpec], *, runs_dir: Path, rates: list[tuple[float, float, str]] | None = None
) -> list[PlannedRun]:
    """Resolve each spec (config, id, state, budget, estimated FLOPs and time), in order.

    Reads YAML and run records only: no model is built and no data is prepared, so a dry run of a
    large sweep is quick. Specs with the same id (the same config and seed) appear once.
    ``rates``: (flops_per_token, FLOP/s, source) measured on this host; default: from the records
    under ``runs_dir`` (see :func:`measured_rates`).
    """
    # here: sweeps load with `lit-algos --help`, flops loads torch
    from lit_algos.flops import estimate_flops

    runs_dir = Path(runs_dir)
    rates = measured_rates(runs_dir) if rates is None else rates
    out, seen = [], set()
    for spec in specs:
        cfg = spec.config()
        sid = spec.spec_id(cfg)
        if sid in seen:
            continue
        seen.add(sid)
        run_dir = runs_dir / sid
        state, record = disk_state(run_dir)
        if state != "finished" and record is not None and SpecLock(runs_dir, sid).held_elsewhere():
            state = "running"
        fpt = estimate_flops(cfg.model).per_token_train
        tokens = budget_tokens(cfg, fpt)
        est_flops = None if tokens is None else fpt * tokens
        rate, source = pick_rate(rates, fpt)
        done = float(record.final.flops) if record is not None and record.final else 0.0
        est_seconds = None
        if est_flops is not None and rate:
            est_seconds = max(0.0, est_flops - (0.0 if state == "missing" else done)) / rate
            if state == "finished":
                est_seconds = 0.0
        out.append(
            PlannedRun(
                spec=spec,
                spec_id=sid,
                config=cfg,
                state=state,
                run_dir=run_dir if run_dir.exists() else None,
                budget_tokens=tokens,
                est_flops=est_flops,
                est_seconds=est_seconds,
                flops_per_token=fpt,
                done_flops=0.0 if state == "missing" else done,
                status=record.status if record is not None else None,
                rate_source=source,
            )
        )
    return out


def measured_rates(runs_dir: Path, limit: int = 200) -> list[tuple[float, float, str]]:
    """(FLOPs per token, wall FLOP/s, run id) of the newest records under ``runs_dir`` that ran on
    this machine (same CPU / device name and core count). Wall = training clock + evaluation +
    warm-up, which is what a user waits for."""

    paths = sorted(Path(runs_dir).glob("*/record.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    me = _socket.gethostname()
    out = []
    for path in paths[:limit]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        final = data.get("final") or {}
        seconds = (
            (final.get("train_seconds") or 0)
            + (data.get("eval_seconds") or 0)
            + (data.get("warmup_seconds") or 0)
        )
        fpt = (data.get("flops_per_token") or {}).get("analytic")
        host = (data.get("owner") or {}).get("host")
        if host != me or not fpt or seconds <= 0 or not final.get("flops"):
            continue
        out.append((float(fpt), float(final["flops"]) / seconds, data.get("run_id", path.parent.name)))
    return out


def pick_rate(
    rates: list[tuple[float, float, str]], flops_per_token: float
) -> tuple[float | None, str | None]:
    """The FLOP rate of the past run whose model is closest in FLOPs per token (log distance):
    small models run at a lower FLOP rate than large ones, so the nearest size is the best guess."""
    if not rates:
        return None, None
    fpt, rate, source = min(rates, key=lambda r: abs(math.log(r[0] / flops_per_token)))
    if abs(math.log(fpt / flops_per_token)) > math.log(RATE_SIZE_FACTOR):
        return None, None  # no past run of a comparable size: the FLOP rate would be a guess
    return rate, source


# ---- running one spec (in a worker process, a SLURM task, or in-process) -----------------------
def run_spec(
    spec: RunSpec, runs_dir: Path, *, console=None, progress: bool | str = False, threads: int | None = None
) -> Path:
    """Train, resume or skip one spec under its lock; returns its run directory.

    This is what every executor runs. It decides from the disk state after taking the lock, so a
    worker that waited for another process finds the run finished and skips it.
    """
    # here: sweeps load with `lit-algos --help`, training loads torch and Lightning
    from lit_algos.training.distributed import is_rank_zero
    from lit_algos.training.run import train

    if threads is not None:
        apply_threads(threads)
    runs_dir = Path(runs_dir)
    cfg = spec.config()
    sid = spec.spec_id(cfg)
    run_dir = runs_dir / sid
    threads_info = _thread_info()
    if not is_rank_zero():
        # Another rank of this run: rank 0 holds the lock and made the decision. Lightning's own
        # children inherit it; ranks that SLURM started beside rank 0 read the same disk state
        # (rank 0 cannot change it before they join: it trains nothing alone).
        action = os.environ.get(ACTION_ENV) or _rank_action(run_dir)
        if action == "skip":
            return run_dir
        train(cfg, runs_dir=runs_dir, resume=sid if action == "resume" else False, run_id=sid, progress=False)
        return run_dir
    lock = SpecLock(runs_dir, sid)
    if not lock.acquire(timeout=0):
        journal(runs_dir, sid, "wait", holder=lock.holder())
        lock.acquire()
    try:
        state, record = disk_state(run_dir)
        if state == "finished":
            journal(runs_dir, sid, "skip", status=record.status if record else None)
            return run_dir
        action = "resume" if state == "interrupted" else "train"
        journal(runs_dir, sid, action, **threads_info)
        if action == "train" and run_dir.exists():
            shutil.rmtree(run_dir)  # unfinished and without a checkpoint: nothing to keep
        os.environ[ACTION_ENV] = action
        try:
            record = train(
                cfg,
                runs_dir=runs_dir,
                resume=sid if action == "resume" else False,
                run_id=sid,
                console=console,
                progress=progress,
            )
        except KeyboardInterrupt as err:  # Ctrl-C / SIGTERM: the record says interrupted
            journal(runs_dir, sid, "interrupted", error=str(err))
            raise
        except BaseException as err:
            journal(runs_dir, sid, "error", error=f"{type(err).__name__}: {err}")
            raise
        finally:
            os.environ.pop(ACTION_ENV, None)
        journal(runs_dir, sid, "done", status=record.status)
        return run_dir
    finally:
        lock.release()


def _rank_action(run_dir: Path) -> str:
    state, _ = disk_state(run_dir)
    return {"finished": "skip", "interrupted": "resume"}.get(state, "train")


def _thread_info() -> dict:
    # here: sweeps load with `lit-algos --help`, which must not load torch
    import torch

    return {"torch_threads": torch.get_num_threads(), "omp_threads": os.environ.get("OMP_NUM_THREADS")}


def apply_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in this process (torch's pool and OpenMP/MKL in children)."""
    # here: sweeps load with `lit-algos --help`, which must not load torch
    import torch

    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)


THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
