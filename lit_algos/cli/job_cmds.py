"""Jobs built from training runs: ``benchmark``, ``speedrun`` and ``main`` (retro vs modern on a track)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lit_algos.cli.train_cmds import add_config_args, add_name_arg
from lit_algos.errors import LitAlgosError, SubmissionError
from lit_algos.records import default_runs_dir


def register(sub) -> None:
    _register_benchmark(sub)
    _register_races(sub)


def _register_benchmark(sub) -> None:
    b = sub.add_parser(
        "benchmark", help="measure training throughput (tokens/s, FLOP/s, MFU) of recipes here"
    )
    b.add_argument(
        "recipes",
        nargs="*",
        default=None,
        help="recipes to time (default: retro modern; with --startup: debug; with --peak alone: none, "
        "only the peaks are measured)",
    )
    b.add_argument("--steps", type=int, default=30, help="optimizer steps timed per round (default 30)")
    b.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds (ABBA order); median and spread over them (default 3)",
    )
    b.add_argument(
        "--plain",
        action="store_true",
        help="also run each recipe in a minimal PyTorch loop (no Lightning) as a reference",
    )
    b.add_argument(
        "--peak",
        action="store_true",
        help="measure the sustained dense matmul peaks (fp32, bf16) now and keep them for this host "
        "(default: this host's cached peaks on a CPU, measured once; on a known GPU its data sheet)",
    )
    b.add_argument(
        "--ab",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="also run each recipe with this config override, alternating with the rows without it "
        "(before/after toggles such as train.chunked_loss=false or optim.muon_ns_dtype=float32); repeatable",
    )
    b.add_argument(
        "--startup",
        action="store_true",
        help="time start-up instead: `python -c 'import lightning'` and `lit-algos train RECIPE` to its first "
        "step, in alternating fresh processes (--rounds of each)",
    )
    b.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's, stated in the output)"
    )
    add_config_args(b)
    b.add_argument("--json", action="store_true", help="print JSON (host, peaks, rows) instead of tables")
    b.set_defaults(func=cmd_benchmark)


def _register_races(sub) -> None:
    """``speedrun`` (one recipe on a track) and ``main`` (retro vs modern on the CPU track)."""
    s = sub.add_parser(
        "speedrun",
        help="train SEEDS seeds of a recipe on a track and show where it would rank",
        description="The speedrun rule: every seed runs the recipe's declared length (train.max_tokens) in full "
        "(train.stop_at_target=false) and records where it crossed the target; the t-test is on the final losses.",
    )
    s.add_argument("--track", default="cpu-kjv", help="leaderboard track (default cpu-kjv)")
    s.add_argument("--recipe", required=True, help="recipe to race")
    s.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    s.add_argument("--first-seed", type=int, default=0, help="seeds run from here upwards (default 0)")
    add_name_arg(s, "each seed")
    add_track_args(s)
    s.set_defaults(func=cmd_speedrun)

    m = sub.add_parser(
        "main", help="the main job: train retro and modern on the CPU track, print their CEG and the board"
    )
    m.add_argument("--track", default="cpu-kjv", help="leaderboard track (default cpu-kjv)")
    m.add_argument("--ref", default="retro", help="reference recipe (default retro)")
    m.add_argument("--new", default="modern", help="new recipe (default modern)")
    m.add_argument("--seeds", type=int, default=1, help="seeds per recipe (default 1)")
    add_track_args(m)
    m.set_defaults(func=cmd_main)


def add_track_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="where runs go (default $LIT_ALGOS_RUNS or ./runs)"
    )
    p.add_argument("--leaderboard-dir", type=Path, default=None, help="default: ./leaderboard")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="plain progress lines instead of the bars, as when the output goes to a file",
    )


# ---- benchmark -------------------------------------------------------------------------------
def _fmt_spread(s: dict, fmt: str, scale: float = 1.0) -> str:
    med, lo, hi = (scale * s[k] for k in ("median", "min", "max"))
    return f"{med:{fmt}} [{lo:{fmt}}-{hi:{fmt}}]" if s["n"] > 1 else f"{med:{fmt}}"


def cmd_benchmark(args) -> int:
    """Time the real training loop over alternating rounds; optionally a plain loop and the matmul peak."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    import json

    import torch
    from rich.console import Console
    from rich.markup import escape

    from lit_algos import benchmark as bench

    if args.threads is not None:
        if args.threads < 1:
            raise LitAlgosError(f"--threads {args.threads}: the number of torch threads must be at least 1.")
        torch.set_num_threads(args.threads)
    if args.rounds < 1 or args.steps < 1:
        raise LitAlgosError(f"--rounds {args.rounds} --steps {args.steps}: both must be at least 1.")
    peak_only = args.peak and not args.recipes and not args.startup
    recipes = args.recipes or ["retro", "modern"]
    # validated first: a bad --ab must not cost a peak measurement
    jobs = bench.benchmark_jobs(recipes, args.overrides, args.steps, plain=args.plain, ab=args.ab)
    console = Console(stderr=args.json)
    before = bench.host_line()
    console.print(escape(before), style="dim")
    if args.startup:
        return _benchmark_startup(args, console, before)
    gpu = torch.cuda.is_available()
    peaks, measured = _benchmark_peaks(args.peak, "cuda" if gpu else "cpu")
    if peak_only:
        after = bench.host_line()
        if args.json:
            out = {"host_before": before, "host_after": after, "peaks": peaks, "peak_measurements": measured}
            print(json.dumps(out, indent=2, default=str))
        else:
            for kind, p in peaks.items():
                console.print(escape(_peak_line(kind, p, measured[kind])))
            console.print(escape(after), style="dim")
        return 0

    def progress(r, name, out):
        line = f"round {r + 1}/{args.rounds} {name}: {out['tokens_per_s']:,.0f} tokens/s, sys {out['sys_s']:.1f} s"
        console.print(escape(line), style="dim")

    summary = bench.compare(jobs, args.rounds, on_round=progress)
    rows = bench.with_mfu(summary, peaks, torch.cuda.get_device_name(0) if gpu else "cpu")
    after = bench.host_line()
    if args.json:
        report = {"host_before": before, "host_after": after, "rounds": args.rounds, "peaks": peaks}
        print(json.dumps({**report, "peak_measurements": measured, "rows": rows}, indent=2, default=str))
        return 0
    for kind, p in (peaks or {}).items():
        console.print(escape(_peak_line(kind, p, (measured or {}).get(kind))))
    _print_benchmark(console, rows, args, after)
    return 0


