"""Naming a variant: ``train --name``, the A/B sweep's plan, ``ceg`` by name from the CLI alone."""

from __future__ import annotations

import json

import pytest

from lit_algos.cli import main
from lit_algos.errors import LitAlgosError
from lit_algos.sweeps.ab import plan_ab
from lit_algos.sweeps.ablation import plan_ablation
from lit_algos.sweeps.scaling import plan_scaling

QK_OFF = ["model.attention.qk_norm=false"]


def test_ab_plan_names_both_sides_and_pairs_their_seeds():
    plan = plan_ab("modern", new_overrides=QK_OFF, new_name="modern-no-qk", seeds=3)
    ref = [s for s in plan.specs if s.name == "modern"]
    new = [s for s in plan.specs if s.name == "modern-no-qk"]
    assert [s.seed for s in ref] == [s.seed for s in new] == [0, 1, 2]
    assert (
        new[0].config().model.attention.qk_norm is False and ref[0].config().model.attention.qk_norm is True
    )
    assert new[0].config().name == "modern-no-qk"  # what the record's recipe field will say
    dirs = {s.spec_id(): f"dir-{s.spec_id()}" for s in plan.specs}
    assert plan.side("new", dirs) == [f"dir-{s.spec_id()}" for s in new]


def test_ab_refuses_two_sides_it_could_not_tell_apart():
    with pytest.raises(LitAlgosError, match="--new-name"):
        plan_ab("modern", new_overrides=QK_OFF)  # same name on both sides
    with pytest.raises(LitAlgosError, match="nothing to compare"):
        plan_ab("modern", new_name="modern-copy")  # same config


def test_sweep_name_prefixes_the_runs_and_keeps_the_analysis_mapping():
    plan = plan_ablation("retro", "modern", "position", name="lr2x", overrides=["optim.lr=1e-3"])
    assert {s.name for s in plan.specs} == {
        "lr2x/retro",
        "lr2x/modern",
        "lr2x/retro+position",
        "lr2x/modern-position",
    }
    dirs = {s.spec_id(): s.spec_id() for s in plan.specs}
    groups = plan.attribution_inputs(dirs)
    assert groups["ref"] and groups["add"]["position"] and groups["remove"]["position"]
    scaling = plan_scaling(["retro"], ["scales/mini"], seeds=1, name="x")
    assert [s.name for s in scaling.specs] == ["x/retro@mini"]
    assert scaling.side("retro", {s.spec_id(): "d" for s in scaling.specs}) == ["d"]


def test_sweep_ab_dry_run_from_the_cli(tmp_path, capsys):
    argv = ["sweep", "ab", "debug", "--new-set", "optim.lr=0.01", "--new-name", "debug-lr", "--seeds", "2"]
    assert main([*argv, "--dry-run", "--json", "--runs-dir", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["seed"], r["state"]) for r in rows] == [
        ("debug", 0, "missing"), ("debug", 1, "missing"), ("debug-lr", 0, "missing"), ("debug-lr", 1, "missing")
    ]  # fmt: skip


def test_train_name_then_ceg_by_name_from_the_cli(data_cache, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    base = ["train", "debug", "--runs-dir", runs, "--no-progress"]
    assert main(base) == 0
    assert main([*base, "--name", "debug-lr", "--set", "optim.lr=0.01"]) == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/record.json")]
    assert sorted(r["recipe"] for r in records) == ["debug", "debug-lr"]
    capsys.readouterr()
    assert main(["ceg", "--ref", "debug", "--new", "debug-lr", "--runs-dir", runs, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ref"]["recipe"] == "debug" and report["new"]["recipe"] == "debug-lr"
    assert len(report["ref"]["runs"]) == len(report["new"]["runs"]) == 1
    assert main([*base, "--name", "a b"]) == 2  # a name is one word
