"""``lit-algos sweep ablation|scaling``: plan the runs an attribution or a scaling fit needs
(lit_algos.sweeps.ablation / .scaling), train them on the sweep engine (lit_algos.sweeps), then
print the analysis (lit_algos.analysis.comparisons). This module only parses flags and prints.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from lit_algos.cli.analysis_cmds import add_fixed_e
from lit_algos.cli.train_cmds import OverrideAction, add_config_args
from lit_algos.errors import ConfigError, LitAlgosError
from lit_algos.records import default_runs_dir
from lit_algos.sweeps.ablation import COMPONENTS, plan_ablation
from lit_algos.sweeps.scaling import CPU_LADDER, SCALING_SEEDS, plan_scaling


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="train the runs of an A/B comparison, an ablation (attribution) or a scaling fit, then analyse",
    )
    kinds = p.add_subparsers(dest="sweep", metavar="KIND", required=True)
    _register_ablation(kinds)
    _register_scaling(kinds)
    _register_ab(kinds)


def _register_ablation(kinds) -> None:
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
    _name_prefix(a)
    a.set_defaults(func=cmd_ablation)


def _register_scaling(kinds) -> None:
    s = kinds.add_parser("scaling", help="train recipes over a size ladder and fit L(C) = E + A C^-alpha")
    s.add_argument("--recipes", nargs="+", default=["retro", "modern"], help="one or two recipes (ref, new)")
    s.add_argument(
        "--scales", nargs="+", default=list(CPU_LADDER), help=f"size ladder (default {' '.join(CPU_LADDER)})"
    )
    add_fixed_e(
        s, "fix the irreducible loss E at VALUE in the fits (needed with two sizes: E fitted needs three)"
    )
    _common(s)
    _name_prefix(s)
    # 2 seeds x 3 sizes = 6 points per fit (see lit_algos.sweeps.scaling.SCALING_SEEDS)
    s.set_defaults(func=cmd_scaling, seeds=SCALING_SEEDS)


def _register_ab(kinds) -> None:
    b = kinds.add_parser(
        "ab",
        help="train two variants over the same seeds, then print the CEG of NEW over REF",
        description="An A/B comparison in one line: REF and NEW (a recipe each; NEW defaults to REF) with their "
        "own --ref-set / --new-set changes, SEEDS seeds each on the sweep engine (finished runs are skipped, "
        "interrupted ones resumed), then their CEG, paired by seed. Each side's runs carry its name, so "
        "`lit-algos ceg --ref REF_NAME --new NEW_NAME` finds them later. Example, does QK-norm help? "
        "lit-algos sweep ab modern --new-set model.attention.qk_norm=false --new-name modern-no-qk --seeds 3",
    )
    b.add_argument("ref", help="the reference recipe (A)")
    b.add_argument(
        "new", nargs="?", default=None, help="the new recipe (B; default: REF, changed by --new-set)"
    )
    for side in ("ref", "new"):
        b.add_argument(
            f"--{side}-set",
            dest=f"{side}_overrides",
            action=OverrideAction,
            default=[],
            metavar="KEY=VALUE",
            help=f"override a config field of the {side} side only (repeatable)",
        )
        b.add_argument(
            f"--{side}-name",
            default=None,
            metavar="NAME",
            help=f"the {side} variant's name, recorded as its runs' recipe (default: the recipe's name)",
        )
    _common(b)
    b.set_defaults(func=cmd_ab, seeds=3)


def _name_prefix(p) -> None:
    p.add_argument(
        "--name",
        default=None,
        metavar="NAME",
        help="prefix the runs' names with NAME/ (e.g. NAME/retro+rope), so a sweep with other --set values "
        "keeps its runs apart from the plain one's in `ceg`",
    )


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
    _add_slurm_args(g)


def _add_slurm_args(g) -> None:
    """The --slurm-* flags: sbatch settings of the slurm executor's array tasks."""
    g.add_argument(
        "--slurm-partition",
        default=None,
        metavar="NAME",
        help="slurm: the partition (default: the cluster's)",
    )
    g.add_argument(
        "--slurm-time", default=None, metavar="TIME", help="per run: minutes or HH:MM:SS (default 60 min)"
    )
    g.add_argument(
        "--slurm-gpus-per-node",
        type=int,
        default=None,
        metavar="N",
        help="slurm: GPUs per node (one run per task)",
    )
    g.add_argument(
        "--slurm-cpus-per-task",
        type=int,
        default=None,
        metavar="N",
        help="slurm: CPUs per task (default: --threads)",
    )
    g.add_argument(
        "--slurm-mem-gb", type=float, default=None, metavar="GB", help="slurm: memory per task in GB"
    )
    g.add_argument("--slurm-account", default=None, metavar="NAME", help="slurm: the account to charge")
    g.add_argument("--slurm-qos", default=None, metavar="NAME", help="slurm: the quality of service")
    g.add_argument(
        "--slurm-constraint",
        default=None,
        metavar="FEATURES",
        help="slurm: node features required (sbatch --constraint)",
    )
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


