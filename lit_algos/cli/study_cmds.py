"""``lit-algos study NAME`` (train a study's runs, then write its report) and ``lit-algos report
STUDY_DIR`` (rewrite the report from existing runs). Thin shells over lit_algos.studies / reports."""

from __future__ import annotations

import time
from pathlib import Path

from lit_algos.errors import LitAlgosError
from lit_algos.records import default_runs_dir


def register(sub) -> None:
    p = sub.add_parser(
        "study",
        help="run a study (recipes/studies/NAME.yaml): its sweep, then report.md and plots",
        description=(
            "Expands the study into runs (recipes x sizes x seeds at the preset's budgets), trains the missing ones "
            "with the sweep engine (finished runs are skipped, interrupted ones resumed), then writes report.md, "
            "PNG plots and results.json to <runs dir>/studies/<name>[-<preset>]."
        ),
    )
    p.add_argument("name", help="a study under recipes/studies/ (sanderson, gundlach, moe) or a YAML path")
    p.add_argument("--quick", action="store_true", help="the quick preset (fewer sizes, seeds and tokens)")
    p.add_argument("--preset", default=None, help="a named preset of the study (default: its default_preset)")
    p.add_argument(
        "--executor", choices=("local", "slurm"), default="local", help="where runs train (default local)"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="local processes side by side (default: the study's)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads per worker (default: the study's / split)"
    )
    p.add_argument(
        "--slurm-partition",
        "--partition",
        dest="partition",
        default=None,
        metavar="NAME",
        help="slurm: the partition, as `sweep --slurm-partition` (default: the study's executor.slurm.partition)",
    )
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="where runs go (default $LIT_ALGOS_RUNS or ./runs)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the runs with budgets and estimates; train nothing"
    )
    p.add_argument(
        "--report-only", action="store_true", help="write the report from existing runs; train nothing"
    )
    p.add_argument(
        "--wandb", action="store_true", help="log the runs and the report's tables and plots to W&B"
    )
    p.add_argument("--no-progress", action="store_true", help="no plan table and no sweep progress lines")
    p.set_defaults(func=cmd_study)

    r = sub.add_parser(
        "report",
        help="rewrite a study's report from its existing runs (no training)",
        description="STUDY_DIR is the directory `lit-algos study` wrote (it holds study.json).",
    )
    r.add_argument("study_dir", type=Path, metavar="STUDY_DIR", help="the directory `lit-algos study` wrote")
    r.add_argument("--wandb", action="store_true", help="also log the tables and plots to W&B")
    r.set_defaults(func=cmd_report)


def cmd_study(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    from lit_algos.reports.render import record_wall_time, write_report, write_study_meta
    from lit_algos.studies.run import dry_run_rows, local_layout, plan_study, run_study
    from lit_algos.studies.spec import load_study

    if args.quick and args.preset:
        raise LitAlgosError("Give --quick or --preset, not both (--quick is --preset quick).")
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.cli.sweep_cmds import check_sweep_args

    check_sweep_args(args)
    console = Console()
    study = load_study(args.name)
    preset = "quick" if args.quick else args.preset
    runs_dir = Path(args.runs_dir or default_runs_dir())
    plan = plan_study(study, preset, runs_dir, wandb=args.wandb)
    if args.dry_run:
        return _print_plan(console, plan, dry_run_rows(plan))
    if not args.report_only:
        # here, not at the top: `lit-algos --help` loads this module, not what the command runs
        from lit_algos.utils.io import check_writable_dir

        check_writable_dir(runs_dir, "the runs directory (--runs-dir or $LIT_ALGOS_RUNS)")
        write_study_meta(plan.out_dir, study, plan.expansion.preset, runs_dir)
        slurm = {"partition": args.partition} if args.partition else None
        layout = local_layout(plan, args.workers, args.threads) if args.executor == "local" else (None, None)
        started = time.perf_counter()
        try:
            done = run_study(
                plan,
                executor=args.executor,
                workers=args.workers,
                threads=args.threads,
                slurm=slurm,
                progress=not args.no_progress,
                console=console,
            )
        except LitAlgosError:  # some runs failed: report what finished, then say what failed
            record_wall_time(plan.out_dir, time.perf_counter() - started, len(plan.specs), *layout)
            if plan.out_dir.exists():
                report = write_report(study, plan.expansion.preset, runs_dir, plan.out_dir, wandb=False)
                console.print(f"report of the finished runs: {report}")
            raise
        record_wall_time(plan.out_dir, time.perf_counter() - started, len(done), *layout)
    else:
        _refuse_report_of_nothing(plan)
        write_study_meta(plan.out_dir, study, plan.expansion.preset, runs_dir)
    report = write_report(study, plan.expansion.preset, runs_dir, plan.out_dir, wandb=args.wandb)
    console.print(f"report: {report}")
    return 0


def _refuse_report_of_nothing(plan) -> None:
    """--report-only with none of the study's runs finished under the runs directory would write a
    report of nothing: refused before anything is written."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.studies.run import dry_run_rows

    rows = dry_run_rows(plan)
    if not any(r["state"] == "finished" for r in rows):
        raise LitAlgosError(
            f"--report-only: none of the {len(rows)} runs of study {plan.expansion.study.name!r} (preset "
            f"{plan.expansion.preset.name}) is finished under {plan.runs_dir}, so the report would have nothing in it. "
            "Train them first (drop --report-only), or pass the --runs-dir that holds them."
        )


def cmd_report(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    from lit_algos.reports.render import read_study_meta, write_report

    study, preset, runs_dir = read_study_meta(args.study_dir)
    report = write_report(study, preset, runs_dir, args.study_dir, wandb=args.wandb)
    Console().print(f"report: {report}")
    return 0


def _print_plan(console, plan, rows) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.table import Table

    exp = plan.expansion
    table = Table(title=f"study {exp.study.name}, preset {exp.preset.name}: {len(rows)} runs")
    for col in ("run", "seed", "recipe", "state", "tokens", "est. FLOPs", "est. time"):
        table.add_column(col)
    total = 0.0
    for r in rows:
        total += r["seconds"] or 0.0
        table.add_row(
            r["name"],
            str(r["seed"]),
            r["recipe"],
            r["state"],
            f"{r['tokens']:,}" if r["tokens"] else "–",
            f"{r['flops']:.3g}" if r["flops"] else "–",
            f"{r['seconds']:.0f} s" if r["seconds"] else "–",
        )
    console.print(table)
    if total:
        console.print(f"estimated training time (one worker): {total / 60:.1f} min")
    if plan.pending:
        console.print(
            f"learning-rate sweep pending for {', '.join(plan.pending)}: its {len(plan.tuning)} runs train first; "
            "the other runs of those arms are listed at the recipe's own rate and will use the rate the sweep chooses"
        )
    console.print(f"report would go to {plan.out_dir}")
    return 0
