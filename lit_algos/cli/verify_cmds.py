"""``lit-algos verify ENTRY``: re-run a seed of a leaderboard entry and compare its curve."""

from __future__ import annotations

import json
from pathlib import Path

from lit_algos.cli.train_cmds import add_config_args
from lit_algos.errors import ConfigError
from lit_algos.records import default_runs_dir


def register(sub) -> None:
    v = sub.add_parser(
        "verify",
        help="re-run one seed of a leaderboard entry and judge its losses and its time",
        description=(
            "Checks the entry's digests and figures, re-trains one of its runs from the recorded config (one of its "
            "seeds or of its reference runs, drawn at random unless --seed is given; runs are bitwise reproducible "
            "on the same software and hardware, so the seed's data order and initialization are re-derived too) "
            "and compares every evaluation loss and, on the host the record names, the training seconds. The result "
            "is written to <leaderboard dir>/verified/<track>/<entry>.json and shown on the board."
        ),
    )
    v.add_argument("entry", help="entry id as shown on the board, or the path of its .json file")
    v.add_argument(
        "--seed", type=int, default=None, help="which seed to re-run (default: one drawn at random)"
    )
    v.add_argument(
        "--reference",
        action="store_true",
        help="re-run one of the entry's same-machine reference runs (the baseline seeds that rank its time)",
    )
    v.add_argument("--track", default=None, help="track of the entry (default: search every track)")
    v.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="instead of re-training, evaluate this saved checkpoint of the run (runs/<id>/checkpoints/last.ckpt) "
        "and compare with the recorded loss at its step",
    )
    v.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="largest accepted |loss difference| per evaluation (default 0: bitwise; e.g. 1e-4 on other hardware)",
    )
    v.add_argument(
        "--time-tolerance",
        type=float,
        default=None,
        help="largest accepted relative difference of the re-run's training seconds on the record's host "
        "(default 0.25: re-run/recorded within [0.8, 1.25]); on another host time is not judged",
    )
    v.add_argument(
        "--leaderboard-dir", type=Path, default=None, help="default: $LIT_ALGOS_LEADERBOARD, ./leaderboard"
    )
    v.add_argument("--runs-dir", type=Path, default=None, help="where the re-run goes (default ./runs)")
    add_config_args(v)  # systems fields only (e.g. data.cache_dir); what is trained may not change
    v.add_argument("--no-progress", action="store_true", help="no progress bar or lines for the re-run")
    v.add_argument("--json", action="store_true", help="print the verification as JSON")
    v.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    import math

    from lit_algos.leaderboard.tracks import default_leaderboard_dir
    from lit_algos.leaderboard.verify import TIME_TOLERANCE, verify_entry

    if not (args.tolerance >= 0 and math.isfinite(args.tolerance)):
        raise ConfigError("--tolerance", args.tolerance, "A finite number >= 0.")
    if args.time_tolerance is None:
        args.time_tolerance = TIME_TOLERANCE
    elif not (args.time_tolerance > 0 and math.isfinite(args.time_tolerance)):
        raise ConfigError("--time-tolerance", args.time_tolerance, "A finite number > 0 (0.25 allows 25%).")
    root = args.leaderboard_dir or default_leaderboard_dir()
    if args.checkpoint is not None:
        # here, not at the top: `lit-algos --help` loads this module, not what the command runs
        from lit_algos.leaderboard.verify import reevaluate_checkpoint

        result = reevaluate_checkpoint(
            args.entry,
            args.checkpoint,
            seed=args.seed,
            leaderboard_dir=Path(root),
            track=args.track,
            tolerance=args.tolerance,
            reference=args.reference,
        )
        return _report(result, args)
    result = verify_entry(
        args.entry,
        seed=args.seed,
        leaderboard_dir=Path(root),
        runs_dir=args.runs_dir or default_runs_dir(),
        track=args.track,
        tolerance=args.tolerance,
        time_tolerance=args.time_tolerance,
        reference=args.reference,
        progress=not args.no_progress,
        overrides=args.overrides,
    )
    return _report(result, args)


def _report(result, args) -> int:
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        diff = "–" if result.max_loss_difference is None else f"{result.max_loss_difference:.3g}"
        ratio = "–" if result.time_ratio is None else f"{result.time_ratio:.3g}"
        which = "reference run" if result.role == "reference" else "seed"
        print(
            f"{result.verdict}: entry {result.entry} {which} {result.seed} ({result.run_id}, {result.chosen}): "
            f"{result.points} evaluations compared, max |loss difference| {diff} (tolerance {args.tolerance}); "
            f"re-run time / recorded time {ratio} on {result.hardware}."
            + (f" Note: {result.note}." if result.note else "")
        )
    return 0 if result.verified else 1
