"""The runs of a scaling fit: each recipe at each size of a ladder (``recipes/scales/*``).

A scale fragment is applied as a patch on top of any recipe (``config.recipes.fragment_patch``),
and a scaling run has no target (each size is trained to the end of its budget: the fit needs final losses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lit_algos.config.recipes import as_patch, fragment_patch, merge_patches
from lit_algos.errors import LitAlgosError
from lit_algos.sweeps.spec import RunSpec

CPU_LADDER = ("scales/mini", "scales/tiny", "scales/small")
# 2 seeds x 3 sizes = 6 points per fit: at least the 3 parameters of L = E + A C^-alpha plus 2,
# so the fit has an interval (1 seed x 3 sizes left none and always ended "inconclusive")
SCALING_SEEDS = 2


def rung_name(recipe: str, scale: str) -> str:
    return f"{recipe}@{Path(scale).name}"


@dataclass
class ScalingPlan:
    recipes: list[str]  # one or two: ref [new]
    scales: list[str]
    specs: list[RunSpec]
    prefix: str = ""  # "NAME/" from --name: the runs are NAME/retro@tiny, ...

    @property
    def ref(self) -> str:
        return self.recipes[0]

    @property
    def new(self) -> str:
        return self.recipes[-1]

    def side(self, recipe: str, run_dirs: dict[str, Path]) -> list[Path]:
        """Run directories of ``recipe`` over the whole ladder, from ``run_sweep``'s result."""
        names = {self.prefix + rung_name(recipe, s) for s in self.scales}
        return [run_dirs[s.spec_id()] for s in self.specs if s.name in names]


def plan_scaling(
    recipes: list[str],
    scales: list[str] | tuple[str, ...] = CPU_LADDER,
    *,
    seeds: int = SCALING_SEEDS,
    overrides: list[str] | tuple[str, ...] = (),
    name: str | None = None,
) -> ScalingPlan:
    """Each recipe at each scale, ``seeds`` seeds, no target; ``name`` prefixes the runs' names."""
    if len(recipes) not in (1, 2):
        raise LitAlgosError(f"--recipes takes one or two recipes (ref [new]), got {len(recipes)}.")
    specs = []
    prefix = f"{name}/" if name else ""
    for recipe in recipes:
        for scale in scales:
            extra = merge_patches(fragment_patch(scale), {"train.target_loss": None}, as_patch(overrides))
            for seed in range(seeds):
                specs.append(
                    RunSpec(
                        prefix + rung_name(recipe, scale), recipe, extra, seed, {"scale": Path(scale).name}
                    )
                )
    return ScalingPlan(list(recipes), list(scales), specs, prefix)