def _benchmark_peaks(measure: bool, device: str) -> tuple[dict | None, dict | None]:
    """(peak summaries, this call's measurements): measured now with ``measure`` and kept for this
    host (training runs here compute their MFU against them); else a CPU's cached sustained peaks
    (measured once if there are none); a GPU without ``measure`` uses its data sheet (None)."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos import peaks as peak_mod

    if measure:
        measured = {k: peak_mod.steady_peak(k, device=device) for k in peak_mod.KINDS}
        return peak_mod.store_peaks(measured, device), measured
    return (peak_mod.host_peaks("cpu") if device == "cpu" else None), None


def _print_benchmark(console, rows: list[dict], args, after: str) -> None:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"training throughput, median \\[min-max] of {args.rounds} alternating round(s) of {args.steps} steps"
    )
    columns = (
        "recipe",
        "precision",
        "compile",
        "params",
        "tokens/s",
        "ms/step",
        "GFLOP/s",
        "MFU",
        "sys s",
        "vs first",
    )
    for col in columns:
        table.add_column(col, justify="right")
    base = rows[0]["tokens_per_s"]["median"] if rows else None
    for r in rows:
        prec = r["precision"]
        if prec != r["requested_precision"]:
            prec = f"{prec} (asked {r['requested_precision']})"
        mfu = r["mfu"]
        table.add_row(
            escape(r["name"]),
            prec,
            str(r["compile"]),
            f"{r['params']:,}",
            _fmt_spread(r["tokens_per_s"], ",.0f"),
            _fmt_spread(r["step_s"], ".1f", 1000),
            _fmt_spread(r["flop_per_s"], ".1f", 1e-9),
            "-" if mfu["median"] is None else f"{mfu['median']:.1%} [{mfu['min']:.1%}-{mfu['max']:.1%}]",
            _fmt_spread(r["sys_s"], ".1f"),  # system CPU seconds of a round (freed-and-refaulted buffers)
            f"{r['tokens_per_s']['median'] / base:.3f}x",
        )
    console.print(table)
    console.print(
        f"[dim]MFU against: {', '.join(sorted({r['peak_source'] for r in rows}))}. After: {escape(after)}[/]"
    )


def _benchmark_startup(args, console, before: str) -> int:
    """``benchmark --startup``: seconds to the first step beyond Lightning's import, alternating."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    import json

    from rich.markup import escape

    from lit_algos import benchmark as bench

    recipe = (args.recipes or ["debug"])[0]

    def progress(r, name, out):
        console.print(escape(f"round {r + 1}/{args.rounds} {name}: {out['seconds']:.2f} s"), style="dim")

    out = bench.startup(recipe, args.overrides, args.rounds, on_round=progress)
    after = bench.host_line()
    if args.json:
        print(json.dumps({"host_before": before, "host_after": after, **out}, indent=2))
        return 0
    for name, key in (
        ("import lightning", "import"),
        (f"train {recipe}: header line", "header"),
        (f"train {recipe}: first step", "train"),
        ("first step beyond the import (paired by round)", "beyond_import"),
    ):
        if out[key]:
            console.print(f"{name}: {_fmt_spread(out[key], '.2f')} s")
    console.print(rf"[dim]median \[min-max] of {args.rounds} alternating round(s). After: {escape(after)}[/]")
    return 0


