"""A preset's learning-rate sweep: every tuned arm tried at each multiplier of its learning rates,
at one size, before the study's own runs; the multiplier with the lowest final validation loss
(mean over the sweep's seeds; a diverged run counts as infinite) is used for that arm at every
size. (A rule that skipped a multiplier next to a diverged one was tried and dropped: one seed's
divergence at 8x moved flash, which computes what the baseline computes, to 2x while the baseline
took 4x, and the null control would have read a loss.)

Why: arms that differ in architecture need not share a learning rate (the LSTM left the unigram
plateau only at its own settings), and tuning one arm by hand is not a fair comparison. Every
arm gets the same sweep, and the report prints it.

The sweep's runs are ordinary study runs: named ``<arm>_<size>`` like the others, told apart by
their config hash, so the sweep's run at the chosen multiplier is the study's own run of that
seed at the tuning size and is trained once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from lit_algos.analysis.runs import index_records
from lit_algos.config.recipes import as_patch, merge_patches
from lit_algos.studies.expand import Expansion, _budget, _sized, lr_overrides
from lit_algos.studies.spec import Preset, Study
from lit_algos.sweeps.spec import RunSpec


@dataclass
class ArmSweep:
    """One arm's sweep: the final loss at each multiplier (None: not trained yet) and the choice."""

    experiment: str
    arm: str
    lrs: dict[float, str] = field(default_factory=dict)  # multiplier -> its learning rates, as text
    losses: dict[float, list[float]] = field(default_factory=dict)  # multiplier -> final loss per seed
    chosen: float | None = None  # None until every run of the sweep has a record

    def mean(self, scale: float) -> float | None:
        values = self.losses.get(scale) or []
        return sum(values) / len(values) if values else None

    def to_dict(self) -> dict:
        return {
            "experiment": self.experiment,
            "arm": self.arm,
            "lrs": {str(k): v for k, v in self.lrs.items()},
            "losses": {str(k): v for k, v in self.losses.items()},
            "chosen": self.chosen,
        }


def tuning_runs(study: Study, preset: Preset) -> list[RunSpec]:
    """The sweep's runs (none without ``preset.tune``), tagged with their multiplier."""
    tune = preset.tune
    if tune is None:
        return []
    size = study.sizes[tune.size]
    runs = []
    for exp_name in tune.experiments:
        exp = study.experiments[exp_name]
        for arm, recipe in exp.arms.items():
            sized, scale_fragment = _sized(size, recipe)
            base = merge_patches(scale_fragment, as_patch(study.overrides), as_patch(preset.overrides))
            arm_patch = as_patch(exp.arm_overrides.get(arm, ()))
            overrides = merge_patches(base, _budget(preset, size, sized, base), arm_patch)
            for scale in tune.lr_scale:
                extra = lr_overrides(sized, overrides, scale) if scale != 1.0 else {}
                tags = {"study": study.name, "experiment": exp_name, "arm": arm, "size": tune.size,
                        "lr_scale": f"{scale:g}", "role": "tuning"}  # fmt: skip
                for seed in range(tune.seeds):
                    runs.append(
                        RunSpec(f"{arm}_{tune.size}", sized, merge_patches(overrides, extra), seed, tags)
                    )
    return runs


def sweep_results(study: Study, preset: Preset, runs_dir: Path) -> list[ArmSweep]:
    """Each tuned arm's sweep as far as its records go, with the choice once all are in."""

    specs = tuning_runs(study, preset)
    if not specs:
        return []
    index = index_records(Path(runs_dir))
    hashes = Expansion(study, preset, specs)
    out: dict[tuple[str, str], ArmSweep] = {}
    missing: set[tuple[str, str]] = set()
    for spec in specs:
        key = (spec.tags["experiment"], spec.tags["arm"])
        sweep = out.setdefault(key, ArmSweep(*key))
        scale = float(spec.tags["lr_scale"])
        cfg = spec.config()
        lrs = f"{cfg.optim.lr:.3g}" + (f", muon {cfg.optim.muon_lr:.3g}" if cfg.optim.kind == "muon" else "")
        sweep.lrs[scale] = lrs
        record = index.get((hashes.config_hash(spec), spec.seed))
        if record is None:
            missing.add(key)
            continue
        final = record.curve[-1].val_loss if record.curve and record.status != "diverged" else math.inf
        sweep.losses.setdefault(scale, []).append(final if math.isfinite(final) else math.inf)
    for key, sweep in out.items():
        if key not in missing:
            sweep.chosen = choose(sweep)
    return list(out.values())


def choose(sweep: ArmSweep) -> float:
    """The multiplier with the lowest mean final loss (ties: the one nearest 1)."""
    return min(sweep.losses, key=lambda s: (sweep.mean(s), abs(math.log(s))))


def chosen_scales(sweeps: list[ArmSweep]) -> dict[tuple[str, str], float]:
    """(experiment, arm) -> multiplier, for the arms whose sweep is complete."""
    return {(s.experiment, s.arm): s.chosen for s in sweeps if s.chosen is not None}
