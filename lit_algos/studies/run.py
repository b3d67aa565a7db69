"""Running a study: expand it, hand the runs to the sweep engine, write the report.

The engine (``lit_algos.sweeps.run_sweep``) skips finished runs and resumes interrupted ones, so
running a study again trains only what is missing and then rewrites the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lit_algos.studies.expand import Expansion, expand
from lit_algos.studies.spec import Study, study_dir


@dataclass
class StudyPlan:
    expansion: Expansion
    specs: list  # the distinct RunSpecs to train
    runs_dir: Path
    out_dir: Path


def plan_study(study: Study, preset: str | None, runs_dir: Path, *, wandb: bool = False) -> StudyPlan:
    """The study's distinct runs under ``preset``; reads YAML only (no model, no data)."""
    from lit_algos.sweeps.spec import RunSpec

    p = study.preset(preset)
    expansion = expand(study, p)
    specs = expansion.unique()
    if wandb:  # W&B settings are left out of the config hash: the same spec ids with or without
        extra = ("train.wandb.enabled=true", f"train.wandb.group=study-{study.name}")
        specs = [RunSpec(s.name, s.recipe, (*s.overrides, *extra), s.seed, s.tags) for s in specs]
    return StudyPlan(expansion, specs, Path(runs_dir), study_dir(study, p, runs_dir))


def dry_run_rows(plan: StudyPlan) -> list[dict]:
    """One row per run: name, seed, recipe, state, tokens, FLOPs and time estimates where the engine gives them."""
    from lit_algos.sweeps import plan_sweep

    rows = []
    for run in plan_sweep(plan.specs, runs_dir=plan.runs_dir):
        rows.append(
            {
                "name": run.spec.name,
                "seed": run.spec.seed,
                "recipe": run.spec.recipe,
                "state": run.state,
                "tokens": run.budget_tokens,
                "flops": run.est_flops,
                "seconds": run.est_seconds,
            }
        )
    return rows


def run_study(
    plan: StudyPlan,
    *,
    executor: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    slurm: dict | None = None,
    progress: bool = True,
    console=None,
) -> dict:
    """Train the study's runs with the sweep engine (finished ones are skipped); spec id -> run dir."""
    study, preset = plan.expansion.study, plan.expansion.preset
    workers = workers or preset.workers or study.executor.get("workers") or 1
    threads = threads if threads is not None else (preset.threads or study.executor.get("threads"))
    slurm_cfg = {
        k: v for k, v in {**(study.executor.get("slurm") or {}), **(slurm or {})}.items() if v is not None
    }
    slurm_cfg.setdefault("job_name", f"lit-algos-{study.name}")  # the array's name in squeue
    from lit_algos.sweeps import run_sweep

    return run_sweep(
        plan.specs,
        runs_dir=plan.runs_dir,
        executor=executor,
        workers=workers,
        threads=threads,
        slurm=slurm_cfg if executor == "slurm" else None,
        progress=progress,
        console=console,
    )