def _peak_line(kind: str, peak: dict, measured: dict | None) -> str:
    """'bf16 sustained matmul peak 338.1 GFLOP/s (median of 15 windows, 331.0-342.5; ...)'."""
    g = 1e-9
    line = (
        f"{kind} sustained matmul peak {peak['flops'] * g:.1f} GFLOP/s (median of {peak['n']} windows, "
        f"min-max {peak['min'] * g:.1f}-{peak['max'] * g:.1f}, {(peak['max'] - peak['min']) / peak['flops']:.1%} "
        f"of it; measured {peak.get('measured_at', '?')}, load {peak.get('load')}"
    )
    if measured:
        sizes = ", ".join(f"{n}: {v * g:.1f}" for n, v in measured["per_size"].items())
        line += f"; median by size, GFLOP/s: {sizes}; {measured['seconds']:.1f} s"
        if measured.get("transients"):
            gone = ", ".join(f"{t * g:.1f}" for t in measured["transients"])
            line += f"; measured again after a run at {gone} GFLOP/s, below 65% of its best window"
    return line + ")"


# ---- speedrun ---------------------------------------------------------------------------------
def track_config(recipe: str, track, overrides: list[str], seed: int):
    """The recipe as run on ``track``: the track's target; its data must match the track's."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.config.recipes import load_config

    if track.target_loss is None:
        raise LitAlgosError(
            f"Track {track.name!r} is not calibrated yet (no target_loss); it cannot be raced."
        )
    cfg = load_config(recipe, [*overrides, f"train.target_loss={track.target_loss}", f"train.seed={seed}"])
    d = cfg.data
    mismatched = [
        f"data.{name}={getattr(d, name)!r} (track: {want!r})"
        for name, want in (
            ("corpus", track.corpus),
            ("tokenizer", track.tokenizer),
            ("val_tokens", track.val_tokens),
        )
        if getattr(d, name) != want
    ]
    if mismatched:
        raise LitAlgosError(
            f"Recipe {recipe!r} does not use the data of track {track.name!r}: {', '.join(mismatched)}. "
            "Change the recipe or pass --set data.<field>=<value>."
        )
    return cfg


def run_seeds(recipe: str, track, args, seeds: list[int], console, full: bool = False) -> list:
    """Train each seed on the track; ``full``: the speedrun rule, the declared length in full."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    import json

    from lit_algos.training.run import train

    records = []
    name = getattr(args, "name", None)
    for seed in seeds:
        extra = ["train.stop_at_target=false"] if full else []
        extra += [f"name={json.dumps(name)}"] if name else []
        cfg = track_config(recipe, track, [*args.overrides, *extra], seed)
        console.rule(f"[bold]{recipe}[/] seed {seed} on {track.name} (target {track.target_loss})")
        record = train(
            cfg, runs_dir=args.runs_dir, console=console, progress="lines" if args.no_progress else True
        )
        tt = record.to_target
        final = f"final val loss {record.final.val_loss:.4f}" if record.final else "no evaluation"
        reached = f"target at {tt.train_seconds:.1f} s, {tt.flops:.3e} FLOPs" if tt else "target not reached"
        console.print(f"  {record.status}: {final}; {reached}; {record.run_id}")
        records.append(record)
    return records


