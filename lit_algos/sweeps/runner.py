"""``run_sweep``: plan the specs, train what is not finished on an executor, follow the progress.

    from lit_algos.sweeps import RunSpec, run_sweep
    specs = [RunSpec("retro", "retro", seed=s) for s in range(3)]
    run_dirs = run_sweep(specs, runs_dir=Path("runs"), workers=2)  # spec_id -> run directory

Rerunning the same call trains nothing that finished, resumes what was interrupted and trains
what is missing (see engine.py for the rules).
"""

from __future__ import annotations

from pathlib import Path

from lit_algos.errors import LitAlgosError
from lit_algos.sweeps.engine import PlannedRun, plan_sweep
from lit_algos.sweeps.executors import LocalExecutor, slurm_parameters
from lit_algos.sweeps.spec import RunSpec
from lit_algos.utils.io import check_writable_dir


class SweepError(LitAlgosError):
    """Some runs of a sweep failed; the others are finished and a rerun retries only the failed."""


def run_sweep(
    specs: list[RunSpec],
    *,
    runs_dir: Path,
    executor: str = "local",
    workers: int = 1,
    threads: int | None = None,
    slurm: dict | None = None,
    progress: bool = True,
    console=None,
    allow_failures: bool = False,
    plans: list[PlannedRun] | None = None,
) -> dict[str, Path]:
    """Train every spec that is not finished; returns spec_id -> run directory for every spec.

    ``executor``: ``local`` (``workers`` processes, ``threads`` CPU threads each, default
    cores // workers) or ``slurm`` (``slurm``: partition, time, gpus_per_node, cpus_per_task,
    mem_gb, account, qos, constraint, array_parallelism, additional, setup; ``cluster: local`` runs
    submitit's local executor). Failed runs raise :class:`SweepError` once the others are done
    (``allow_failures=True``: return anyway; their directories hold the failed records).
    ``plans``: a plan from :func:`plan_sweep` already made for these specs (saves re-reading).
    """
    # here: sweeps load with `lit-algos --help`; rich (the console, the progress) only to run one
    from rich.console import Console

    from lit_algos.sweeps.progress import SweepProgress

    runs_dir = Path(runs_dir)
    console = console or Console()
    runner = make_executor(executor, workers=workers, threads=threads, slurm=slurm)  # bad flags fail first
    check_writable_dir(runs_dir, "the runs directory (--runs-dir or $LIT_ALGOS_RUNS)")
    plans = plan_sweep(specs, runs_dir=runs_dir) if plans is None else plans
    result = {p.spec_id: runs_dir / p.spec_id for p in plans}
    todo = [p for p in plans if p.state != "finished"]
    if not todo:
        if progress:
            console.print(f"sweep: all {len(plans)} runs are finished already; nothing to train.")
        return result
    tracker = SweepProgress(
        plans,
        todo,
        runs_dir,
        console=console,
        enabled=progress,
        workers=workers if executor == "local" else len(todo),
    )
    tracker.start()
    try:
        failed = runner.run(todo, runs_dir, tracker)
    except KeyboardInterrupt as err:
        raise KeyboardInterrupt(
            f"sweep stopped ({err or 'Ctrl-C'}); finished runs stay, and the same command resumes the "
            "interrupted ones from their last checkpoint"
        ) from err
    finally:
        tracker.stop()
    if failed and not allow_failures:
        detail = "\n\n".join(f"{sid}: {text}" for sid, text in failed.items())
        raise SweepError(
            f"{len(failed)} of {len(todo)} runs failed (the others are finished and stay): {', '.join(failed)}. "
            f"Rerun the same command to retry only these (from their last checkpoint where they have one).\n\n{detail}"
        )
    return result


def plan_rows(plans: list[PlannedRun]) -> list[dict]:
    """The dry run as rows (the table and ``--json`` both print these)."""
    return [
        {
            "run": f"{p.name} seed {p.seed}",
            "name": p.name,
            "seed": p.seed,
            "spec_id": p.spec_id,
            "state": p.state,
            "status": p.status,
            "model": f"{p.config.model.n_layer}L {p.config.model.n_embd}d",
            "budget_tokens": p.budget_tokens,
            "est_flops": p.est_flops,
            "est_seconds": p.est_seconds,
            "rate_source": p.rate_source,
        }
        for p in plans
    ]


def plan_table(plans: list[PlannedRun], title: str = "sweep plan"):
    """A rich table of the plan: state, budget, estimated FLOPs and time per run, and totals."""
    # here: sweeps load with `lit-algos --help`, rich only to print a plan
    from rich.table import Table

    from lit_algos.sweeps.progress import _duration

    rows = plan_rows(plans)
    known = [r["est_seconds"] for r in rows if r["state"] != "finished"]
    total_time = None if any(t is None for t in known) else sum(known)
    flops = [r["est_flops"] for r in rows if r["state"] != "finished"]
    table = Table(title=title)
    for col in ("run", "state", "model", "budget tokens", "est. FLOPs", "est. time", "spec id"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["run"],
            r["state"] + (f" ({r['status']})" if r["status"] and r["status"] != r["state"] else ""),
            r["model"],
            f"{r['budget_tokens']:.3g}" if r["budget_tokens"] else "–",
            f"{r['est_flops']:.3g}" if r["est_flops"] else "–",
            _duration(r["est_seconds"]),
            r["spec_id"],
        )
    left = [r for r in rows if r["state"] != "finished"]
    table.caption = (
        f"{len(left)} of {len(rows)} runs to train; {sum(f or 0 for f in flops):.3g} FLOPs; est. time "
        f"{_duration(total_time)} with one worker "
        + (
            "(FLOP rate of the nearest-sized past run on this machine)"
            if total_time is not None
            else "(unknown: no past run of this machine in the runs directory to take a FLOP rate from)"
        )
    )
    return table


EXECUTORS = ("local", "slurm")


def make_executor(executor: str, *, workers: int = 1, threads: int | None = None, slurm: dict | None = None):
    if executor == "local":
        return LocalExecutor(workers, threads)
    if executor == "slurm":
        # submitit loads only when a sweep goes to SLURM
        from lit_algos.sweeps.slurm import SlurmExecutor

        slurm_parameters(slurm)  # bad settings fail before anything is planned or submitted
        return SlurmExecutor(slurm, threads)
    raise LitAlgosError(f"Unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}.")
