"""The jobs built on training: benchmark, speedrun, main, sweeps (on a tiny track and the debug recipe)."""

from __future__ import annotations

import json
import textwrap

import pytest

from lit_algos.cli import main
from lit_algos.config.recipes import load_config
from lit_algos.data import prepare_dataset
from lit_algos.sweeps.ablation import COMPONENTS, swap_patch
from lit_algos.utils.fingerprint import hardware_fingerprint


@pytest.fixture
def tiny_track(data_cache, tmp_path, monkeypatch):
    """A leaderboard with one track on the debug recipe's data, and a 'debug_modern' recipe."""
    prepared = prepare_dataset(load_config("debug").data)
    board = tmp_path / "leaderboard"
    board.mkdir()
    (board / "tracks.yaml").write_text(
        textwrap.dedent(f"""
        tracks:
          tiny:
            description: the debug recipe's data
            corpus: kjv
            tokenizer: bpe:512
            val_tokens: 4096
            val_fingerprint: {prepared.val_fingerprint}
            target_loss: 5.9
            hardware_class: {hardware_fingerprint("cpu", 1)["class"]}
            min_seeds_for_significance: 3
        """)
    )
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "debug_modern.yaml").write_text(
        "extends: debug\nmodel: {position: {kind: rope}, norm: {kind: rmsnorm}, mlp: {kind: swiglu}, bias: false}\n"
    )
    monkeypatch.setenv("LIT_ALGOS_RECIPES", str(recipes))
    return board


def test_main_job_trains_both_recipes_and_prints_ceg_and_board(tiny_track, tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(
        [
            "main",
            "--track",
            "tiny",
            "--ref",
            "debug",
            "--new",
            "debug_modern",
            "--runs-dir",
            str(runs),
            "--leaderboard-dir",
            str(tiny_track),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert len(list(runs.glob("*/record.json"))) == 2
    assert "CEG of debug_modern over debug" in out and "FLOPs" in out
    assert "board: tiny" in out and "no entries yet" in out
    assert "if submitted" in out


def test_speedrun_runs_seeds_and_previews_the_rank(tiny_track, tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(
        [
            "speedrun",
            "--track",
            "tiny",
            "--recipe",
            "debug",
            "--seeds",
            "2",
            "--runs-dir",
            str(runs),
            "--leaderboard-dir",
            str(tiny_track),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    records = [json.loads(p.read_text()) for p in runs.glob("*/record.json")]
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert all(r["target_loss"] == 5.9 for r in records)
    # the speedrun rule: the declared length in full, the crossing recorded on the way
    assert all(r["config"]["train"]["stop_at_target"] is False for r in records)
    assert all(
        r["status"] == "budget_exhausted" and r["final"]["tokens"] >= r["config"]["train"]["max_tokens"]
        for r in records
    )
    assert "make submit TRACK=tiny" in out
    assert "provisional" in out  # 2 seeds < the track's 3


def test_speedrun_refuses_a_recipe_on_other_data(tiny_track, capsys):
    code = main(
        [
            "speedrun",
            "--track",
            "tiny",
            "--recipe",
            "debug",
            "--set",
            "data.tokenizer=bpe:600",
            "--leaderboard-dir",
            str(tiny_track),
        ]
    )
    assert code == 2
    assert "data.tokenizer='bpe:600' (track: 'bpe:512')" in capsys.readouterr().err


def test_benchmark_reports_throughput(data_cache, capsys):
    args = ["benchmark", "debug", "--steps", "2", "--rounds", "2", "--plain", "--threads", "1", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    lightning, plain = out["rows"]
    assert lightning["name"] == "debug" and plain["name"] == "debug (plain)" and lightning["steps"] == 2
    for row in (lightning, plain):
        assert row["tokens_per_s"]["n"] == 2 and row["tokens_per_s"]["min"] > 0
        assert (
            row["mfu"]["median"] > 0 and "measured sustained fp32" in row["peak_source"]
        )  # CPU: a measured peak
    assert "1 threads" in out["host_before"] and "load average" in out["host_before"]


def test_benchmark_table_keeps_the_hosts_isa_flags_in_its_after_line(data_cache, capsys):
    # The host line holds "[avx2,...]": printed as rich markup it vanished from the "After:" line.
    assert main(["benchmark", "debug", "--steps", "1", "--rounds", "1", "--threads", "1"]) == 0
    after = capsys.readouterr().out.split("After:")[-1]
    assert "-core" in after and "[" in after and "] 1 threads" in after


def test_benchmark_peak_alone_measures_and_keeps_this_hosts_peaks(tmp_path, monkeypatch, capsys):
    from lit_algos import peaks

    monkeypatch.setenv("LIT_ALGOS_CACHE", str(tmp_path))
    assert main(["benchmark", "--peak", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "rows" not in out and set(out["peaks"]) == {"fp32", "bf16"}
    for kind, measured in out["peak_measurements"].items():
        assert (
            out["peaks"][kind]["flops"] == measured["peak"]
            and out["peaks"][kind]["n"] == measured["spread"]["n"]
        )
    assert peaks.cached_peaks() == out["peaks"]  # later runs on this host compute MFU against these
    assert main(["benchmark", "--peak"]) == 0
    text = capsys.readouterr().out
    assert "bf16 sustained matmul peak" in text and "median by size" in text


def test_benchmark_startup_prints_the_time_beyond_the_import(monkeypatch, capsys):
    from lit_algos import benchmark as bench

    imports, trains = iter([5.0, 4.0]), iter([6.0, 5.5])
    monkeypatch.setattr(bench, "import_round", lambda: {"seconds": next(imports)})
    monkeypatch.setattr(bench, "startup_round", lambda r, o: {"seconds": next(trains), "header_seconds": 0.5})
    assert main(["benchmark", "--startup", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "import lightning: 4.50 [4.00-5.00] s" in out
    assert "train debug: first step: 5.75 [5.50-6.00] s" in out
    assert "first step beyond the import (paired by round): 1.25 [1.00-1.50] s" in out


def test_ablation_swaps_whole_components():
    modern = load_config("modern").to_dict()
    overrides = swap_patch(modern, COMPONENTS["attention"])
    cfg = load_config("retro", overrides)
    assert cfg.model.attention.kind == "gqa" and cfg.model.attention.qk_norm
    assert cfg.model.position.kind == "learned"  # only the swapped component changed


def test_sweep_dry_run_lists_every_configuration(capsys):
    assert main(["sweep", "ablation", "--components", "position,optimizer", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for name in ("retro seed 0", "modern seed 0", "retro+position", "modern-position", "retro+optimizer"):
        assert name in out
    assert main(["sweep", "scaling", "--dry-run"]) == 0
    assert "retro@mini" in capsys.readouterr().out
    assert main(["sweep", "ablation", "--components", "wings", "--dry-run"]) == 2


def test_moe_is_an_ablation_component():
    from lit_algos.sweeps.ablation import default_components

    moe = load_config("modern-moe").to_dict()
    assert "moe" in default_components(moe) and "mlp" not in default_components(moe)
    assert "mlp" in default_components(load_config("modern").to_dict())
    cfg = load_config("retro", swap_patch(moe, COMPONENTS["moe"]))
    assert cfg.model.mlp.kind == "moe" and cfg.model.mlp.n_experts == 8
    assert cfg.model.position.kind == "learned"


def test_moe_ablation_dry_run(capsys):
    assert main(["sweep", "ablation", "--new", "modern-moe", "--components", "moe", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "retro+moe seed 0" in out and "modern-moe-moe seed 0" in out
