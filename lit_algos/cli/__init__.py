"""The ``lit-algos`` command line. Each command group lives in its own module with ``register()``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from lit_algos import __version__
from lit_algos.errors import ConfigError, LitAlgosError, LitAlgosWarning

# Modules that contribute sub-commands; each defines register(subparsers).
COMMAND_MODULES = (
    "lit_algos.cli.model_cmds",  # components, describe
    "lit_algos.cli.data_cmds",  # data prepare, data inspect
    "lit_algos.cli.train_cmds",  # train, recipes
    "lit_algos.cli.analysis_cmds",  # ceg, submit, leaderboard
    "lit_algos.cli.job_cmds",  # benchmark, speedrun, main
    "lit_algos.cli.sweep_cmds",  # sweep ablation, sweep scaling
    "lit_algos.cli.use_cmds",  # sample, export
    "lit_algos.cli.verify_cmds",  # verify
    "lit_algos.cli.study_cmds",  # study, report
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lit-algos",
        description="Measure algorithmic progress in LM training: compose a GPT, train to a target, compute CEG, race on the board.",
    )
    parser.add_argument("--version", action="version", version=f"lit-algos {__version__}")
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


PATH_FLAGS = ("--out", "--checkpoint", "--shards", "--corpus")  # and every --*-dir flag


def refuse_empty_paths(argv: list[str]) -> None:
    """A path flag given an empty string: Path("") is the current directory, so ``--runs-dir ""``
    would silently write runs into it. Refused before anything runs."""

    for i, item in enumerate(argv):
        flag, eq, value = item.partition("=")
        if not (flag.endswith("-dir") or flag in PATH_FLAGS) or not flag.startswith("--"):
            continue
        value = value if eq else (argv[i + 1] if i + 1 < len(argv) else None)
        if value is not None and not value.strip():
            raise ConfigError(
                flag,
                value,
                f"A path; an empty one would mean the current directory. Give {flag} a directory or file name.",
            )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings (a skipped board entry) as one line; everything else as Python shows it."""

    if issubclass(category, LitAlgosWarning):
        print(f"warning: {message}", file=file or sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    if not sys.stdout.isatty():
        # rich falls back to 80 columns when piped (make, CI logs, tee); board tables need more.
        os.environ.setdefault("COLUMNS", "160")
    parser = build_parser()
    try:
        args = parser.parse_args(trainer_flags_as_overrides(sys.argv[1:] if argv is None else list(argv)))
    except SystemExit as exit_:  # argparse: usage errors (2), --help and --version (0)
        return exit_.code if isinstance(exit_.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    warnings.showwarning = _show_warning
    try:
        refuse_empty_paths(sys.argv[1:] if argv is None else list(argv))
        with warnings.catch_warnings():
            # every command shows its own warnings, also when one process runs several (tests, notebooks)
            warnings.simplefilter("default", LitAlgosWarning)
            return int(args.func(args) or 0)
    except LitAlgosError as err:
        # here, not at the top: rich only when there is an error to print
        from rich.console import Console
        from rich.markup import escape

        # escape: messages quote values such as "[step, loss]" that rich would take for markup
        Console(stderr=True).print(
            f"[bold red]error:[/] {escape(str(err))}", markup=True, highlight=False, soft_wrap=True
        )
        return 2
    except BrokenPipeError:
        # `lit-algos ... --json | head`: the reader left; not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as err:
        print(f"interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = _default_showwarning


if __name__ == "__main__":
    sys.exit(main())
