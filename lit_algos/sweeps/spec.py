"""What a sweep is made of: run specs, each naming one training run (recipe, overrides, seed).

A spec's id is stable: the same recipe, overrides and seed give the same resolved config, so the
same ``config_hash``, so the same id, in every process and on every machine. The sweep engine uses
it to find runs that are finished (skip), interrupted (resume) or missing (train). Building a
spec's config reads YAML only: no model is built and no data is prepared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lit_algos.config import Config


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep. ``name`` labels it in tables and becomes the run's ``name`` field
    (e.g. ``retro+rope`` or ``modern@tiny``); ``overrides`` are ``--set`` strings applied on top of
    ``recipe``; ``tags`` are free labels a study uses to group runs (size, variant, role)."""

    name: str
    recipe: str
    overrides: tuple[str, ...] = ()
    seed: int = 0
    tags: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def config(self) -> Config:
        from lit_algos.config.recipes import load_config

        return load_config(self.recipe, [*self.overrides, f"name={self.name}", f"train.seed={self.seed}"])

    def spec_id(self, config: Config | None = None) -> str:
        """``<name>-<config hash>-s<seed>``, with the name made filesystem-safe."""
        cfg = config or self.config()
        slug = re.sub(r"[^A-Za-z0-9_.+@-]+", "-", self.name).strip("-") or "run"
        return f"{slug}-{cfg.config_hash()}-s{self.seed}"
