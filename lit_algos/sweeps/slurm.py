"""The SLURM executor: one SLURM array task per run, submitted and followed through submitit.

- **Submission.** Runs with the same process layout (devices x nodes) go into one job array
  (``executor.map_array``), at most ``max_array_size()`` tasks per array. A run over several
  devices or nodes gets that many tasks (``--ntasks-per-node`` = devices, ``--nodes`` =
  num_nodes) and Lightning's SLURMEnvironment makes them one DDP/FSDP run. Jobs are named
  ``lit-algos-<sweep>`` (``job_name``), are requeueable (``--requeue``), and their logs go to
  ``<runs dir>/.sweep/submitit/<array id>_<task>_0_log.{out,err}``; the journal gets a
  ``submit`` line per run with its job id and log path.
- **Time limits and preemption.** submitit asks SLURM for SIGUSR2 90 s before the time limit and
  on preemption; the task then requeues itself (:class:`SpecTask` is Checkpointable) and the run
  continues from its last evaluation's checkpoint. A run killed outright (scancel, a lost node)
  leaves its record ``running`` and its lock free: the next run of the same command resumes it.
- **Following the jobs without sacct.** submitit reads job states from ``sacct``, which needs
  SLURM's accounting storage (slurmdbd). Small clusters and the one-node test cluster have none,
  and then submitit can never tell a cancelled task from a pending one. This executor does not
  ask sacct: a task is done when its result file exists, and a task that has left ``squeue``
  without a result file ended without one (cancelled, killed, out of memory or time); it is
  reported as failed with its log path. ``sacct`` is asked only to name that final state, and
  where it fails the state is "unknown".
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import submitit

from lit_algos.sweeps.engine import PlannedRun, journal, run_spec
from lit_algos.sweeps.executors import slurm_parameters
from lit_algos.sweeps.spec import spec_from_json, spec_to_json
from lit_algos.training.distributed import complete_srun_environment, slurm_threads

ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT"}
GRACE_SECONDS = 10.0  # a task gone from squeue gets this long for its result file (shared filesystems lag)


class SpecTask(submitit.helpers.Checkpointable):
    """One run as a SLURM task. On a time limit or preemption submitit calls ``checkpoint`` and
    requeues the task with the same arguments; the run then resumes from its last checkpoint.

    ``threads``: CPU threads for the run; default what SLURM gave the task
    (``SLURM_CPUS_PER_TASK``, else the node's CPUs of this job split between its tasks there).
    """

    def __call__(self, spec_json: str, runs_dir: str, threads: int | None = None) -> str:
        complete_srun_environment()  # a run over several tasks: Lightning needs SLURM_NTASKS_PER_NODE
        threads = threads or slurm_threads()
        spec = spec_from_json(spec_json)
        print(f"lit-algos: run {spec.name} seed {spec.seed} in {runs_dir} ({threads} threads)", flush=True)
        return str(run_spec(spec, Path(runs_dir), threads=threads))


def layout(plan: PlannedRun) -> tuple[int, int]:
    """(tasks per node, nodes) of a run: one task per device."""
    t = plan.config.train
    return t.devices, t.num_nodes


def max_array_size(default: int = 1001) -> int:
    """The cluster's MaxArraySize (an array holds at most MaxArraySize - 1 tasks)."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return default
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return int(value.strip())
    return default


def queued_states(user: str | None = None) -> dict[str, str] | None:
    """Job id (``<array id>_<task>``) -> state of this user's queued tasks; None if squeue failed."""
    cmd = ["squeue", "-h", "-r", "-o", "%i|%T", "-u", user or str(os.getuid())]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    states = {}
    for line in out.splitlines():
        job, _, state = line.strip().partition("|")
        if job:
            states[job] = state
    return states


def final_state(job_id: str) -> str:
    """The state sacct knows for a finished task, or "unknown" (no accounting storage)."""
    try:
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown: this cluster keeps no job accounting (sacct)"
    states = [s.strip() for s in out.splitlines() if s.strip()]
    return states[0] if states else "unknown"


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class SlurmWatch:
    """Follows submitted jobs until each has a result file or has left the queue without one."""

    def __init__(self, jobs: dict[str, tuple[PlannedRun, submitit.Job]]):
        self.pending = dict(jobs)
        self.gone_since: dict[str, float] = {}

    def poll(self) -> list[tuple[PlannedRun, submitit.Job, str | None]]:
        """The jobs that ended since the last poll: (plan, job, error text or None)."""
        ended = []
        queued = None
        for sid, (plan, job) in list(self.pending.items()):
            if job.task(0).paths.result_pickle.exists():  # rank 0 holds the run's outcome
                ended.append((plan, job, self._outcome(job)))
                del self.pending[sid]
                continue
            if queued is None:
                queued = queued_states()
                if queued is None:  # squeue failed (controller busy): decide nothing this round
                    return ended
            if queued.get(job.job_id) in ALIVE:
                self.gone_since.pop(sid, None)
                continue
            first = self.gone_since.setdefault(sid, time.time())
            if time.time() - first >= GRACE_SECONDS:
                ended.append((plan, job, self._vanished(job)))
                del self.pending[sid]
        return ended

    @staticmethod
    def _outcome(job) -> str | None:
        lead = job.task(0)  # rank 0 of a run over several tasks
        try:
            lead.result()
        except Exception as err:  # noqa: BLE001  (a failed task is reported, the others go on)
            # submitit's message: "... with trace:\n-----\n<traceback>\n-----\n<where the logs are>"
            parts = re.split(r"\n-{10,}\n", str(err))
            trace = [ln for ln in (parts[1] if len(parts) > 2 else str(err)).splitlines() if ln.strip()]
            last = trace[-1].strip() if trace else type(err).__name__
            log = lead.paths.stderr
            return f"SLURM job {job.job_id} failed: {last}\nlog: {log}\n{log_tail(log)}"
        return None

    @staticmethod
    def _vanished(job) -> str:
        log = job.task(0).paths.stderr
        return (
            f"SLURM job {job.job_id} ended without a result (state: {final_state(job.job_id)}; cancelled, "
            f"killed, or out of time or memory)\nlog: {log}\n{log_tail(log)}"
        )

    def cancel(self) -> None:
        arrays = {job.job_id.split("_")[0] for _, job in self.pending.values()}
        for array in sorted(arrays):
            subprocess.run(["scancel", array], check=False, capture_output=True)


class LocalWatch:
    """submitit's local executor (``cluster: local``, tests and debugging): its own job states."""

    def __init__(self, jobs: dict[str, tuple[PlannedRun, submitit.Job]]):
        self.pending = dict(jobs)

    def poll(self) -> list[tuple[PlannedRun, submitit.Job, str | None]]:
        ended = []
        for sid, (plan, job) in list(self.pending.items()):
            if job.done():
                ended.append((plan, job, SlurmWatch._outcome(job)))
                del self.pending[sid]
        return ended

    def cancel(self) -> None:
        for _, job in self.pending.values():
            job.cancel(check=False)


class SlurmExecutor:
    """One run per array task of a SLURM job array (``cluster="local"``: submitit's local executor)."""

    def __init__(self, slurm: dict | None = None, threads: int | None = None):
        self.slurm = dict(slurm or {})
        self.threads = threads
        self.cluster = self.slurm.get("cluster")  # None: SLURM when sbatch is there; "local": test/debug

    def run(self, plans: list[PlannedRun], runs_dir: Path, progress) -> dict[str, str]:
        """Submit ``plans``, follow them to the end; returns spec_id -> error text of the failed."""
        folder = Path(self.slurm.get("folder") or (Path(runs_dir) / ".sweep" / "submitit"))
        params = slurm_parameters(self.slurm)
        params.setdefault("name", "lit-algos-sweep")
        params.setdefault("timeout_min", 60)
        jobs: dict[str, tuple[PlannedRun, submitit.Job]] = {}
        watch = None
        try:
            for group in self._arrays(plans):
                executor = self._executor(folder, params, layout(group[0]))
                # --threads if given, else each task reads what SLURM granted it (SLURM_CPUS_PER_TASK);
                # submitit's local executor has no SLURM to ask, so it gets cpus_per_task directly.
                threads = self.threads or (
                    None if executor.cluster == "slurm" else params.get("cpus_per_task")
                )
                submitted = executor.map_array(
                    SpecTask(),
                    [spec_to_json(p.spec) for p in group],
                    [str(runs_dir)] * len(group),
                    [threads] * len(group),
                )
                for plan, job in zip(group, submitted):
                    jobs[plan.spec_id] = (plan, job)
                    log = job.task(0).paths.stderr
                    journal(runs_dir, plan.spec_id, "submit", job_id=job.job_id, log=str(log))
                    progress.started(
                        plan, how=f"submitted (job {job.job_id}, log {job.task(0).paths.stdout})"
                    )
            watch = (SlurmWatch if executor.cluster == "slurm" else LocalWatch)(jobs)
            failed: dict[str, str] = {}
            while watch.pending:
                for plan, _job, error in watch.poll():
                    if error is not None:
                        failed[plan.spec_id] = error[-3000:]
                    progress.finished(plan, ok=error is None)
                progress.poll()
                time.sleep(1.0)
        except KeyboardInterrupt:
            # Ctrl-C (or SIGTERM) on the sweep: its jobs are cancelled; their runs resume next time.
            (watch or LocalWatch(jobs)).cancel()
            raise
        return failed

    def _arrays(self, plans: list[PlannedRun]) -> list[list[PlannedRun]]:
        """Plans grouped by process layout, then cut to the cluster's array size."""
        groups: dict[tuple[int, int], list[PlannedRun]] = {}
        for plan in plans:
            groups.setdefault(layout(plan), []).append(plan)
        size = max(1, max_array_size() - 1) if self.cluster in (None, "slurm") else len(plans)
        return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]

    def _executor(self, folder: Path, params: dict, tasks: tuple[int, int]) -> submitit.AutoExecutor:
        executor = submitit.AutoExecutor(folder=folder, cluster=self.cluster)
        params = dict(params)
        per_node, nodes = tasks
        if executor.cluster == "slurm":
            extra = dict(params.get("slurm_additional_parameters") or {})
            extra.setdefault("requeue", True)  # preemption puts the task back in the queue
            params["slurm_additional_parameters"] = extra
            if per_node * nodes > 1:  # one task per device; Lightning's SLURMEnvironment joins them
                params.update(tasks_per_node=per_node, nodes=nodes)
        else:
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
        executor.update_parameters(**params)
        return executor
