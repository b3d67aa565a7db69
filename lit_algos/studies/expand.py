"""A study and a preset -> the list of ``RunSpec`` the sweep engine trains.

Every run gets one patch (``lit_algos.config.recipes``: dotted path -> value) made of, in order:
the size's scale fragment, the study's overrides (a research run: ``train.target_loss=null``),
the preset's overrides, its token budget and evaluation cadence, then the arm's own overrides
(an ablation's component swap). Names are
``<arm>_<size>`` in every study (no "@": run ids refuse it), so a run two studies share has one spec id and is trained once.
Tags carry (study, experiment, arm, size) so the report can group runs. Expanding reads YAML only:
no model is built and no data is prepared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lit_algos.config.recipes import Patch, as_patch, fragment_patch, load_config, merge_patches
from lit_algos.model import param_counts
from lit_algos.studies.spec import Experiment, Preset, Size, Study, ablation_components
from lit_algos.sweeps.ablation import ablation_jobs
from lit_algos.sweeps.spec import RunSpec


def _ablation_jobs(exp: Experiment, ref: dict, new: dict) -> list[tuple[str, str, Patch]]:
    return ablation_jobs(exp.ref, exp.new, ablation_components(exp), ref, new)


@dataclass
class Expansion:
    study: Study
    preset: Preset
    runs: list[RunSpec]  # every (experiment, arm, size, seed), tags included; may repeat a config
    _hashes: dict = field(default_factory=dict, repr=False)

    def config_hash(self, spec: RunSpec) -> str:
        """The spec's config hash (seed and name left out), computed once per spec."""
        key = (spec.recipe, json.dumps(spec.patch, default=str))
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


def per_param_tokens(preset: Preset, size: Size, base: Patch) -> int:
    """``tokens_per_param``'s budget at ``size``: ratio x the non-embedding parameters of its recipe
    there, rounded up to whole evaluation intervals of whole optimizer steps."""

    rule = preset.tokens_per_param
    sized, scale = _sized(size, rule.recipe)
    cfg = load_config(sized, merge_patches(scale, base))
    step = cfg.train.batch_size * cfg.model.block_size * (preset.evals or 1)
    want = rule.ratio * param_counts(cfg.model)["non_embedding"]
    return int(-(-want // step) * step)


def _budget(preset: Preset, size: Size, recipe: str, base: Patch) -> Patch:
    tokens = preset.tokens.get(size.name)
    if tokens is None and size.name not in preset.tokens and preset.tokens_per_param is not None:
        tokens = per_param_tokens(preset, size, base)
    out = {"train.max_tokens": tokens} if tokens is not None else {}
    if preset.evals:
        if tokens is None:
            tokens = load_config(recipe, base).train.max_tokens
        if tokens:
            out["train.eval_every_tokens"] = max(1, tokens // preset.evals)
    return out


def _sized(size: Size, recipe: str) -> tuple[str, Patch]:
    if size.recipe_dir:
        return f"{size.recipe_dir.rstrip('/')}/{Path(recipe).name}", {}
    return recipe, fragment_patch(size.scale)


def lr_overrides(recipe: str, patch: Patch, scale: float) -> Patch:
    """Every learning rate of the run (AdamW's; Muon's too for Muon) times ``scale``, at 6
    significant digits (what the sweep's spec ids were made with)."""
    optim = load_config(recipe, patch).optim
    out = {"optim.lr": float(f"{optim.lr * scale:.6g}")}
    if optim.kind == "muon":
        out["optim.muon_lr"] = float(f"{optim.muon_lr * scale:.6g}")
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
                    (arm, recipe, as_patch(exp.arm_overrides.get(arm, ())))
                    for arm, recipe in exp.arms.items()
                ]
            else:
                resolved = []
                for recipe in (exp.ref, exp.new):
                    sized, scale = _sized(size, recipe)
                    resolved.append(
                        load_config(sized, merge_patches(scale, as_patch(study.overrides))).to_dict()
                    )
                jobs = _ablation_jobs(exp, *resolved)
            for arm, recipe, arm_patch in jobs:
                sized, scale = _sized(size, recipe)
                base = merge_patches(scale, as_patch(study.overrides), as_patch(preset.overrides))
                overrides = merge_patches(base, _budget(preset, size, sized, base), arm_patch)
                if lr_scales.get((exp.name, arm), 1.0) != 1.0:
                    lr = lr_overrides(sized, overrides, lr_scales[(exp.name, arm)])
                    overrides = merge_patches(overrides, lr)
                tags = {"study": study.name, "experiment": exp.name, "arm": arm, "size": size_name}
                for seed in range(preset.seeds):
                    runs.append(RunSpec(f"{arm}_{size_name}", sized, overrides, seed, dict(tags)))
    return Expansion(study, preset, runs)
