"""``lit-algos sweep ablation|scaling``: plan the runs an attribution or a scaling fit needs
(lit_algos.sweeps.ablation / .scaling), train them on the sweep engine (lit_algos.sweeps), then
print the analysis (lit_algos.analysis.comparisons). This module only parses flags and prints.
"""

from __future__ import annotations

import json
from pathlib import Path

from lit_algos.cli.train_cmds import add_config_args

# Names the tests and older code import from here; the logic lives in lit_algos.sweeps.
from lit_algos.sweeps.ablation import (  # noqa: F401
    COMPONENTS,
    ablation_jobs,
    dedupe_jobs,
    default_components,
    swap_overrides,
)
from lit_algos.sweeps.scaling import CPU_LADDER, SCALING_SEEDS
from lit_algos.sweeps.scaling import scale_overrides as _scale_overrides  # noqa: F401


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="train the runs for an ablation (attribution) or a scaling fit, then analyse"
    )
    kinds = p.add_subparsers(dest="sweep", metavar="KIND", required=True)

    a = kinds.add_parser("ablation", help="add-one / remove-one runs between two recipes, then attribution")
    a.add_argument("--ref", default="retro", help="the old stack (default retro)")
    a.add_argument("--new", default="modern", help="the new stack (default modern)")
    a.add_argument(
        "--components",
        default=None,
        help=f"comma-separated subset of: {', '.join(COMPONENTS)} (default: all but one of mlp/moe, "
        "moe when the new recipe's mlp.kind is moe)",
    )
    a.add_argument(
        "--shapley",
        action="store_true",
        help="also train every other subset of the components (2^k runs in all) for Shapley shares",
    )
    _common(a)
    a.set_defaults(func=cmd_ablation)

    s = kinds.add_parser("scaling", help="train recipes over a size ladder and fit L(C) = E + A C^-alpha")
    s.add_argument("--recipes", nargs="+", default=["retro", "modern"], help="one or two recipes (ref, new)")
    s.add_argument(
        "--scales", nargs="+", default=list(CPU_LADDER), help=f"size ladder (default {' '.join(CPU_LADDER)})"
    )
    _common(s)
    # 2 seeds x 3 sizes = 6 points per fit (see lit_algos.sweeps.scaling.SCALING_SEEDS)
    s.set_defaults(func=cmd_scaling, seeds=SCALING_SEEDS)


def add_executor_args(p) -> None:
    """Where and how the runs of a sweep are trained (shared with ``lit-algos study``)."""
    g = p.add_argument_group("executor")
    g.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default="local",
        help="local: worker processes on this machine (default); slurm: one SLURM array task per run (submitit)",
    )
    g.add_argument("--workers", type=int, default=1, help="local: runs trained side by side (default 1)")
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per run (default: the cores split between the workers; slurm: --slurm-cpus-per-task)",
    )
    g.add_argument("--slurm-partition", default=None, metavar="NAME")
    g.add_argument(
        "--slurm-time", default=None, metavar="TIME", help="per run: minutes or HH:MM:SS (default 60 min)"
    )
    g.add_argument("--slurm-gpus-per-node", type=int, default=None, metavar="N")
    g.add_argument("--slurm-cpus-per-task", type=int, default=None, metavar="N")
    g.add_argument("--slurm-mem-gb", type=float, default=None, metavar="GB")
    g.add_argument("--slurm-account", default=None, metavar="NAME")
    g.add_argument("--slurm-qos", default=None, metavar="NAME")
    g.add_argument("--slurm-constraint", default=None, metavar="FEATURES")
    g.add_argument(
        "--slurm-array-parallelism", type=int, default=None, metavar="N", help="array tasks at once"
    )
    g.add_argument(
        "--slurm-setup", action="append", default=None, metavar="LINE", help="shell line run before each task"
    )
    g.add_argument(
        "--slurm-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option (repeatable), e.g. --slurm-param gres=gpu:a100:1",
    )
    g.add_argument(
        "--slurm-cluster",
        default=None,
        choices=("slurm", "local", "debug"),
        help="submitit cluster (default: slurm where sbatch exists); local runs the same tasks here",
    )


