"""The runs of an ablation between two recipes (retro -> modern): add-one, remove-one, subsets.

A component is a set of config fields copied from the other recipe; ``ref + comp`` is the
reference with the new recipe's fields of ``comp`` (add-one), ``new - comp`` the new recipe with
the reference's (remove-one). Configs equal to an earlier one (e.g. ``retro+bias`` when both
stacks agree on bias) are trained once and stand for both names.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lit_algos.config.recipes import Patch, as_patch, load_config, merge_patches
from lit_algos.errors import LitAlgosError
from lit_algos.sweeps.spec import RunSpec

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


def _get(data: dict, path: str):
    node = data
    for part in path.split("."):
        node = node[part]
    return node


def swap_patch(source: dict, paths: tuple[str, ...]) -> Patch:
    """A patch that copies ``paths`` (whole sections) from the resolved config ``source``."""
    return {path: copy.deepcopy(_get(source, path)) for path in paths}


def default_components(new: dict) -> list[str]:
    """Every component, with "moe" in place of "mlp" when the new recipe's feed-forward is an MoE."""
    drop = "mlp" if new.get("model", {}).get("mlp", {}).get("kind") == "moe" else "moe"
    return [c for c in COMPONENTS if c != drop]


def choose_components(names: str | list[str] | None, new: dict) -> list[str]:
    """The components to ablate: ``names`` (comma-separated or a list) or the default set; unknown
    names are refused with the allowed ones."""
    if names is None:
        return default_components(new)
    if isinstance(names, str):
        names = [c.strip() for c in names.split(",") if c.strip()]
    unknown = [c for c in names if c not in COMPONENTS]
    if unknown:
        raise LitAlgosError(
            f"Unknown component(s) {', '.join(unknown)} in --components; allowed: {', '.join(COMPONENTS)}."
        )
    return list(names)


def ablation_jobs(
    ref_name: str, new_name: str, names: list[str], ref: dict, new: dict, shapley: bool = False
) -> list[tuple[str, str, Patch]]:
    """(name, recipe, patch) for the endpoints, add-one, remove-one (and, for Shapley, every
    other subset: ref plus components "a+b"), in that order."""
    jobs = [(ref_name, ref_name, {}), (new_name, new_name, {})]
    for comp in names:
        jobs.append((f"{ref_name}+{comp}", ref_name, swap_patch(new, COMPONENTS[comp])))
        jobs.append((f"{new_name}-{comp}", new_name, swap_patch(ref, COMPONENTS[comp])))
    if shapley:
        for k in range(2, len(names) - 1):
            for subset in itertools.combinations(names, k):
                paths = tuple(p for c in subset for p in COMPONENTS[c])
                jobs.append((f"{ref_name}+{'+'.join(subset)}", ref_name, swap_patch(new, paths)))
    return jobs


def dedupe_jobs(jobs, overrides: Sequence[str] | Patch = ()) -> tuple[list, dict[str, str]]:
    """Jobs with distinct config hashes, and name -> the earlier job it duplicates (e.g. retro+bias
    when retro and modern agree on bias: the same config as retro, so it is not trained again)."""
    seen: dict[str, str] = {}
    kept, same_as = [], {}
    for name, recipe, extra in jobs:
        digest = load_config(recipe, merge_patches(extra, as_patch(overrides))).config_hash()
        if digest in seen:
            same_as[name] = seen[digest]
        else:
            seen[digest] = name
            kept.append((name, recipe, extra))
    return kept, same_as


@dataclass
class AblationPlan:
    """The specs of an ablation and how their runs map onto the attribution's groups."""

    ref: str
    new: str
    components: list[str]
    specs: list[RunSpec]
    same_as: dict[str, str] = field(default_factory=dict)  # name -> the job whose runs stand for it
    shapley: bool = False
    prefix: str = ""  # "NAME/" from --name: the runs are NAME/retro+rope, ...; job names stay unprefixed

    def groups(self, run_dirs: dict[str, Path]) -> dict[str, list[Path]]:
        """Run directories per job name (duplicates included) from ``run_sweep``'s result."""
        out: dict[str, list[Path]] = {}
        for spec in self.specs:
            out.setdefault(spec.name.removeprefix(self.prefix), []).append(run_dirs[spec.spec_id()])
        for name, other in self.same_as.items():
            out[name] = out[other]
        return out

    def attribution_inputs(self, run_dirs: dict[str, Path]) -> dict:
        """ref / new / add (incl. subsets "a+b") / remove run directories for the attribution."""
        groups = self.groups(run_dirs)
        add = {comp: groups[f"{self.ref}+{comp}"] for comp in self.components}
        prefix = f"{self.ref}+"
        for name, dirs in groups.items():
            if name.startswith(prefix) and "+" in name[len(prefix) :]:
                add[name[len(prefix) :]] = dirs
        remove = {comp: groups[f"{self.new}-{comp}"] for comp in self.components}
        return {"ref": groups[self.ref], "new": groups[self.new], "add": add, "remove": remove}


def plan_ablation(
    ref: str,
    new: str,
    components: str | list[str] | None = None,
    *,
    seeds: int = 1,
    overrides: list[str] | tuple[str, ...] = (),
    shapley: bool = False,
    name: str | None = None,
) -> AblationPlan:
    """The ablation's run specs (every config validated, nothing built or trained). ``name``: a prefix
    for the runs' names (``NAME/retro+rope``), so runs made with other ``overrides`` stay apart."""

    overrides = as_patch(overrides)
    ref_cfg = load_config(ref, overrides).to_dict()
    new_cfg = load_config(new, overrides).to_dict()
    names = choose_components(components, new_cfg)
    jobs, same_as = dedupe_jobs(ablation_jobs(ref, new, names, ref_cfg, new_cfg, shapley), overrides)
    prefix = f"{name}/" if name else ""
    specs = [
        RunSpec(prefix + job, recipe, merge_patches(extra, overrides), seed, {"role": "ablation"})
        for job, recipe, extra in jobs
        for seed in range(seeds)
    ]
    return AblationPlan(ref, new, names, specs, same_as, shapley, prefix)
