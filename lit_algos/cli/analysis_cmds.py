"""``lit-algos ceg``, ``lit-algos submit`` and ``lit-algos leaderboard``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lit_algos.errors import LitAlgosError

RUNS_HELP = (
    "run records: record.json files, run directories, directories of runs, or recipe names looked up in the runs "
    "directory (every complete record whose recipe field matches)"
)


def add_fixed_e(parser, help: str) -> None:
    """``--E VALUE`` (``args.fixed_E``): the scaling fits' irreducible loss, fixed (``ceg``, ``sweep scaling``)."""
    parser.add_argument("--E", dest="fixed_E", type=float, default=None, metavar="VALUE", help=help)


def register(subparsers) -> None:
    _register_ceg(subparsers)
    _register_submit(subparsers)
    _register_leaderboard(subparsers)


def _register_ceg(subparsers) -> None:
    p = subparsers.add_parser(
        "ceg",
        help="compute-equivalent gain of one recipe over another",
        description=(
            "CEG = C_ref(L*) / C_new(L*) in FLOPs, training seconds and tokens, at one common L* for all seeds: "
            "primary L* = the highest reference seed's (smoothed) final loss; auxiliary when a new seed ends above it: "
            "L* = the highest new seed's final loss, which every run reaches. Geometric mean over seeds with a Student-t interval on log costs "
            "(paired by seed when both sides have the same seeds, Welch otherwise). Costs the evaluation grid cannot "
            "resolve are reported as bounds (≥ / ≤) and listed. Only runs on the same validation set "
            "(data.val_fingerprint) can be compared."
        ),
    )
    _add_ceg_args(p)
    _add_attribution_args(p)
    _add_scaling_args(p)
    p.set_defaults(func=cmd_ceg)


def _add_ceg_args(p) -> None:
    """Which runs, at which losses, by which rule, with which intervals."""
    p.add_argument("--ref", nargs="+", required=True, metavar="RUNS", help=f"reference {RUNS_HELP}")
    p.add_argument("--new", nargs="+", required=True, metavar="RUNS", help=f"new {RUNS_HELP}")
    p.add_argument(
        "--runs-dir",
        default=None,
        help="where recipe names are looked up (default: $LIT_ALGOS_RUNS or ./runs)",
    )
    p.add_argument(
        "--target",
        type=float,
        action="append",
        default=[],
        metavar="LOSS",
        help="also report CEG at this loss (repeatable)",
    )
    p.add_argument(
        "--method",
        choices=("interp", "paper"),
        default="interp",
        help="interp: running minimum, C interpolated in (log C, loss) (default); paper: Sanderson et al.'s rule "
        "(8-evaluation moving average, first evaluation at or below L*, cost = evaluation index + 1)",
    )
    p.add_argument(
        "--smooth",
        type=int,
        default=None,
        metavar="N",
        help="paper: trailing mean over N evaluations (default 8). interp: evaluations far outside their neighbours' "
        "range (more than 4 robust noise scales) are set aside as outliers, then each loss is replaced by a local "
        "quadratic fit in (ln FLOPs, loss) over N evaluations (default: N chosen by leave-one-out cross-validation "
        "among 3, which keeps the raw values, and odd windows up to two thirds of the curve; 1 = the raw "
        "evaluations, outliers included)",
    )
    p.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="confidence level of the intervals (default 0.95)",
    )
    p.add_argument(
        "--resamples",
        type=int,
        default=2000,
        help="no effect: CEG and attribution intervals are Student-t intervals, not bootstraps (accepted so "
        "older scripts still run)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the scaling fits' parameter draws (--scaling; default 0)"
    )
    p.add_argument(
        "--per-pair", action="store_true", help="also show the CEG of every (ref, new) pair of runs"
    )


def _add_attribution_args(p) -> None:
    """The ablation runs an attribution table is made of (``ceg --add/--remove``)."""
    p.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="NAME=RUNS",
        help="attribution: runs of ref + component NAME (comma-separated specs; repeatable); NAME a+b: ref plus "
        "several components (for --shapley)",
    )
    p.add_argument(
        "--shapley",
        action="store_true",
        help="attribution: Shapley shares (sum to 1); needs runs for every subset of the components",
    )
    p.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="NAME=RUNS",
        help="attribution: runs of new - component NAME (repeatable)",
    )
    p.add_argument(
        "--unit",
        choices=("flops", "train_seconds", "tokens"),
        default="flops",
        help="unit of the attribution table (default flops)",
    )