def _leaderboard_dir(args) -> Path:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.leaderboard.tracks import default_leaderboard_dir

    return args.leaderboard_dir or default_leaderboard_dir()


def preview(records: list, track, description: str, root: Path, console) -> None:
    """Where these runs would rank if submitted (nothing is written)."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.leaderboard.entries import build_entry
    from lit_algos.leaderboard.render import preview_row, rich_table

    try:
        entry = build_entry(records, track, description, ["you"], require_reference=False)
    except SubmissionError as err:
        console.print(f"[yellow]Not submittable as it stands:[/] {err}")
        return
    row = preview_row(entry, root)
    console.print(rich_table(track, [row]))
    if entry.provisional:
        where = "provisional (unranked: too few seeds)"
    elif row.rank_time is None:  # submit measures the same-machine reference that ranks time
        where = f"rank {row.rank_flops} by FLOPs; its time rank comes with the same-machine reference `submit` measures"
    else:
        where = f"rank {row.rank_time} by time, {row.rank_flops} by FLOPs"
    console.print(f"Would place: {where}.")


def cmd_speedrun(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    from lit_algos.leaderboard.tracks import get_track

    console = Console()
    root = _leaderboard_dir(args)
    track = get_track(args.track, root)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    records = run_seeds(args.recipe, track, args, seeds, console, full=True)
    preview(records, track, f"{args.name or args.recipe} speedrun", root, console)
    runs = " ".join(str((args.runs_dir or default_runs_dir()) / r.run_id) for r in records)
    console.print(f'To submit:\n  make submit TRACK={track.name} RUNS="{runs}" DESC="..." CONTRIB="..."')
    return 0


# ---- main job -------------------------------------------------------------------------------
def cmd_main(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    from lit_algos.analysis.ceg import compare
    from lit_algos.analysis.tables import ceg_table, decomposition_line
    from lit_algos.leaderboard.entries import load_entries
    from lit_algos.leaderboard.render import board_rows, rich_table
    from lit_algos.leaderboard.tracks import get_track

    console = Console()
    root = _leaderboard_dir(args)
    track = get_track(args.track, root)
    seeds = list(range(args.seeds))
    refs = run_seeds(args.ref, track, args, seeds, console)
    news = run_seeds(args.new, track, args, seeds, console)

    console.rule(f"[bold]CEG of {args.new} over {args.ref}")
    report = compare(refs, news, targets=[track.target_loss])
    console.print(ceg_table(report).to_rich())
    console.print(decomposition_line(report.summaries[0]))

    console.rule(f"[bold]board: {track.name}")
    rows = board_rows(track, load_entries(root, track.name).get(track.name, []))
    if rows:
        console.print(rich_table(track, rows))
    else:
        console.print(f"{track.name}: no entries yet.")
    for name, records in ((args.ref, refs), (args.new, news)):
        console.print(f"[bold]{name}[/] from this run, if submitted:")
        preview(records, track, f"{name} (main job)", root, console)
    return 0
