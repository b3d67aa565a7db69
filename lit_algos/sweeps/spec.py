"""What a sweep is made of: run specs, each naming one training run (recipe, patch, seed).

A spec's id is stable: the same recipe, patch and seed give the same resolved config, so the
same ``config_hash``, so the same id, in every process and on every machine. The sweep engine uses
it to find runs that are finished (skip), interrupted (resume) or missing (train). Building a
spec's config reads YAML only: no model is built and no data is prepared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lit_algos.config import Config
from lit_algos.config.recipes import Patch, as_patch, load_config, merge_patches


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep. ``name`` labels it in tables and becomes the run's ``name`` field
    (e.g. ``retro+rope`` or ``modern@tiny``); ``patch`` is set on top of ``recipe``
    (``lit_algos.config.recipes``: dotted path -> value; ``--set`` strings given here are parsed
    into one, once); ``tags`` are free labels a study uses to group runs (size, variant, role)."""

    name: str
    recipe: str
    patch: Patch | Sequence[str] | Mapping[str, Any] = field(default_factory=dict, hash=False)
    seed: int = 0
    tags: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "patch", as_patch(self.patch))

    def config(self) -> Config:
        return load_config(
            self.recipe, merge_patches(self.patch, {"name": self.name, "train.seed": self.seed})
        )

    def with_patch(self, *patches: Mapping[str, Any]) -> RunSpec:
        """This spec with ``patches`` applied after its own."""
        return RunSpec(self.name, self.recipe, merge_patches(self.patch, *patches), self.seed, self.tags)

    def spec_id(self, config: Config | None = None) -> str:
        """``<name>-<config hash>-s<seed>``, with the name made filesystem-safe."""
        cfg = config or self.config()
        slug = re.sub(r"[^A-Za-z0-9_.+@-]+", "-", self.name).strip("-") or "run"
        return f"{slug}-{cfg.config_hash()}-s{self.seed}"


# The spec as JSON: how a worker process or a SLURM task receives it.
def spec_to_json(spec: RunSpec) -> str:
    return json.dumps(
        {
            "name": spec.name,
            "recipe": spec.recipe,
            "patch": spec.patch,
            "seed": spec.seed,
            "tags": dict(spec.tags),
        }
    )


def spec_from_json(text: str) -> RunSpec:
    data = json.loads(text)
    return RunSpec(
        data["name"],
        data["recipe"],
        data.get("patch", data.get("overrides", ())),  # overrides: --set strings, before patches
        int(data["seed"]),
        data.get("tags", {}),
    )
