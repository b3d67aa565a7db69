"""``lit-algos sweep ablation|scaling``: train the runs an attribution or a scaling fit needs, then
hand them to ``lit-algos ceg`` (the analysis lives there, not here).

- ablation: for each component, ``ref + component`` (add-one) and ``new - component``
  (remove-one), where a component is a set of config fields copied from the other recipe.
- scaling: each recipe at each size of the ladder (``recipes/scales/*``), then the
  ``L(C) = E + A C^-alpha`` fits and the compute-dependence verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

from lit_algos.cli.train_cmds import add_config_args
from lit_algos.errors import LitAlgosError

# Which config fields make up each component of the retro -> modern difference. "mlp" and "moe"
# name the same section; the default list keeps the one that describes the new recipe.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "position": ("model.position",),
    "norm": ("model.norm",),
    "mlp": ("model.mlp",),
    "moe": ("model.mlp",),  # the MoE feed-forward: the mlp section of a recipe with mlp.kind=moe
    "attention": ("model.attention",),
    "embeddings": ("model.tie_embeddings",),
    "bias": ("model.bias",),
    "optimizer": ("optim",),
}
CPU_LADDER = ("scales/mini", "scales/tiny", "scales/small")
SCALING_SEEDS = 2


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
    # 2 seeds x 3 sizes = 6 points per fit: at least the 3 parameters of L = E + A C^-alpha plus 2,
    # so the fit has an interval (1 seed x 3 sizes left none and always ended "inconclusive")
    s.set_defaults(func=cmd_scaling, seeds=SCALING_SEEDS)


def _common(p) -> None:
    add_config_args(p)
    p.add_argument("--seeds", type=int, default=1, help="seeds per configuration (default 1)")
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="where runs go (default $LIT_ALGOS_RUNS or ./runs)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="only print the configurations that would be trained"
    )
    p.add_argument("--no-progress", action="store_true")


def _get(data: dict, path: str):
    node = data
    for part in path.split("."):
        node = node[part]
    return node


def swap_overrides(source: dict, paths: tuple[str, ...]) -> list[str]:
    """``--set`` strings that copy ``paths`` from the resolved config ``source`` (JSON is valid YAML)."""
    return [f"{path}={json.dumps(_get(source, path))}" for path in paths]


def _train_all(jobs: list[tuple[str, str, list[str]]], args) -> dict[str, list[Path]]:
    """Train each (name, recipe, overrides) for every seed; returns run directories per name."""
    from rich.console import Console

    from lit_algos.config.recipes import load_config
    from lit_algos.records import default_runs_dir
    from lit_algos.training.run import train

    console = Console()
    runs_dir = args.runs_dir or default_runs_dir()
    configs = []
    for name, recipe, overrides in jobs:  # validate everything before training anything
        for seed in range(args.seeds):
            configs.append(
                (
                    name,
                    load_config(recipe, [*overrides, *args.overrides, f"name={name}", f"train.seed={seed}"]),
                )
            )
    for name, cfg in configs:
        console.print(
            f"[bold]{name}[/] seed {cfg.train.seed}: {cfg.model.n_layer}L {cfg.model.n_embd}d, config {cfg.config_hash()}"
        )
    if args.dry_run:
        return {}
    out: dict[str, list[Path]] = {}
    for name, cfg in configs:
        console.rule(f"{name} seed {cfg.train.seed}")
        record = train(cfg, runs_dir=runs_dir, console=console, progress=not args.no_progress)
        out.setdefault(name, []).append(runs_dir / record.run_id)
    return out


def ablation_jobs(
    ref_name: str, new_name: str, names: list[str], ref: dict, new: dict, shapley: bool = False
):
    """(name, recipe, overrides) for the endpoints, add-one, remove-one (and, for Shapley, every
    other subset: ref plus components "a+b"), in that order."""
    jobs = [(ref_name, ref_name, []), (new_name, new_name, [])]
    for comp in names:
        jobs.append((f"{ref_name}+{comp}", ref_name, swap_overrides(new, COMPONENTS[comp])))
        jobs.append((f"{new_name}-{comp}", new_name, swap_overrides(ref, COMPONENTS[comp])))
    if shapley:
        import itertools

        for k in range(2, len(names) - 1):
            for subset in itertools.combinations(names, k):
                paths = tuple(p for c in subset for p in COMPONENTS[c])
                jobs.append((f"{ref_name}+{'+'.join(subset)}", ref_name, swap_overrides(new, paths)))
    return jobs


def dedupe_jobs(jobs, overrides: list[str]) -> tuple[list, dict[str, str]]:
    """Jobs with distinct config hashes, and name -> the earlier job it duplicates (e.g. retro+bias
    when retro and modern agree on bias: the same config as retro, so it is not trained again)."""
    from lit_algos.config.recipes import load_config

    seen: dict[str, str] = {}
    kept, same_as = [], {}
    for name, recipe, extra in jobs:
        digest = load_config(recipe, [*extra, *overrides]).config_hash()
        if digest in seen:
            same_as[name] = seen[digest]
        else:
            seen[digest] = name
            kept.append((name, recipe, extra))
    return kept, same_as


def default_components(new: dict) -> list[str]:
    """Every component, with "moe" in place of "mlp" when the new recipe's feed-forward is an MoE."""
    drop = "mlp" if new.get("model", {}).get("mlp", {}).get("kind") == "moe" else "moe"
    return [c for c in COMPONENTS if c != drop]


