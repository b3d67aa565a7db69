"""``lit-algos train`` and ``lit-algos recipes``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lit_algos.errors import LitAlgosError


class OverrideAction(argparse.Action):
    """``--set KEY=VALUE``, refusing ``--set KEY VALUE`` with a message that says how to write it."""

    def __call__(self, parser, namespace, value, option_string=None):
        if "=" not in value:
            raise argparse.ArgumentError(
                self,
                f"{value!r} has no '='. An override is KEY=VALUE in one argument, e.g. --set model.n_layer=4 "
                "(no space around '='; quote values with spaces: --set 'data.corpus=a b').",
            )
        items = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, [*items, value])


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action=OverrideAction,
        default=[],
        metavar="KEY=VALUE",
        help="override any config field, e.g. --set model.attention.kind=mqa (repeatable); "
        "--trainer.KEY=VALUE passes a lightning.Trainer argument (= --set train.trainer.KEY=VALUE)",
    )


def add_name_arg(parser: argparse.ArgumentParser, what: str = "the run") -> None:
    parser.add_argument(
        "--name",
        default=None,
        metavar="NAME",
        help=f"the variant's name, recorded as {what}'s recipe (= --set name=NAME): `ceg --ref NAME` and the "
        "W&B group find it by this name, e.g. --name modern-no-qk with --set model.attention.qk_norm=false "
        "(default: the recipe's name)",
    )


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a recipe to its target loss and write a run record",
        description="Train a recipe to its target loss (or until a budget is spent) and write runs/<id>/record.json. "
        "In a terminal a bar shows the budget, losses, lr, tokens/s and ETA; piped to a file (or with "
        "--no-progress) it prints plain lines: one at the start (run id, folder, recipe, budget), one every "
        "train.log_every steps and one per evaluation.",
    )
    p.add_argument(
        "recipe",
        nargs="?",
        default=None,
        help="recipe name under recipes/ (e.g. retro, modern, debug) or a YAML path (optional with --resume RUN)",
    )
    add_config_args(p)
    add_name_arg(p)
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides train.seed)")
    p.add_argument("--devices", type=int, default=None, help="devices per node (overrides train.devices)")
    p.add_argument(
        "--num-nodes",
        type=int,
        default=None,
        help="nodes of a multi-node run (overrides train.num_nodes; see README 'Several devices, GPUs and nodes')",
    )
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="where run directories go (default $LIT_ALGOS_RUNS or ./runs)",
    )
    p.add_argument("--wandb", action="store_true", help="log to Weights & Biases (offline unless configured)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="RUN",
        help="continue an unfinished run from its checkpoint: RUN (id or path; its record holds the config, "
        "so no recipe or --set is needed), or without RUN the newest unfinished run of this recipe/config/seed",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="plain progress lines instead of the bar, as when the output goes to a file (for logs)",
    )
    p.set_defaults(func=cmd_train)

    r = sub.add_parser(
        "recipes",
        help="list the recipes that can be trained, with description, target and shape",
        description="Every recipe under $LIT_ALGOS_RECIPES, ./recipes and the project's recipes/: its description, "
        "target loss and model shape. The size fragments (scales/*) are listed apart: a recipe extends them "
        "(extends: [retro, scales/tiny]); they are not trained alone.",
    )
    r.set_defaults(func=cmd_recipes)


def resolve_train_config(args):
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.config.recipes import load_config

    overrides = list(args.overrides)
    resume = getattr(args, "resume", False)
    if args.recipe is None:
        if not isinstance(resume, str):
            raise LitAlgosError(
                "Name a recipe to train (lit-algos train RECIPE), or the run to continue (lit-algos train --resume RUN)."
            )
        if (
            overrides
            or args.seed is not None
            or args.devices is not None
            or args.num_nodes is not None
            or args.wandb
            or args.name
        ):
            raise LitAlgosError(
                f"--resume {resume} continues the run with the config stored in its record; --set, --name, --seed, "
                "--devices, --num-nodes and --wandb cannot change it. Drop them, or give the recipe too to check "
                "that they match."
            )
        # here, not at the top: `lit-algos --help` loads this module, not what the command runs
        from lit_algos.training.run import resume_config

        return resume_config(resume, args.runs_dir)
    if getattr(args, "name", None) is not None:
        overrides.append(f"name={json.dumps(args.name)}")  # quoted: --name 2024 stays a string
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    if args.devices is not None:
        overrides.append(f"train.devices={args.devices}")
    if args.num_nodes is not None:
        overrides.append(f"train.num_nodes={args.num_nodes}")
    if args.wandb:
        overrides.append("train.wandb.enabled=true")
    return load_config(args.recipe, overrides)


def cmd_train(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console

    from lit_algos.training.distributed import is_rank_zero
    from lit_algos.training.run import train
    from lit_algos.training.summary import record_table

    console = Console()
    cfg = resolve_train_config(args)  # config errors stop here, before any data work
    record = train(
        cfg,
        runs_dir=args.runs_dir,
        resume=args.resume,
        console=console,
        progress="lines" if args.no_progress else True,  # True: the bar in a terminal, lines in a file
    )
    if record.world_size == 1 or is_rank_zero():
        console.print(record_table(record))
    return 0 if record.status in ("reached", "budget_exhausted") else 1


def cmd_recipes(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console
    from rich.table import Table

    from lit_algos.config.recipes import list_recipes, load_config

    fragments = sorted(set(list_recipes()) - set(list_recipes(fragments=False)))
    table = Table(
        title="recipes",
        caption=f"size fragments, for extends: [RECIPE, FRAGMENT]: {', '.join(fragments)}"
        if fragments
        else None,
    )
    for col in ("name", "description", "target", "model"):
        table.add_column(col)
    for name in list_recipes(fragments=False):
        try:
            cfg = load_config(name)
        except Exception as err:  # show broken recipes instead of hiding them
            table.add_row(name, f"[red]{err}[/]", "", "")
            continue
        m = cfg.model
        shape = f"{m.n_layer}L {m.n_head}H {m.n_embd}d T={m.block_size}"
        target = "-" if cfg.train.target_loss is None else str(cfg.train.target_loss)
        table.add_row(name, cfg.description, target, shape)
    Console().print(table)
    return 0
