"""The ``lit-algos`` command line. Each command group lives in its own module with ``register()``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lit_algos.errors import LitAlgosError

# Modules that contribute sub-commands; each defines register(subparsers).
COMMAND_MODULES = (
    "lit_algos.cli.model_cmds",  # components, describe
    "lit_algos.cli.data_cmds",  # data prepare, data inspect
    "lit_algos.cli.train_cmds",  # train, recipes
    "lit_algos.cli.analysis_cmds",  # ceg, submit, leaderboard
    "lit_algos.cli.job_cmds",  # benchmark, speedrun, main
    "lit_algos.cli.sweep_cmds",  # sweep ablation, sweep scaling
    "lit_algos.cli.use_cmds",  # sample, export
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lit-algos",
        description="Measure algorithmic progress in LM training: compose a GPT, train to a target, compute CEG, race on the board.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # a command group not built yet
                continue
            raise
        module.register(sub)
    return parser


def trainer_flags_as_overrides(argv: list[str]) -> list[str]:
    """``--trainer.KEY=VALUE`` (a lightning.Trainer argument) is ``--set train.trainer.KEY=VALUE``."""
    out = []
    for item in argv:
        if item.startswith("--trainer."):
            out += ["--set", "train.trainer." + item[len("--trainer.") :]]
        else:
            out.append(item)
    return out


def main(argv: list[str] | None = None) -> int:
    if not sys.stdout.isatty():
        # rich falls back to 80 columns when piped (make, CI logs, tee); board tables need more.
        os.environ.setdefault("COLUMNS", "160")
    parser = build_parser()
    args = parser.parse_args(trainer_flags_as_overrides(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except LitAlgosError as err:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {err}", markup=True, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt as err:
        print(f"interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
