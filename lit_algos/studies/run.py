"""Running a study: expand it, hand the runs to the sweep engine, write the report.

The engine (``lit_algos.sweeps.run_sweep``) skips finished runs and resumes interrupted ones, so
running a study again trains only what is missing and then rewrites the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lit_algos import sweeps  # sweeps.run_sweep looked up at call time: tests stand in for the engine
from lit_algos.studies.expand import Expansion, expand
from lit_algos.studies.spec import Study, study_dir
from lit_algos.studies.tuning import chosen_scales, sweep_results, tuning_runs


@dataclass
class StudyPlan:
    expansion: Expansion
    specs: list  # the distinct RunSpecs to train (the learning-rate sweep's first)
    runs_dir: Path
    out_dir: Path
    tuning: list = field(default_factory=list)  # the sweep's specs, trained before the others
    pending: list = field(default_factory=list)  # tuned arms whose sweep is not complete yet
    wandb: bool = False


def plan_study(study: Study, preset: str | None, runs_dir: Path, *, wandb: bool = False) -> StudyPlan:
    """The study's distinct runs under ``preset``; reads YAML only (no model, no data). Arms with a
    learning-rate sweep (``preset.tune``) use the multiplier it chose where its records are all
    there; until then they are listed at the recipe's own rate and named in ``pending``."""

    p = study.preset(preset)
    tuning = tuning_runs(study, p)
    sweeps = sweep_results(study, p, runs_dir) if tuning else []
    expansion = expand(study, p, chosen_scales(sweeps))
    specs = _distinct(expansion, [*tuning, *expansion.runs])
    if wandb:  # W&B settings are left out of the config hash: the same spec ids with or without
        specs, tuning = _with_wandb(study, specs), _with_wandb(study, _distinct(expansion, tuning))
    pending = [f"{s.experiment}/{s.arm}" for s in sweeps if s.chosen is None]
    return StudyPlan(expansion, specs, Path(runs_dir), study_dir(study, p, runs_dir), tuning, pending, wandb)


def _distinct(expansion: Expansion, specs: list) -> list:
    seen, out = set(), []
    for spec in specs:
        key = (expansion.config_hash(spec), spec.seed)
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


def _with_wandb(study: Study, specs: list) -> list:

    # Group: the run's name (the default), so the W&B UI shows the seeds of one variant together;
    # the study is a tag (filter study:<name>), and its report run is in group study-<name>.
    extra = {"train.wandb.enabled": True, "train.wandb.tags": [f"study:{study.name}"]}
    return [s.with_patch(extra) for s in specs]


def dry_run_rows(plan: StudyPlan) -> list[dict]:
    """One row per run: name, seed, recipe, state, tokens, FLOPs and time estimates where the engine gives them."""

    rows = []
    for run in sweeps.plan_sweep(plan.specs, runs_dir=plan.runs_dir):
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


def local_layout(plan: StudyPlan, workers: int | None, threads: int | None) -> tuple[int, int | None]:
    """(workers, threads per worker): the command's flags, else the preset's, else the study's."""
    study, preset = plan.expansion.study, plan.expansion.preset
    workers = workers or preset.workers or study.executor.get("workers") or 1
    threads = threads if threads is not None else (preset.threads or study.executor.get("threads"))
    return workers, threads


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
    """Train the study's runs with the sweep engine (finished ones are skipped), the learning-rate
    sweep first where its choice is still pending; spec id -> run dir."""
    study, preset = plan.expansion.study, plan.expansion.preset
    workers, threads = local_layout(plan, workers, threads)
    slurm_cfg = {
        k: v for k, v in {**(study.executor.get("slurm") or {}), **(slurm or {})}.items() if v is not None
    }
    slurm_cfg.setdefault("job_name", f"lit-algos-{study.name}")  # the array's name in squeue

    def sweep(specs):
        return sweeps.run_sweep(
            specs,
            runs_dir=plan.runs_dir,
            executor=executor,
            workers=workers,
            threads=threads,
            slurm=slurm_cfg if executor == "slurm" else None,
            progress=progress,
            console=console,
        )

    done = {}
    if plan.pending:  # the learning-rate sweep first: the other runs of a tuned arm need its choice
        done.update(sweep(plan.tuning))
        plan = plan_study(study, preset.name, plan.runs_dir, wandb=plan.wandb)
    done.update(sweep(plan.specs))
    return done