def _add_scaling_args(p) -> None:
    """Scaling-law fits over a size ladder, the allocation fit, and the output."""
    p.add_argument(
        "--scaling",
        choices=("final", "frontier"),
        default=None,
        help="fit L(C) = E + A C^-alpha per side over a size ladder (final points or Pareto frontier) and classify the gain's compute dependence",
    )
    p.add_argument(
        "--fit-E",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit the irreducible loss E (default) or fix E = 0 (biased when the loss has a floor; prefer --E)",
    )
    add_fixed_e(p, "fix the irreducible loss E at VALUE in the scaling fits (Gundlach et al. fit L - 1.9)")
    p.add_argument(
        "--allocation",
        action="store_true",
        help="fit L(N, D) = E + A/N^a + B/D^b over every evaluation of the --ref runs (several sizes) and print "
        "the compute-optimal N and D and the Kaplan -> Chinchilla multiplier over their compute range",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.05,
        help="|slope| of ln M vs ln C within which a gain counts as flat (default 0.05)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument(
        "--wandb",
        action="store_true",
        help="also log the tables (numeric: sortable, chartable) and plots to one W&B run (offline unless "
        "configured; group 'ceg')",
    )


def _register_submit(subparsers) -> None:
    s = subparsers.add_parser(
        "submit",
        help="submit runs (all seeds of one recipe) to a leaderboard track",
        description=(
            "Validates the runs and the same-machine reference runs against the track (validation fingerprint, "
            "target, completeness, one recipe, distinct seeds), audits every record, re-evaluates each run's final "
            "checkpoint (runs/<id>/checkpoints/last.ckpt) against its recorded final loss, refuses records that "
            "carry another run's losses, runs a one-sided t-test that the mean final loss is below the target, "
            "writes the entry atomically and regenerates the board. A rejected submission prints the reason and "
            "changes nothing."
        ),
    )
    s.add_argument("runs", nargs="+", metavar="RUNS", help=RUNS_HELP)
    s.add_argument("--track", required=True, help="track name from tracks.yaml")
    s.add_argument("--description", required=True, help="what this entry changes")
    s.add_argument("--contributors", nargs="+", required=True, help="names (space- or comma-separated)")
    s.add_argument("--name", default=None, metavar="ID", help="entry id (default: date-recipe-random)")
    s.add_argument(
        "--leaderboard-dir",
        default=None,
        help="default: $LIT_ALGOS_LEADERBOARD, ./leaderboard or the project's",
    )
    s.add_argument(
        "--runs-dir",
        default=None,
        help="where recipe names are looked up (default: $LIT_ALGOS_RUNS or ./runs)",
    )
    s.add_argument("--no-plots", action="store_true", help="do not redraw the PNG plots")
    s.add_argument(
        "--reference-runs",
        nargs="+",
        default=None,
        metavar="RUNS",
        help="same-machine reference: full runs of the track's baseline recipe on this host (default: benchmark it here)",
    )
    s.add_argument(
        "--reference-steps",
        type=int,
        default=30,
        help="timed steps of the reference benchmark of the baseline recipe (default 30)",
    )
    s.add_argument(
        "--no-reference",
        action="store_true",
        help="measure no reference (only tracks with an exact hardware string accept that)",
    )
    s.set_defaults(func=cmd_submit)


def _register_leaderboard(subparsers) -> None:
    b = subparsers.add_parser(
        "leaderboard",
        help="show the leaderboard and regenerate leaderboard/README.md",
        description="Two rankings per track of the entries that pass the speedrun rule: by time, the declared "
        "run's speedup over its same-machine reference of the track's baseline recipe; by FLOPs, the declared "
        "run's training FLOPs. Each with intervals over seeds, the CEG at the target over the baseline entry, and "
        "where the target was crossed. Provisional entries (too few seeds) and entries made under the old "
        "stop-at-target rule are listed after them, unranked.",
    )
    b.add_argument("--track", default=None, help="only this track")
    b.add_argument(
        "--leaderboard-dir",
        default=None,
        help="default: $LIT_ALGOS_LEADERBOARD, ./leaderboard or the project's",
    )
    b.add_argument(
        "--plots", action="store_true", help="also redraw the PNG plots (leaderboard/plots/<track>-*.png)"
    )
    b.add_argument("--no-write", action="store_true", help="only print; do not regenerate README.md")
    b.add_argument("--json", action="store_true", help="print JSON rows instead of tables")
    b.add_argument(
        "--migrate",
        nargs="*",
        default=None,
        metavar="RUNS_DIR",
        help="first bring entries made before issue 25 to the evidence format: figures re-derived from their runs, "
        "reference runs found on the board or in the RUNS_DIR folders given (lit_algos.leaderboard.migrate)",
    )
    b.set_defaults(func=cmd_leaderboard)