def slurm_settings(args) -> dict:
    """The ``--slurm-*`` flags as the ``slurm`` dict of :func:`lit_algos.sweeps.run_sweep`."""
    from lit_algos.errors import LitAlgosError

    extra = {}
    for item in args.slurm_param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LitAlgosError(f"--slurm-param {item!r}: expected KEY=VALUE, e.g. --slurm-param gres=gpu:1.")
        extra[key] = value
    out = {
        "partition": args.slurm_partition,
        "time": args.slurm_time,
        "gpus_per_node": args.slurm_gpus_per_node,
        "cpus_per_task": args.slurm_cpus_per_task,
        "mem_gb": args.slurm_mem_gb,
        "account": args.slurm_account,
        "qos": args.slurm_qos,
        "constraint": args.slurm_constraint,
        "array_parallelism": args.slurm_array_parallelism,
        "setup": args.slurm_setup,
        "additional": extra or None,
        "cluster": args.slurm_cluster,
    }
    return {k: v for k, v in out.items() if v is not None}


def _common(p) -> None:
    add_config_args(p)
    p.add_argument("--seeds", type=int, default=1, help="seeds per configuration (default 1)")
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="where runs go (default $LIT_ALGOS_RUNS or ./runs)"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only list the runs: state (finished / interrupted / missing), budget, estimated FLOPs and time",
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the plan (--dry-run) or the analysis as JSON")
    add_executor_args(p)


def train_specs(specs, args) -> dict[str, Path] | None:
    """Print the plan; unless ``--dry-run``, train the specs on the engine. Run dirs per spec id."""
    from rich.console import Console

    from lit_algos.records import default_runs_dir
    from lit_algos.sweeps import plan_rows, plan_sweep, plan_table, run_sweep

    console = Console(stderr=args.json)  # --json: stdout holds the JSON alone
    runs_dir = args.runs_dir or default_runs_dir()
    plans = plan_sweep(specs, runs_dir=runs_dir)
    if args.dry_run:
        if args.json:
            print(json.dumps(plan_rows(plans), indent=2))
        else:
            console.print(plan_table(plans, title=f"sweep plan ({runs_dir})"))
        return None
    if not args.no_progress:
        console.print(plan_table(plans, title=f"sweep plan ({runs_dir})"))
    return run_sweep(
        specs,
        runs_dir=runs_dir,
        executor=args.executor,
        workers=args.workers,
        threads=args.threads,
        slurm={"job_name": f"lit-algos-{args.sweep}", **slurm_settings(args)},
        progress=not args.no_progress,
        console=console,
        plans=plans,
    )


def _records(paths: list[Path], include_failed: bool = False):
    from lit_algos.analysis.runs import resolve_runs

    return resolve_runs([str(p) for p in paths], None, "sweep runs", include_failed=include_failed)


def cmd_ablation(args) -> int:
    from rich.console import Console

    from lit_algos.sweeps.ablation import plan_ablation

    plan = plan_ablation(
        args.ref, args.new, args.components, seeds=args.seeds, overrides=args.overrides, shapley=args.shapley
    )
    console = Console(stderr=args.json)
    for name, other in plan.same_as.items():
        console.print(f"skipped {name}: its config hash equals {other}'s, so {other}'s runs stand for it")
    run_dirs = train_specs(plan.specs, args)
    if run_dirs is None:
        return 0
    # the analysis (scipy) is imported only now: a dry run stays quick
    from lit_algos.analysis.comparisons import ceg_with_attribution
    from lit_algos.analysis.tables import ranking
    from lit_algos.cli.analysis_cmds import print_ceg

    groups = plan.attribution_inputs(run_dirs)
    result = ceg_with_attribution(
        _records(groups["ref"], include_failed=True),
        _records(groups["new"], include_failed=True),
        add={k: _records(v) for k, v in groups["add"].items()},
        remove={k: _records(v) for k, v in groups["remove"].items()},
        shapley=args.shapley,
    )
    print_ceg(result, as_json=args.json, console=console)
    if not args.json and result.attribution:
        order = ", ".join(
            f"{c} {v:.3g}×" if v is not None else f"{c} –" for c, v in ranking(result.attribution)
        )
        console.print(f"components by add-one CEG: {order}")
    return 0


def cmd_scaling(args) -> int:
    from lit_algos.sweeps.scaling import plan_scaling

    plan = plan_scaling(args.recipes, args.scales, seeds=args.seeds, overrides=args.overrides)
    run_dirs = train_specs(plan.specs, args)
    if run_dirs is None:
        return 0
    from lit_algos.analysis.comparisons import compare_scaling
    from lit_algos.cli.analysis_cmds import print_scaling

    refs = _records(plan.side(plan.ref, run_dirs), include_failed=True)
    news = _records(plan.side(plan.new, run_dirs), include_failed=True)
    return print_scaling(compare_scaling(refs, news, points="final"), as_json=args.json)