def cmd_ablation(args) -> int:
    from rich.console import Console

    from lit_algos.cli import main
    from lit_algos.config.recipes import load_config

    ref = load_config(args.ref, args.overrides).to_dict()
    new = load_config(args.new, args.overrides).to_dict()
    if args.components is None:
        names = default_components(new)
    else:
        names = [c.strip() for c in args.components.split(",") if c.strip()]
    unknown = [c for c in names if c not in COMPONENTS]
    if unknown:
        raise LitAlgosError(
            f"Unknown component(s) {', '.join(unknown)} in --components; allowed: {', '.join(COMPONENTS)}."
        )
    jobs, same_as = dedupe_jobs(
        ablation_jobs(args.ref, args.new, names, ref, new, args.shapley), args.overrides
    )
    for name, other in same_as.items():
        Console().print(f"skipped {name}: its config hash equals {other}'s, so {other}'s runs stand for it")
    runs = _train_all(jobs, args)
    if not runs:
        return 0
    for name, other in same_as.items():
        runs[name] = runs[other]
    ceg = ["ceg", "--ref", *map(str, runs[args.ref]), "--new", *map(str, runs[args.new])]
    for comp in names:
        ceg += ["--add", f"{comp}={','.join(map(str, runs[f'{args.ref}+{comp}']))}"]
        ceg += ["--remove", f"{comp}={','.join(map(str, runs[f'{args.new}-{comp}']))}"]
    prefix = f"{args.ref}+"
    for name in runs:
        if name.startswith(prefix) and "+" in name[len(prefix) :]:
            ceg += ["--add", f"{name[len(prefix) :]}={','.join(map(str, runs[name]))}"]
    return main([*ceg, "--shapley"] if args.shapley else ceg)


def cmd_scaling(args) -> int:
    from lit_algos.cli import main

    if len(args.recipes) not in (1, 2):
        raise LitAlgosError(f"--recipes takes one or two recipes (ref [new]), got {len(args.recipes)}.")
    jobs = []
    for recipe in args.recipes:
        for scale in args.scales:
            # No target: a scaling fit needs each size trained to the end of its budget.
            jobs.append(
                (f"{recipe}@{Path(scale).name}", recipe, [*_scale_overrides(scale), "train.target_loss=null"])
            )
    runs = _train_all(jobs, args)
    if not runs:
        return 0
    ref, new = args.recipes[0], args.recipes[-1]
    refs = [str(p) for scale in args.scales for p in runs[f"{ref}@{Path(scale).name}"]]
    news = [str(p) for scale in args.scales for p in runs[f"{new}@{Path(scale).name}"]]
    return main(["ceg", "--ref", *refs, "--new", *news, "--scaling", "final"])


def _scale_overrides(scale: str) -> list[str]:
    """A scale fragment as ``--set`` overrides, so it applies on top of any recipe."""
    from lit_algos.config.recipes import resolve_recipe_dict

    data = resolve_recipe_dict(scale)
    data.pop("name", None)
    out = []

    def walk(prefix: str, node) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(path, value)
            else:
                out.append(f"{path}={json.dumps(value)}")

    walk("", data)
    return out
