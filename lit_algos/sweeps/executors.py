"""Executors: where a sweep's runs are trained.

- ``local``: N worker processes side by side on this machine, one run each at a time. CPU threads
  are split explicitly (torch's default of one thread per core in every process oversubscribes
  the cores: two runs side by side on 2 cores ran 3x slower than with one thread each), and on a
  GPU machine each worker gets its own device(s) through ``CUDA_VISIBLE_DEVICES``.
- ``slurm``: one run per SLURM array task through ``submitit`` (lit_algos.sweeps.slurm); a task
  that hits its time limit or is preempted is requeued and resumes from its last checkpoint.
  submitit's local executor (``cluster="local"``) runs the same path without SLURM.

Both run :func:`lit_algos.sweeps.engine.run_spec`, which takes the spec's lock and decides
skip / resume / train from the disk, so executors never need to agree with each other.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from lit_algos.errors import LitAlgosError
from lit_algos.sweeps.engine import THREAD_ENV_VARS, PlannedRun, log_path
from lit_algos.sweeps.spec import RunSpec, spec_from_json, spec_to_json  # noqa: F401  (worker, tests)
from lit_algos.training.distributed import slurm_threads

PARENT_ENV = "LIT_ALGOS_SWEEP_PARENT"  # a local worker's sweep process (see stop_with_parent)
# --slurm-* flags and study-file keys -> submitit parameters (AutoExecutor names).
SLURM_KEYS = {
    "partition": "slurm_partition",
    "time": "timeout_min",  # minutes
    "gpus_per_node": "gpus_per_node",
    "cpus_per_task": "cpus_per_task",
    "mem_gb": "mem_gb",
    "account": "slurm_account",
    "qos": "slurm_qos",
    "constraint": "slurm_constraint",
    "array_parallelism": "slurm_array_parallelism",
    "additional": "slurm_additional_parameters",  # dict of any other sbatch option
    "setup": "slurm_setup",  # shell lines run before the task (module load, venv activation)
    "job_name": "name",  # the array's name in squeue (default lit-algos-<sweep>)
}


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, and inside a SLURM job no more than the
    CPUs SLURM gave its task (with TaskPlugin=task/none nothing binds a task to them)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    allocated = slurm_threads()
    return min(cores, allocated) if allocated else cores


def thread_plan(workers: int, threads: int | None = None, cores: int | None = None) -> int:
    """CPU threads per worker: ``threads`` if given, else the cores split evenly (at least 1)."""
    if workers < 1:
        raise LitAlgosError(f"--workers must be at least 1, got {workers}.")
    if threads is not None:
        if threads < 1:
            raise LitAlgosError(f"--threads must be at least 1, got {threads}.")
        return threads
    return max(1, (cores or available_cores()) // workers)


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else all that torch counts."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d for d in env.split(",") if d.strip() and d.strip() != "-1"]
    # torch only when CUDA_VISIBLE_DEVICES does not say
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]  # NVML count: no CUDA context made


def device_groups(gpus: list[str], workers: int, per_run: int = 1) -> list[list[str]]:
    """The devices of each worker slot, round-robin (several slots share a GPU when there are more
    workers than GPUs); empty lists on a machine without GPUs."""
    if not gpus:
        return [[] for _ in range(workers)]
    n = len(gpus)
    return [[gpus[(slot * per_run + j) % n] for j in range(min(per_run, n))] for slot in range(workers)]


def worker_env(threads: int, devices: list[str], base: dict | None = None) -> dict[str, str]:
    """The environment of a local worker: its thread count and (on GPU machines) its devices."""
    env = dict(os.environ if base is None else base)
    for var in THREAD_ENV_VARS:
        env[var] = str(threads)
    env["LIT_ALGOS_THREADS"] = str(threads)
    if devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    return env


# ---- local ------------------------------------------------------------------------------------
class LocalExecutor:
    """Up to ``workers`` runs at a time, each in its own process (``python -m lit_algos.sweeps.worker``)."""

    def __init__(self, workers: int = 1, threads: int | None = None, gpus: list[str] | None = None):
        self.workers = workers
        self.threads = thread_plan(workers, threads)
        self.gpus = visible_gpus() if gpus is None else gpus

    def run(self, plans: list[PlannedRun], runs_dir: Path, progress) -> dict[str, str]:
        """Train ``plans``; returns spec_id -> error text for the runs that failed."""
        per_run = max(
            (p.config.train.devices for p in plans if p.config.train.accelerator != "cpu"), default=1
        )
        groups = device_groups(self.gpus, self.workers, per_run)
        queue = list(plans)
        running: dict[int, tuple[PlannedRun, subprocess.Popen, object]] = {}
        failed: dict[str, str] = {}
        restore = _sigterm_as_interrupt()
        try:
            while queue or running:
                for slot in range(self.workers):
                    if slot not in running and queue:
                        plan = queue.pop(0)
                        running[slot] = (plan, *self._start(plan, runs_dir, groups[slot]))
                        progress.started(plan)
                for slot, (plan, proc, log) in list(running.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    log.close()
                    del running[slot]
                    if code != 0:
                        failed[plan.spec_id] = _log_tail(log_path(runs_dir, plan.spec_id), code)
                    progress.finished(plan, ok=code == 0)
                progress.poll()
                time.sleep(0.5)
        except BaseException:
            # Ctrl-C or an error here: stop the workers the way Ctrl-C stops a run (SIGTERM: the
            # record says interrupted and the last checkpoint stays), then give up.
            for _, proc, _log in running.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.time() + 60
            for _, proc, log in running.values():
                try:
                    proc.wait(timeout=max(1.0, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                log.close()
            raise
        finally:
            if restore is not None:
                signal.signal(signal.SIGTERM, restore)
        return failed

    def _start(self, plan: PlannedRun, runs_dir: Path, devices: list[str]):
        path = log_path(runs_dir, plan.spec_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "ab")  # noqa: SIM115  (closed when the worker ends)
        cmd = [
            sys.executable,
            "-m",
            "lit_algos.sweeps.worker",
            "--runs-dir",
            str(runs_dir),
            spec_to_json(plan.spec),
        ]
        # start_new_session: Ctrl-C reaches the sweep only, which then stops its workers cleanly.
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**worker_env(self.threads, devices), PARENT_ENV: str(os.getpid())},
            start_new_session=True,
        )
        return proc, log


def _sigterm_as_interrupt():
    """SIGTERM (``kill``, a batch system ending the job) stops the sweep like Ctrl-C, so its
    workers are stopped cleanly too; returns the previous handler (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt("the sweep received SIGTERM")

    return signal.signal(signal.SIGTERM, interrupt)


def stop_with_parent() -> None:
    """In a local worker: get SIGTERM when the sweep process dies (even by kill -9), so no worker
    trains on unattended; SIGTERM ends a run as interrupted, to be resumed (Linux only)."""
    # popped: processes this worker starts (DDP ranks > 0) have the worker as parent, not the sweep
    parent = int(os.environ.pop(PARENT_ENV, "0") or 0)
    if not parent or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the sweep died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _log_tail(path: Path, code: int, lines: int = 15) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        tail = []
    return f"exit code {code}; log {path}:\n" + "\n".join(tail)


# ---- slurm (submitit; the executor itself is in lit_algos.sweeps.slurm) ------------------------
def slurm_parameters(slurm: dict | None) -> dict:
    """submitit parameters from ``slurm`` (keys of SLURM_KEYS; unknown keys are refused)."""
    out = {}
    for key, value in (slurm or {}).items():
        if key in ("cluster", "folder") or value is None:
            continue
        if key not in SLURM_KEYS:
            raise LitAlgosError(
                f"Unknown slurm setting {key!r} (value {value!r}); allowed: {', '.join(SLURM_KEYS)} "
                "(any other sbatch option goes under 'additional', e.g. additional: {{gres: 'gpu:2'}})."
            )
        if key == "time":
            value = _minutes(value)
        if key in ("gpus_per_node", "cpus_per_task", "array_parallelism"):
            value = int(value)
        if key == "mem_gb":
            value = float(value)
        if key == "setup" and isinstance(value, str):
            value = [value]
        out[SLURM_KEYS[key]] = value
    return out


def _minutes(value) -> int:
    """SLURM time as minutes: an int, or 'MM', 'HH:MM:SS', 'D-HH:MM:SS'."""
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    parts = [int(p) for p in text.split(":")]
    if len(parts) == 1:
        return days * 1440 + parts[0]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts
    return days * 1440 + h * 60 + m + (1 if s else 0)
