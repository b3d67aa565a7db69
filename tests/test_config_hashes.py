"""Config hashes and sweep ids do not change when the config's layout does.

``tests/data/config_hashes.json`` holds what the code before issue 28 computed (commit 26aa24a,
when the optimizer section was flat and named by ``optim.name``): the hash of every shipped
recipe, of every recipe with every scale fragment applied as sweeps and studies apply them, of
every run record on the board, and the spec ids of every study preset (its runs, its
learning-rate sweep, its runs at a swept multiplier) and of the default ablation and scaling
sweeps. Runs on disk are found by these ids and board entries carry these hashes. The study presets
that issue 24 changed later on main are pinned as main's code (bee29fa, before issue 28) computed them.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from functools import cache
from pathlib import Path

import pytest

from lit_algos.config import Config, hash_config_dict
from lit_algos.config.recipes import fragment_patch, list_recipes, load_config
from lit_algos.errors import LitAlgosError

PINNED = json.loads((Path(__file__).parent / "data" / "config_hashes.json").read_text())
REPO = Path(__file__).resolve().parents[1]
FROZEN_BOARD = Path(__file__).parent / "data" / "board-2026-12-02"

# A scale fragment for the paper's GPU runs switches the schedule to cosine; on a wsd recipe the
# merged section also carried wsd's decay_fraction, which a cosine schedule never read but the flat
# layout hashed. Now that each schedule owns its options the fragment drops it (decay_fraction:
# null), so these combinations, which no study, sweep default or board entry uses, hash anew.
CARRIED_AN_IGNORED_OPTION = {
    f"{recipe} + scales/{scale}"
    for recipe in ("modern", "modern-compact", "modern-gpt2-small", "modern-moe", "speedrun")
    for scale in ("paper-compact", "paper-full")
}


def digest(ids: list[str]) -> list:
    return [len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]]


def test_every_recipe_hashes_as_before():
    assert set(list_recipes(fragments=False)) == set(PINNED["recipes"])
    for name, pinned in PINNED["recipes"].items():
        cfg = load_config(name)
        assert cfg.config_hash() == pinned, name
        # a record stores to_dict(): the dict form hashes the same, and reloads to the same hash
        assert hash_config_dict(cfg.to_dict()) == pinned, name
        assert Config.from_dict(cfg.to_dict()).config_hash() == pinned, name


def test_every_recipe_at_every_scale_hashes_as_before():
    assert CARRIED_AN_IGNORED_OPTION <= set(PINNED["recipe_x_scale"])
    changed = []
    for key, pinned in PINNED["recipe_x_scale"].items():
        recipe, scale = key.split(" + ")
        try:
            got = load_config(recipe, fragment_patch(scale)).config_hash()
        except LitAlgosError as err:
            got = f"error: {type(err).__name__}"
        if got != pinned:
            changed.append(key)
    assert set(changed) == CARRIED_AN_IGNORED_OPTION


def test_every_frozen_board_record_hashes_and_reloads_as_before():
    """The records keep the flat optimizer section they were written with: the dict hashes as
    stored, and loading migrates it (optim.name -> optim.kind) to a config of the same hash.
    (The cpu-kjv entries of 2026-12-02/03, kept in tests/data/board-2026-12-02 when the board was
    re-seeded: docs/measurements/leaderboard-history.md.)"""
    seen = {}
    for path in sorted(FROZEN_BOARD.glob("*.json")):
        entry = json.loads(path.read_text())
        for role in ("runs", "reference_runs"):
            for record in entry.get(role) or []:
                key = f"cpu-kjv/{path.name}:{role}:{record['run_id']}"
                assert "name" in record["config"]["optim"]  # the old layout, as written
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # a record loads silently: it is data, not a recipe
                    loaded = Config.from_dict(record["config"])
                seen[key] = loaded.config_hash()
                assert hash_config_dict(record["config"]) == record["config_hash"] == seen[key], key
    assert seen == PINNED["records"]


def test_every_live_board_record_hashes_as_its_recipe_on_its_track():
    """Today's entries: each record's stored hash is its config's, the config loads silently, and
    it is the hash of its recipe with the track's target (so `ceg --ref NAME` finds them)."""
    for path in sorted((REPO / "leaderboard" / "entries").rglob("*.json")):
        entry = json.loads(path.read_text())
        for record in [*entry["runs"], *(entry.get("reference_runs") or [])]:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                loaded = Config.from_dict(record["config"])
            assert hash_config_dict(record["config"]) == record["config_hash"] == loaded.config_hash()
            target = f"train.target_loss={record['config']['train']['target_loss']}"
            assert load_config(record["recipe"], [target]).config_hash() == record["config_hash"], path.name


@cache
def _studies():
    from lit_algos.studies.spec import list_studies, load_study

    return {name: load_study(name) for name in list_studies()}


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(PINNED["studies"]))
def test_every_study_preset_has_the_spec_ids_it_had(key):
    from lit_algos.studies.expand import expand
    from lit_algos.studies.tuning import tuning_runs

    study_name, preset_name = key.split(":")
    study = _studies()[study_name]
    preset = study.presets[preset_name]
    pinned = PINNED["studies"][key]
    assert digest([s.spec_id() for s in expand(study, preset).runs]) == pinned["runs"]
    tuning = tuning_runs(study, preset)
    assert digest([s.spec_id() for s in tuning]) == pinned["tuning"]
    for scale, ids in pinned["lr_scaled"].items():
        arms = {(s.tags["experiment"], s.tags["arm"]): float(scale) for s in tuning}
        assert digest([s.spec_id() for s in expand(study, preset, arms).runs]) == ids, scale


def test_default_sweeps_have_the_spec_ids_they_had():
    from lit_algos.sweeps.ablation import plan_ablation
    from lit_algos.sweeps.scaling import plan_scaling

    plans = {
        "ablation retro modern": plan_ablation("retro", "modern"),
        "ablation retro modern-moe": plan_ablation("retro", "modern-moe"),
        "scaling retro modern": plan_scaling(["retro", "modern"]),
        "scaling lstm retro": plan_scaling(["lstm", "retro"]),
    }
    for key, plan in plans.items():
        assert digest([s.spec_id() for s in plan.specs]) == PINNED["sweeps"][key], key