# ---- helpers -------------------------------------------------------------------------------
def _console():
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    return Console()


def _fmt(value: float | None, digits: int = 3) -> str:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis.tables import fmt

    return fmt(value, digits)


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _named_groups(items: list[str], runs_dir, flag: str) -> dict:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis.runs import resolve_runs

    groups = {}
    for item in items:
        name, sep, specs = item.partition("=")
        if not sep or not name or not specs:
            raise LitAlgosError(
                f"{flag} {item!r}: expected NAME=RUNS, e.g. {flag} rope=retro-rope or {flag} rope=runs/a,runs/b."
            )
        groups[name] = resolve_runs(specs.split(","), runs_dir, f"{flag} {name}")
    return groups


# ---- ceg -----------------------------------------------------------------------------------
def cmd_ceg(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis.runs import resolve_runs

    refs = resolve_runs(args.ref, args.runs_dir, "--ref", include_failed=True)
    news = resolve_runs(args.new, args.runs_dir, "--new", include_failed=True)
    if args.allocation:
        # here, not at the top: `lit-algos --help` loads this module, not what the command runs
        from lit_algos.analysis.comparisons import allocation_summary

        summary = allocation_summary(refs, confidence=args.confidence, seed=args.seed)
        _log_wandb(args, None, refs, news, allocation=summary)
        return print_allocation(summary, as_json=args.json)
    if args.scaling:
        # here, not at the top: `lit-algos --help` loads this module, not what the command runs
        from lit_algos.analysis.comparisons import compare_scaling

        comparison = compare_scaling(
            refs,
            news,
            points=args.scaling,
            fit_E=args.fit_E,
            E=args.fixed_E,
            confidence=args.confidence,
            margin=args.margin,
            seed=args.seed,
        )
        _log_wandb(args, None, refs, news, scaling=comparison)
        return print_scaling(comparison, as_json=args.json)
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis.comparisons import ceg_with_attribution

    result = ceg_with_attribution(
        refs,
        news,
        targets=args.target,
        add=_named_groups(args.add, args.runs_dir, "--add") if args.add else None,
        remove=_named_groups(args.remove, args.runs_dir, "--remove") if args.remove else None,
        unit=args.unit,
        shapley=args.shapley,
        method=args.method,
        smooth=args.smooth,
        confidence=args.confidence,
        n_resamples=args.resamples,
        seed=args.seed,
    )
    _log_wandb(args, result, refs, news)
    return print_ceg(result, as_json=args.json, per_pair=args.per_pair)


def _log_wandb(args, result, refs, news, **extra) -> None:
    if getattr(args, "wandb", False):
        # here, not at the top: `lit-algos --help` loads this module, not what the command runs
        from lit_algos.records import default_runs_dir
        from lit_algos.reports.wandb_tables import log_ceg

        # Offline runs go to <runs dir>/wandb/, beside the runs they analyse.
        log_ceg(result, refs, news, directory=Path(args.runs_dir or default_runs_dir()), **extra)


def print_ceg(result, *, as_json: bool = False, per_pair: bool = False, console=None) -> int:
    """Print a :class:`lit_algos.analysis.comparisons.CEGResult` as tables, or as JSON."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis import tables

    if as_json:
        _print_json(result.to_dict())
        return 0
    console = console or _console()
    report = result.report
    console.print(tables.ceg_table(report).to_rich())
    for line in tables.censoring_lines(report):
        console.print(line)
    console.print(tables.decomposition_line(report.summaries[0]))
    if per_pair:
        for summary in report.summaries:
            console.print(tables.pair_table(summary).to_rich())
    if result.attribution:
        console.print(tables.attribution_table(result.attribution).to_rich())
    return 0


def print_scaling(comparison, *, as_json: bool = False, console=None) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis import tables

    if as_json:
        _print_json(comparison.to_dict())
        return 0
    console = console or _console()
    console.print(tables.scaling_table(comparison).to_rich())
    console.print(tables.dependence_line(comparison.dependence))
    return 0


def print_allocation(summary, *, as_json: bool = False, console=None) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis import tables

    if as_json:
        _print_json(summary.to_dict())
        return 0
    console = console or _console()
    for line in tables.allocation_lines(summary):
        console.print(line)
    return 0


# ---- submit / leaderboard ------------------------------------------------------------------
def cmd_submit(args) -> int:
    # here: lit_algos.analysis loads scipy (seconds)
    from lit_algos.analysis.runs import resolve_runs
    from lit_algos.leaderboard import speedrun
    from lit_algos.leaderboard.checkpoints import check_final_checkpoints
    from lit_algos.leaderboard.entries import build_entry, get_submission_track
    from lit_algos.leaderboard.submit import submit
    from lit_algos.leaderboard.tracks import default_leaderboard_dir

    runs = resolve_runs(args.runs, args.runs_dir, "submit")
    contributors = [c for item in args.contributors for c in item.split(",")]
    root = Path(args.leaderboard_dir) if args.leaderboard_dir else default_leaderboard_dir()
    track = get_submission_track(args.track, root)
    reference, reference_runs = None, None
    if args.reference_runs:
        reference_runs = resolve_runs(args.reference_runs, args.runs_dir, "--reference-runs")
    # validate first: a rejected entry must not cost a re-evaluation or a benchmark
    build_entry(runs, track, args.description, contributors, args.name, reference_runs=reference_runs,
                require_reference=False)  # fmt: skip
    _console().print(f"Re-evaluating the final checkpoints of {len(runs) + len(reference_runs or [])} run(s)")
    check_final_checkpoints(runs, args.runs, args.runs_dir)
    if reference_runs:
        check_final_checkpoints(reference_runs, args.reference_runs, args.runs_dir, "reference runs")
    elif not args.no_reference and not track.exact_hardware:
        _console().print(
            f"Measuring the same-machine reference: {args.reference_steps} steps of {track.baseline_recipe}"
        )
        reference = speedrun.benchmark_reference(track, args.reference_steps)
    entry = submit(
        runs,
        args.track,
        args.description,
        contributors,
        name=args.name,
        leaderboard_dir=root,
        plots=not args.no_plots,
        reference=reference,
        reference_runs=reference_runs,
    )
    _print_entry(entry, root)
    return 0


def _print_entry(entry, root: Path) -> None:
    """The accepted entry: its statistics, its figures per unit, its reference, the board's path."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.analysis.curves import UNIT_NAMES
    from lit_algos.leaderboard.entries import entry_path

    st = entry.statistics
    status = (
        "[yellow]provisional[/] (fewer seeds than the track's minimum)"
        if st["provisional"]
        else "[green]accepted[/]"
    )
    console = _console()
    console.print(
        f"Entry [bold]{entry.id}[/] {status} on track {entry.track}: {entry_path(root, entry.track, entry.id)}"
    )
    console.print(
        f"  n={st['n']} mean final loss {st['mean_final_loss']:.4f} (target {st['target_loss']}), "
        f"t={_fmt(st['t'])}, p={_fmt(st['p'])}, alpha={st['alpha']}"
    )
    for unit in ("train_seconds", "flops", "tokens"):
        s, c = entry.summary[unit], entry.summary["crossing"][unit]
        console.print(
            f"  {UNIT_NAMES[unit]} of the declared run: {_fmt(s['value'])} [{_fmt(s['low'])}, {_fmt(s['high'])}]; "
            f"target crossed at {_fmt(c['value'])}"
        )
    if entry.reference:
        ref = entry.reference
        console.print(
            f"  same-machine reference ({ref['kind']} of {ref['recipe']}): {_fmt(sum(ref['seconds']) / len(ref['seconds']))} s"
        )
    console.print(f"Board regenerated: {root / 'README.md'}")


def cmd_leaderboard(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.leaderboard.entries import load_entries
    from lit_algos.leaderboard.render import board_rows, rich_table, write_board
    from lit_algos.leaderboard.tracks import default_leaderboard_dir, get_track, load_tracks

    root = Path(args.leaderboard_dir) if args.leaderboard_dir else default_leaderboard_dir()
    tracks = {args.track: get_track(args.track, root)} if args.track else load_tracks(root)
    if args.migrate is not None:
        # here, not at the top: `lit-algos --help` loads this module, not what the command runs
        from lit_algos.leaderboard.migrate import migrate_board

        for line in migrate_board(root, [Path(d) for d in args.migrate]) or ["no entry needed migrating"]:
            print(line)
    if not args.no_write:
        write_board(root, plots=args.plots)
    entries = load_entries(root)
    rows = {name: board_rows(track, entries.get(name, [])) for name, track in tracks.items()}
    if args.json:
        _print_json({name: [r.to_dict() for r in track_rows] for name, track_rows in rows.items()})
        return 0
    console = _console()
    for name, track in tracks.items():
        if rows[name]:
            console.print(rich_table(track, rows[name]))
        else:
            calibrated = "" if track.calibrated else " (not calibrated yet: submissions closed)"
            console.print(f"[bold]{name}[/]: no entries yet{calibrated}.")
    if not args.no_write:
        console.print(
            f"Board written to {root / 'README.md'}"
            + (f" with plots in {root / 'plots'}" if args.plots else "")
        )
    return 0
