"""Several processes, devices and nodes: the launch protocol, the strategy, SLURM's view of a task.

One run can span processes in three ways, and each must train the same run:

- **Lightning's own launcher** (``--devices N``, and ``--num-nodes M`` with ``NODE_RANK``,
  ``MASTER_ADDR`` and ``MASTER_PORT`` set on every node): rank 0 of each node re-runs the command
  line for its other local ranks. Rank 0 publishes the run id in the environment before ``fit``
  so its children reuse it (:func:`publish_run_id`).
- **SLURM's srun** (``srun --ntasks-per-node N lit-algos train ... --devices N``): SLURM starts
  every rank; Lightning's ``SLURMEnvironment`` reads the ranks from ``SLURM_PROCID`` & co.
- **torchrun**: every rank started by torchrun (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``).

Ranks started by someone else than rank 0 (other nodes, srun, torchrun) cannot inherit its run
id: they take it from rank 0 over the process group once it exists (:class:`RunIdSync`), and
they write nothing before then (only global rank 0 writes the record, the config and the
checkpoints).
"""

from __future__ import annotations

import contextlib
import os
import re

from lit_algos.errors import LitAlgosError

RUN_ID_ENV = "LIT_ALGOS_RUN_ID"
STRATEGIES = ("auto", "ddp", "fsdp")


def inherited_run_id() -> str | None:
    """The run id rank 0 chose, when this process is a DDP worker of that run."""
    return os.environ.get(RUN_ID_ENV) or None


def is_rank_zero() -> bool:
    """Whether this process is global rank 0 of its launch (or a single process), as the launcher
    says before Lightning sets anything: ``RANK`` (torchrun, Lightning's children), ``SLURM_PROCID``
    in a step of several tasks (a one-task sweep job is rank 0 of its own run), ``NODE_RANK`` > 0
    on the other nodes of a Lightning multi-node launch, else ``LOCAL_RANK``."""
    env = os.environ
    if "RANK" in env:
        return env["RANK"] == "0"
    if int(env.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_PROCID" in env:
        return env["SLURM_PROCID"] == "0"
    if (env.get("NODE_RANK") or env.get("GROUP_RANK") or "0") != "0":
        return False
    return env.get("LOCAL_RANK", "0") == "0"


@contextlib.contextmanager
def publish_run_id(run_id: str):
    """Workers launched inside this block re-run the command and must reuse ``run_id``."""
    os.environ[RUN_ID_ENV] = run_id
    try:
        yield
    finally:
        os.environ.pop(RUN_ID_ENV, None)


# ---- SLURM ------------------------------------------------------------------------------------
def _tasks_per_node(text: str) -> list[int]:
    """SLURM's ``2(x3),1`` notation -> [2, 2, 2, 1]."""
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not m:
            return []
        out += [int(m.group(1))] * int(m.group(2) or 1)
    return out


def complete_srun_environment(env: dict | None = None) -> None:
    """Let ``srun -n N`` start a run, not only ``srun --ntasks-per-node N``.

    Lightning's SLURMEnvironment refuses a step of several tasks without
    ``SLURM_NTASKS_PER_NODE``, which SLURM sets only for ``--ntasks-per-node``. When every node of
    the step runs the same number of tasks (``SLURM_STEP_TASKS_PER_NODE``), that number is it.
    """
    env = os.environ if env is None else env
    if int(env.get("SLURM_NTASKS", "1") or 1) <= 1 or "SLURM_NTASKS_PER_NODE" in env:
        return
    counts = _tasks_per_node(env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE", ""))
    if counts and len(set(counts)) == 1:
        env["SLURM_NTASKS_PER_NODE"] = str(counts[0])
        return
    raise LitAlgosError(
        f"srun started {env.get('SLURM_NTASKS')} tasks spread unevenly over the nodes "
        f"(tasks per node: {env.get('SLURM_STEP_TASKS_PER_NODE') or env.get('SLURM_TASKS_PER_NODE')}); a run "
        "needs the same number of devices on every node. Use srun --ntasks-per-node N (N = --devices) and "
        "--nodes M (M = train.num_nodes)."
    )


def slurm_threads(env: dict | None = None) -> int | None:
    """CPU threads per task that SLURM gave this task, or None outside a SLURM job.

    ``SLURM_CPUS_PER_TASK`` when the job asked for ``--cpus-per-task``; else the CPUs allocated on
    this node split between the job's tasks there. With ``TaskPlugin=task/none`` nothing binds a
    task to its CPUs, so torch would otherwise start one thread per core of the whole node.
    """
    env = os.environ if env is None else env
    if "SLURM_JOB_ID" not in env:
        return None
    if env.get("SLURM_CPUS_PER_TASK"):
        return max(1, int(env["SLURM_CPUS_PER_TASK"]))
    cpus = int(env.get("SLURM_CPUS_ON_NODE", "0") or 0)
    if not cpus:
        return None
    local = env.get("SLURM_NTASKS_PER_NODE") or env.get("SLURM_STEP_TASKS_PER_NODE") or "1"
    counts = _tasks_per_node(local) or [1]
    return max(1, cpus // max(counts))


def apply_slurm_threads() -> int | None:
    """Inside a SLURM job, use the CPUs SLURM gave this task unless the thread count was set
    explicitly (``LIT_ALGOS_THREADS`` or ``OMP_NUM_THREADS``); returns the count applied."""
    if os.environ.get("LIT_ALGOS_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return None
    threads = slurm_threads()
    if threads is not None:
        # torch only inside a SLURM job: the sweep executors load this module with `lit-algos --help`
        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)  # also for Lightning's children and data workers
        torch.set_num_threads(threads)
    return threads


# ---- the Lightning strategy -------------------------------------------------------------------
def build_strategy(strategy: str, accelerator: str):
    """The ``strategy`` argument of the Trainer for ``train.strategy`` (fsdp: lit_algos.training.fsdp)."""
    if strategy != "fsdp":
        return strategy  # auto | ddp: Lightning's own (gloo on CPU, nccl on GPUs)
    # fsdp.py loads Lightning and torch.distributed: only for a run under FSDP
    from lit_algos.training.fsdp import build_fsdp_strategy

    return build_fsdp_strategy(accelerator)


def fsdp_root(trainer):
    """The FSDP-wrapped root module of a trainer under FSDP, else None (also for no trainer)."""
    # torch.distributed only when a trainer asks (see build_strategy)
    from torch.distributed.fsdp import FullyShardedDataParallel

    model = getattr(getattr(trainer, "strategy", None), "model", None)
    return model if isinstance(model, FullyShardedDataParallel) else None
