"""An A/B sweep: two variants over the same seeds, then the CEG of B over A.

    plan = plan_ab("modern", "modern", new_overrides=["model.attention.qk_norm=false"],
                   new_name="modern-no-qk", seeds=3)
    run_dirs = run_sweep(plan.specs, runs_dir=Path("runs"))
    refs, news = plan.side("ref", run_dirs), plan.side("new", run_dirs)

Each variant's runs carry its name as their recipe field, so ``lit-algos ceg --ref modern --new
modern-no-qk`` finds them again later. Same seeds on both sides make the CEG paired by seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lit_algos.config.recipes import as_patch, load_config, merge_patches
from lit_algos.errors import LitAlgosError
from lit_algos.sweeps.spec import RunSpec


@dataclass
class ABPlan:
    ref_name: str
    new_name: str
    specs: list[RunSpec]

    def side(self, which: str, run_dirs: dict[str, Path]) -> list[Path]:
        """Run directories of ``"ref"`` or ``"new"`` from ``run_sweep``'s result."""
        name = self.ref_name if which == "ref" else self.new_name
        return [run_dirs[s.spec_id()] for s in self.specs if s.name == name]


def plan_ab(
    ref: str,
    new: str | None = None,
    *,
    ref_overrides: list[str] | tuple[str, ...] = (),
    new_overrides: list[str] | tuple[str, ...] = (),
    overrides: list[str] | tuple[str, ...] = (),
    ref_name: str | None = None,
    new_name: str | None = None,
    seeds: int = 3,
    first_seed: int = 0,
) -> ABPlan:
    """The specs of both variants (configs validated; nothing built or trained).

    ``overrides`` apply to both; ``ref_overrides`` / ``new_overrides`` to one side. A name defaults
    to its recipe's; two variants must differ in name (their runs are told apart by it) and in
    config hash (else there is nothing to compare).
    """
    new = new or ref
    if seeds < 1:
        raise LitAlgosError(
            f"--seeds {seeds}: an A/B comparison needs at least 1 seed per variant (3+ for intervals)."
        )
    sides = {}
    for side, recipe, own, name in (
        ("ref", ref, ref_overrides, ref_name),
        ("new", new, new_overrides, new_name),
    ):
        extra = merge_patches(as_patch(overrides), as_patch(own))
        cfg = _config(recipe, extra, name)  # validates the variant before anything is trained
        seeds_ = range(first_seed, first_seed + seeds)
        sides[side] = (cfg, [RunSpec(cfg.name, recipe, extra, seed, {"role": side}) for seed in seeds_])
    (ref_cfg, ref_specs), (new_cfg, new_specs) = sides["ref"], sides["new"]
    if ref_cfg.name == new_cfg.name:
        raise LitAlgosError(
            f"Both variants are named {ref_cfg.name!r}, so their runs could not be told apart (ceg --ref/--new find "
            f"runs by name). Name one: --new-name NAME (e.g. {new_cfg.name}-b), or --ref-name NAME."
        )
    if ref_cfg.config_hash() == new_cfg.config_hash():
        raise LitAlgosError(
            f"{ref_cfg.name!r} and {new_cfg.name!r} train the same config ({ref_cfg.config_hash()}): nothing to compare. "
            "Give one side its change with --ref-set / --new-set KEY=VALUE, or two recipes."
        )
    return ABPlan(ref_cfg.name, new_cfg.name, ref_specs + new_specs)


def _config(recipe: str, patch: dict, name: str | None):
    return load_config(recipe, merge_patches(patch, {"name": name} if name else {}))