SLURM_TIME = re.compile(r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+(:\d{1,2}){0,2})$")


def check_sweep_args(args) -> None:
    """Every count and limit of a sweep checked before anything is planned, written or trained
    (a --dry-run lists what the real run would do, so it refuses what the real run refuses)."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.sweeps.executors import _minutes

    for flag, low in (("seeds", 1), ("workers", 1), ("threads", 1), ("slurm_cpus_per_task", 1),
                      ("slurm_array_parallelism", 1), ("slurm_gpus_per_node", 0)):  # fmt: skip
        value = getattr(args, flag, None)
        if value is not None and value < low:
            name = "--" + flag.replace("_", "-")
            raise ConfigError(name, value, f"An integer >= {low}.")
    mem = getattr(args, "slurm_mem_gb", None)
    if mem is not None and not (math.isfinite(mem) and mem > 0):
        raise ConfigError("--slurm-mem-gb", mem, "A number of GB > 0, e.g. 16.")
    time = getattr(args, "slurm_time", None)
    if time is not None and (not SLURM_TIME.match(time.strip()) or _minutes(time) < 1):
        raise ConfigError(
            "--slurm-time",
            time,
            "A SLURM time of at least a minute: minutes (90), MM:SS, HH:MM:SS or D-HH:MM:SS.",
        )


def slurm_settings(args) -> dict:
    """The ``--slurm-*`` flags as the ``slurm`` dict of :func:`lit_algos.sweeps.run_sweep`."""

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
    p.add_argument("--seeds", type=int, default=1, help="seeds per configuration (default: 1; ab: 3)")
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="where runs go (default $LIT_ALGOS_RUNS or ./runs)"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only list the runs: state (finished / interrupted / missing), budget, estimated FLOPs and time",
    )
    p.add_argument("--no-progress", action="store_true", help="no plan table and no sweep progress lines")
    p.add_argument("--json", action="store_true", help="print the plan (--dry-run) or the analysis as JSON")
    add_executor_args(p)


def train_specs(specs, args) -> dict[str, Path] | None:
    """Print the plan; unless ``--dry-run``, train the specs on the engine. Run dirs per spec id."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    from lit_algos.sweeps import plan_rows, plan_sweep, plan_table, run_sweep

    console = Console(stderr=args.json)  # --json: stdout holds the JSON alone
    runs_dir = args.runs_dir or default_runs_dir()
    slurm = {"job_name": f"lit-algos-{args.sweep}", **slurm_settings(args)}
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
        slurm=slurm,
        progress=not args.no_progress,
        console=console,
        plans=plans,
    )


def _records(paths: list[Path], include_failed: bool = False):
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis.runs import resolve_runs

    return resolve_runs([str(p) for p in paths], None, "sweep runs", include_failed=include_failed)


def cmd_ablation(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    check_sweep_args(args)
    plan = plan_ablation(
        args.ref,
        args.new,
        args.components,
        seeds=args.seeds,
        overrides=args.overrides,
        shapley=args.shapley,
        name=args.name,
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
    check_sweep_args(args)
    plan = plan_scaling(args.recipes, args.scales, seeds=args.seeds, overrides=args.overrides, name=args.name)
    run_dirs = train_specs(plan.specs, args)
    if run_dirs is None:
        return 0
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis.comparisons import compare_scaling
    from lit_algos.cli.analysis_cmds import print_scaling

    refs = _records(plan.side(plan.ref, run_dirs), include_failed=True)
    news = _records(plan.side(plan.new, run_dirs), include_failed=True)
    return print_scaling(compare_scaling(refs, news, points="final", E=args.fixed_E), as_json=args.json)


def cmd_ab(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    from lit_algos.sweeps.ab import plan_ab

    plan = plan_ab(
        args.ref,
        args.new,
        ref_overrides=args.ref_overrides,
        new_overrides=args.new_overrides,
        overrides=args.overrides,
        ref_name=args.ref_name,
        new_name=args.new_name,
        seeds=args.seeds,
    )
    run_dirs = train_specs(plan.specs, args)
    if run_dirs is None:
        return 0
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis.comparisons import ceg_with_attribution
    from lit_algos.cli.analysis_cmds import print_ceg

    result = ceg_with_attribution(
        _records(plan.side("ref", run_dirs), include_failed=True),
        _records(plan.side("new", run_dirs), include_failed=True),
    )
    console = Console(stderr=args.json)
    print_ceg(result, as_json=args.json, console=console)
    if not args.json:
        console.print(f"again, from the records: lit-algos ceg --ref {plan.ref_name} --new {plan.new_name}")
    return 0
