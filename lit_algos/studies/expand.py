"""A study and a preset -> the list of ``RunSpec`` the sweep engine trains.

Every run gets, in order: the size's scale fragment as overrides, the study's overrides (a
research run: ``train.target_loss=null``), the preset's overrides, its token budget and
evaluation cadence, then the arm's own overrides (an ablation's component swap). Names are
``<arm>_<size>`` in every study (no "@": run ids refuse it), so a run two studies share has one spec id and is trained once.
Tags carry (study, experiment, arm, size) so the report can group runs. Expanding reads YAML only:
no model is built and no data is prepared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lit_algos.studies.spec import Experiment, Preset, Size, Study
from lit_algos.sweeps.spec import RunSpec


def component_map() -> dict[str, tuple[str, ...]]:
    """Which config fields make up each component of an ablation. The one place this module
    reaches the ablation map (``lit_algos.sweeps.ablation``, else its first home in the CLI)."""
    return _ablation_module().COMPONENTS


def _ablation_module():
    try:  # the library home of the ablation map, with the sweep engine
        from lit_algos.sweeps import ablation
    except ImportError:  # before it: where the map was first written
        from lit_algos.cli import sweep_cmds as ablation
    return ablation


def ablation_components(exp: Experiment) -> list[str]:
    """The experiment's components, or the default list (every component, ``moe`` in place of
    ``mlp`` when the new recipe's feed-forward is an MoE)."""
    if exp.components:
        return list(exp.components)
    from lit_algos.config.recipes import resolve_recipe_dict

    return _ablation_module().default_components(resolve_recipe_dict(exp.new))


def _ablation_jobs(exp: Experiment, ref: dict, new: dict) -> list[tuple[str, str, list[str]]]:
    return _ablation_module().ablation_jobs(exp.ref, exp.new, ablation_components(exp), ref, new)


def fragment_overrides(fragment: str) -> list[str]:
    """A scale fragment (``scales/mini``) as ``--set`` strings, so it applies on top of any recipe."""
    from lit_algos.config.recipes import resolve_recipe_dict

    data = resolve_recipe_dict(fragment)
    data.pop("name", None)
    out: list[str] = []

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(path, value)
            else:
                out.append(f"{path}={json.dumps(value)}")

    walk("", data)
    return out


@dataclass
class Expansion:
    study: Study
    preset: Preset
    runs: list[RunSpec]  # every (experiment, arm, size, seed), tags included; may repeat a config
    _hashes: dict = field(default_factory=dict, repr=False)

    def config_hash(self, spec: RunSpec) -> str:
        """The spec's config hash (seed and name left out), computed once per spec."""
        key = (spec.recipe, spec.overrides)
        if key not in self._hashes:
            self._hashes[key] = spec.config().config_hash()
        return self._hashes[key]

    def unique(self) -> list[RunSpec]:
        """One spec per (config hash, seed): what the engine must train."""
        seen, out = set(), []
        for spec in self.runs:
            key = (self.config_hash(spec), spec.seed)
            if key not in seen:
                seen.add(key)
                out.append(spec)
        return out

    def groups(self) -> dict[tuple[str, str, str], list[RunSpec]]:
        """(experiment, arm, size) -> its seeds' specs."""
        out: dict[tuple[str, str, str], list[RunSpec]] = {}
        for spec in self.runs:
            out.setdefault((spec.tags["experiment"], spec.tags["arm"], spec.tags["size"]), []).append(spec)
        return out


def per_param_tokens(preset: Preset, size: Size, base: list[str]) -> int:
    """``tokens_per_param``'s budget at ``size``: ratio x the non-embedding parameters of its recipe
    there, rounded up to whole evaluation intervals of whole optimizer steps."""
    from lit_algos.config.recipes import load_config
    from lit_algos.model import param_counts

    rule = preset.tokens_per_param
    sized, scale = _sized(size, rule.recipe)
    cfg = load_config(sized, [*scale, *base])
    step = cfg.train.batch_size * cfg.model.block_size * (preset.evals or 1)
    want = rule.ratio * param_counts(cfg.model)["non_embedding"]
    return int(-(-want // step) * step)


def _budget(preset: Preset, size: Size, recipe: str, base: list[str]) -> list[str]:
    tokens = preset.tokens.get(size.name)
    if tokens is None and size.name not in preset.tokens and preset.tokens_per_param is not None:
        tokens = per_param_tokens(preset, size, base)
    out = [f"train.max_tokens={tokens}"] if tokens is not None else []
    if preset.evals:
        if tokens is None:
            from lit_algos.config.recipes import load_config

            tokens = load_config(recipe, base).train.max_tokens
        if tokens:
            out.append(f"train.eval_every_tokens={max(1, tokens // preset.evals)}")
    return out


def _sized(size: Size, recipe: str) -> tuple[str, list[str]]:
    if size.recipe_dir:
        return f"{size.recipe_dir.rstrip('/')}/{Path(recipe).name}", []
    return recipe, fragment_overrides(size.scale)


def lr_overrides(recipe: str, overrides: list[str] | tuple[str, ...], scale: float) -> list[str]:
    """Every learning rate of the run (AdamW's; Muon's too for Muon) times ``scale``."""
    from lit_algos.config.recipes import load_config

    optim = load_config(recipe, list(overrides)).optim
    out = [f"optim.lr={optim.lr * scale:.6g}"]
    if optim.kind == "muon":
        out.append(f"optim.muon_lr={optim.muon_lr * scale:.6g}")
    return out


def expand(
    study: Study, preset: Preset | str | None = None, lr_scales: dict[tuple[str, str], float] | None = None
) -> Expansion:
    """Every run of the study under ``preset`` (default: the study's default preset).
    ``lr_scales``: (experiment, arm) -> the learning-rate multiplier its sweep chose
    (``lit_algos.studies.tuning``), applied to that arm's runs at every size."""
    if not isinstance(preset, Preset):
        preset = study.preset(preset)
    lr_scales = lr_scales or {}
    runs: list[RunSpec] = []
    for exp in study.experiments.values():
        for size_name in preset.sizes[exp.name]:
            size = study.sizes[size_name]
            if exp.kind == "grid":
                jobs = [
                    (arm, recipe, list(exp.arm_overrides.get(arm, ()))) for arm, recipe in exp.arms.items()
                ]
            else:
                from lit_algos.config.recipes import load_config

                resolved = []
                for recipe in (exp.ref, exp.new):
                    sized, scale = _sized(size, recipe)
                    resolved.append(load_config(sized, [*scale, *study.overrides]).to_dict())
                jobs = _ablation_jobs(exp, *resolved)
            for arm, recipe, arm_overrides in jobs:
                sized, scale = _sized(size, recipe)
                base = [*scale, *study.overrides, *preset.overrides]
                overrides = (*base, *_budget(preset, size, sized, base), *arm_overrides)
                if lr_scales.get((exp.name, arm), 1.0) != 1.0:
                    overrides = (*overrides, *lr_overrides(sized, overrides, lr_scales[(exp.name, arm)]))
                tags = {"study": study.name, "experiment": exp.name, "arm": arm, "size": size_name}
                for seed in range(preset.seeds):
                    runs.append(RunSpec(f"{arm}_{size_name}", sized, overrides, seed, dict(tags)))
    return Expansion(study, preset, runs)
