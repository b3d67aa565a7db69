"""``lit-algos sweep``: flags to the engine, and commands that call library functions, never the parser."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lit_algos.cli import sweep_cmds
from lit_algos.sweeps.ablation import plan_ablation
from lit_algos.sweeps.engine import read_journal
from lit_algos.sweeps.scaling import plan_scaling


def _parse(argv: list[str]):
    parser = argparse.ArgumentParser()
    sweep_cmds.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_slurm_flags_become_the_engines_slurm_settings():
    args = _parse(
        ["sweep", "scaling", "--executor", "slurm", "--slurm-partition", "gpu", "--slurm-time", "2:00:00"]
        + ["--slurm-gpus-per-node", "1", "--slurm-array-parallelism", "8", "--slurm-param", "gres=gpu:a100:1"]
    )
    assert args.executor == "slurm"
    assert sweep_cmds.slurm_settings(args) == {
        "partition": "gpu",
        "time": "2:00:00",
        "gpus_per_node": 1,
        "array_parallelism": 8,
        "additional": {"gres": "gpu:a100:1"},
    }
    args = _parse(["sweep", "ablation", "--workers", "2", "--threads", "1"])
    assert (args.workers, args.threads, args.executor) == (2, 1, "local")


def test_ablation_plan_maps_runs_onto_the_attribution():
    plan = plan_ablation("retro", "modern", "position,bias", seeds=2)
    names = [s.name for s in plan.specs]
    assert names.count("retro") == 2 and "retro+position" in names
    # retro and modern agree on bias? then its runs stand in; otherwise both bias runs are trained
    run_dirs = {s.spec_id(): Path(f"/runs/{s.spec_id()}") for s in plan.specs}
    groups = plan.attribution_inputs(run_dirs)
    assert set(groups["add"]) == set(groups["remove"]) == {"position", "bias"}
    assert len(groups["ref"]) == 2 and all(p.name.startswith("retro-") for p in groups["ref"])
    assert [p.name.split("-")[0] for p in groups["add"]["position"]] == ["retro+position"] * 2


def test_scaling_plan_sides():
    plan = plan_scaling(["lstm", "retro"], ["scales/mini", "scales/tiny"], seeds=2)
    assert len(plan.specs) == 8 and all(s.patch["train.target_loss"] is None for s in plan.specs)
    run_dirs = {s.spec_id(): Path(s.spec_id()) for s in plan.specs}
    assert {p.name.split("-")[0] for p in plan.side("lstm", run_dirs)} == {"lstm@mini", "lstm@tiny"}


@pytest.mark.slow
def test_sweep_ablation_runs_on_the_engine_without_reentering_the_parser(
    data_cache, tmp_path, monkeypatch, capsys
):
    import lit_algos.cli

    main = lit_algos.cli.main

    def reentered(*args, **kwargs):
        raise AssertionError("a command called lit_algos.cli.main (re-entered the parser)")

    monkeypatch.setattr(lit_algos.cli, "main", reentered)
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "debug_modern.yaml").write_text(
        "extends: debug\nmodel: {position: {kind: rope}, norm: {kind: rmsnorm}}\n"
    )
    monkeypatch.setenv("LIT_ALGOS_RECIPES", str(recipes))
    runs = tmp_path / "runs"
    argv = ["sweep", "ablation", "--ref", "debug", "--new", "debug_modern", "--components", "position"]
    argv += ["--runs-dir", str(runs), "--workers", "2", "--set", "train.max_tokens=8192"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "CEG of debug_modern over debug" in out and "attribution in FLOPs" in out
    assert "components by add-one CEG: position" in out
    trained = [e["spec_id"].split("-")[0] for e in read_journal(runs) if e["action"] == "train"]
    assert sorted(trained) == [
        "debug",
        "debug+position",
        "debug_modern",
        "debug_modern",
    ]  # d_m and d_m-position
    # again, as JSON: everything is finished, nothing is trained; stdout holds the analysis alone
    assert main([*argv, "--json"]) == 0
    again = capsys.readouterr()
    assert "all 4 runs are finished already" in again.err
    data = json.loads(again.out)
    assert [c["component"] for c in data["attribution"]["components"]] == ["position"]
    assert data["ref"]["recipe"] == "debug" and data["new"]["recipe"] == "debug_modern"
    assert len([e for e in read_journal(runs) if e["action"] == "train"]) == 4
