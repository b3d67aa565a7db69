"""``lit-algos ceg / submit / leaderboard`` end to end on synthetic run records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lit_algos.analysis.synthetic import (
    log_linear_loss,
    synthetic_record,
    synthetic_seeds,
    synthetic_tracks_yaml,
)
from lit_algos.cli import main


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    for recipe, k in (("retro", 1.0), ("modern", 3.0)):
        for rec in synthetic_seeds(recipe, k=k):
            rec.save(root / rec.run_id / "record.json")
    for recipe, k in (("retro+rope", 1.5), ("modern-rope", 2.0)):
        rec = synthetic_record(f"{recipe}-s0", recipe=recipe, seed=0, loss_fn=log_linear_loss(k=k))
        rec.save(root / rec.run_id / "record.json")
    monkeypatch.setenv("LIT_ALGOS_RUNS", str(root))
    return root


@pytest.fixture
def board(tmp_path) -> Path:
    root = tmp_path / "leaderboard"
    root.mkdir()
    (root / "tracks.yaml").write_text(synthetic_tracks_yaml())
    return root


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_ceg_json_by_recipe_name(runs_dir, capsys):
    out = run_json(
        capsys,
        ["ceg", "--ref", "retro", "--new", "modern", "--target", "3.6", "--json", "--resamples", "500"],
    )
    primary, target = out["results"]
    assert out["ref"]["recipe"] == "retro" and len(out["new"]["runs"]) == 3
    assert primary["kind"] == "primary" and primary["paired"]
    for unit in ("flops", "train_seconds", "tokens"):
        assert primary["ceg"][unit]["value"] == pytest.approx(3.0, rel=1e-6)
    assert target["loss"] == 3.6 and target["ceg"]["flops"]["value"] == pytest.approx(3.0, rel=1e-6)


def test_ceg_paper_method_and_tables(runs_dir, capsys):
    out = run_json(capsys, ["ceg", "--ref", "retro", "--new", "modern", "--method", "paper", "--json"])
    assert out["method"] == "paper" and "evals" in out["results"][0]["ceg"]
    assert (
        main(
            [
                "ceg",
                "--ref",
                "retro",
                "--new",
                "modern",
                "--per-pair",
                "--add",
                "rope=retro+rope",
                "--remove",
                "rope=modern-rope",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "CEG of modern over retro" in text and "FLOP CEG × measured throughput ratio" in text
    assert "attribution in FLOPs" in text and "rope" in text


def test_ceg_refuses_runs_on_different_validation_sets(runs_dir, tmp_path, capsys):
    other = synthetic_record("x", recipe="other", val_fingerprint="elsewhere")
    other.save(tmp_path / "x.json")
    assert main(["ceg", "--ref", "retro", "--new", str(tmp_path / "x.json")]) == 2
    assert "different validation sets" in capsys.readouterr().err


def test_ceg_unknown_recipe_lists_known_ones(runs_dir, capsys):
    assert main(["ceg", "--ref", "retro", "--new", "nope"]) == 2
    assert "modern" in capsys.readouterr().err


def test_ceg_scaling_ladder(tmp_path, capsys):
    paths = {"ref": [], "new": []}
    for side, alpha in (("ref", 0.05), ("new", 0.05)):
        for i, budget in enumerate((1e16, 1e17, 1e18, 1e19)):
            rec = synthetic_record(
                f"{side}{i}",
                recipe=f"{side}-{i}",
                config={"model": {"n_layer": i + 1}},  # one model size per budget
                flops=[budget / 10, budget],
                losses=[9.0, (40.0 if side == "ref" else 30.0) * budget**-alpha * (1 + 1e-3 * i)],
            )
            paths[side].append(str(rec.save(tmp_path / f"{side}{i}.json")))
    out = run_json(
        capsys,
        ["ceg", "--ref", *paths["ref"], "--new", *paths["new"], "--scaling", "final", "--no-fit-E", "--json"],
    )
    assert out["new_fit"]["alpha"] == pytest.approx(0.05, rel=0.05)
    assert out["compute_dependence"]["label"] == "gain flat"  # same alpha: a constant multiplier
    assert out["compute_dependence"]["slope"] == pytest.approx(0.0, abs=0.05)


@pytest.fixture
def no_checkpoints(monkeypatch):
    """Synthetic records have no saved weights: skip the final-checkpoint re-evaluation of submit
    (tests/test_leaderboard_checkpoints.py covers it on real runs)."""
    from lit_algos.leaderboard import checkpoints

    monkeypatch.setattr(checkpoints, "check_final_checkpoints", lambda *args, **kwargs: None)


def test_submit_and_leaderboard(runs_dir, board, capsys, no_checkpoints):
    argv = [
        "submit",
        "modern",
        "--track",
        "toy",
        "--description",
        "modern stack",
        "--contributors",
        "ada,bob",
        "--leaderboard-dir",
        str(board),
        "--no-plots",
        "--reference-runs",
        "retro",  # the track's baseline recipe, run on the same (synthetic) host
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "accepted" in out and "same-machine reference (runs of retro)" in out
    (entry_file,) = (board / "entries" / "toy").glob("*.json")
    assert json.loads(entry_file.read_text())["contributors"] == ["ada", "bob"]
    rows = run_json(capsys, ["leaderboard", "--leaderboard-dir", str(board), "--json"])
    assert rows["toy"][0]["rank_time"] == 1 and rows["toy"][0]["baseline"] and rows["closed"] == []
    assert main(["leaderboard", "--leaderboard-dir", str(board), "--track", "toy", "--plots"]) == 0
    assert (board / "plots" / "toy-loss-vs-time.png").is_file()


def test_rejected_submit_prints_the_reason_and_changes_nothing(runs_dir, board, capsys):
    argv = [
        "submit",
        "modern",
        "--track",
        "closed",
        "--description",
        "x",
        "--contributors",
        "ada",
        "--leaderboard-dir",
        str(board),
    ]
    assert main(argv) == 2
    assert "not calibrated yet" in capsys.readouterr().err
    assert sorted(p.name for p in board.iterdir()) == ["tracks.yaml"]


@pytest.mark.parametrize("command", ["ceg", "submit", "leaderboard"])
def test_help(command, capsys):
    assert main([command, "--help"]) == 0  # argparse's exit becomes main's return code
    assert "usage" in capsys.readouterr().out


def test_submit_measures_a_same_machine_reference_by_default(
    runs_dir, board, capsys, monkeypatch, no_checkpoints
):
    from lit_algos.analysis.synthetic import synthetic_reference
    from lit_algos.leaderboard import speedrun

    calls = []

    def fake_benchmark(track, steps, overrides=()):  # the real one trains the baseline recipe here
        calls.append((track.baseline_recipe, steps))
        return synthetic_reference(1e6, recipe="retro")

    monkeypatch.setattr(speedrun, "benchmark_reference", fake_benchmark)
    argv = ["submit", "modern", "--track", "toy", "--description", "m", "--contributors", "ada"]
    assert main([*argv, "--leaderboard-dir", str(board), "--no-plots", "--reference-steps", "7"]) == 0
    assert calls == [("retro", 7)]
    (entry_file,) = (board / "entries" / "toy").glob("*.json")
    ref = json.loads(entry_file.read_text())["reference"]
    assert ref["kind"] == "benchmark" and ref["seconds"] == pytest.approx([1e6])  # its declared run here
    stored = json.loads(entry_file.read_text())["reference_runs"]
    assert [r["run_id"] for r in stored] == ["retro-bench"]  # the benchmark's record: re-derived on load


def test_ceg_drops_a_record_copied_under_another_id_and_seed(tmp_path, capsys):
    """One run, one pair: a copy of a new run relabelled as seed 7 narrowed the interval from
    [0.20, 21.3] to [1.15, 3.30]; now it is named and left out, and the figures are unchanged."""
    import dataclasses

    import numpy as np

    rng = np.random.default_rng(0)
    root = tmp_path / "runs"
    for recipe, k in (("retro", 1.0), ("modern", 2.0)):
        for s in (0, 1):
            rec = synthetic_record(
                f"{recipe}-s{s}",
                recipe=recipe,
                seed=s,
                loss_fn=log_linear_loss(k=k * np.exp(rng.normal(0, 1))),
            )
            rec.save(root / rec.run_id / "record.json")
    argv = ["ceg", "--ref", "retro", "--new", "modern", "--runs-dir", str(root), "--json"]
    honest = run_json(capsys, argv)["results"][0]["ceg"]["flops"]
    from lit_algos.records import RunRecord

    original = RunRecord.load(root / "modern-s1" / "record.json")
    copy = dataclasses.replace(original, run_id="modern-s7", seed=7)
    copy.save(root / "modern-s7" / "record.json")
    out = run_json(capsys, argv)
    assert out["results"][0]["ceg"]["flops"] == honest and out["new"]["runs"] == ["modern-s0", "modern-s1"]
    assert main(argv[:-1]) == 0
    err = capsys.readouterr().err
    assert "modern-s7 (seed 7) has the same evaluation curve as run modern-s1" in err and "left out" in err
