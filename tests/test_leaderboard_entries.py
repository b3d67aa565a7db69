"""Submitting to the leaderboard (lit_algos.leaderboard.entries): every rejection path, concurrency."""

from __future__ import annotations

import multiprocessing as mp
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lit_algos.analysis.synthetic import (
    synthetic_record,
    synthetic_reference,
    synthetic_seeds,
    synthetic_tracks_yaml,
)
from lit_algos.errors import SubmissionError
from lit_algos.leaderboard.entries import Entry, load_entries
from lit_algos.leaderboard.submit import submit


@pytest.fixture
def board(tmp_path) -> Path:
    root = tmp_path / "leaderboard"
    root.mkdir()
    (root / "tracks.yaml").write_text(synthetic_tracks_yaml())
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def submit_toy(root, runs, **kwargs):
    kwargs = {
        "description": "toy",
        "contributors": ["ada"],
        "leaderboard_dir": root,
        "plots": False,
        "reference": synthetic_reference(1e6),
        **kwargs,
    }
    return submit(runs, kwargs.pop("track", "toy"), **kwargs)


def test_accepted_entry_holds_runs_statistics_and_summary(board):
    runs = synthetic_seeds("fast", k=2.0)
    entry = submit_toy(board, runs, name="fast-1", contributors=["ada", "bob"])
    path = board / "entries" / "toy" / "fast-1.json"
    loaded = Entry.load(path)
    assert loaded.id == "fast-1" and loaded.contributors == ["ada", "bob"] and loaded.recipe == "fast"
    assert [r.run_id for r in loaded.runs] == [r.run_id for r in runs]
    assert loaded.runs[0].curve == runs[0].curve  # full records, curve included
    st = loaded.statistics
    assert st["n"] == 3 and not st["provisional"] and st["p"] < 0.01 and st["mean_final_loss"] < 3.5
    flops, crossing = loaded.summary["flops"], loaded.summary["crossing"]["flops"]
    assert flops["value"] == pytest.approx(1e15)  # the declared run's cost: every seed ran the full grid
    assert crossing["low"] < crossing["value"] < crossing["high"]
    assert crossing["value"] == pytest.approx(sum(r.to_target.flops for r in runs) / 3)
    assert loaded.rule == "declared-length" and loaded.reference["seconds"] == pytest.approx([1e6])
    assert loaded.commit == "0000000" and entry.config_hash == loaded.config_hash
    assert "fast-1" in (board / "README.md").read_text()


def test_entry_drops_the_machine_local_dataset_path_and_stays_verifiable(board):
    runs = synthetic_seeds("fast", k=2.0)
    for r in runs:
        r.data["root"] = "/home/ada/.cache/lit_algos/datasets/kjv-bpe-4096-0123"
    submit_toy(board, runs, name="fast-1")
    text = (board / "entries" / "toy" / "fast-1.json").read_text()
    assert "/home/ada" not in text
    loaded = load_entries(board)["toy"]  # digests and audit re-checked on load: not skipped
    assert [e.id for e in loaded] == ["fast-1"]
    assert loaded[0].runs[0].data["val_fingerprint"] == runs[0].data["val_fingerprint"]


def test_fewer_seeds_than_the_minimum_is_provisional(board):
    entry = submit_toy(board, synthetic_seeds("one", seeds=(0,)))
    assert entry.provisional and entry.statistics["p"] is None


def cut_short(runs):
    """The last seed stops halfway through its declared length (e.g. a time budget ran out)."""
    last = runs[-1]
    last.curve = last.curve[:8]
    last.final = last.curve[-1]
    return runs


REJECTIONS = {
    "unknown track": (lambda: synthetic_seeds("a"), {"track": "nope"}, "Unknown track 'nope'"),
    "uncalibrated track": (lambda: synthetic_seeds("a"), {"track": "closed"}, "not calibrated yet"),
    "fingerprint mismatch": (
        lambda: (
            synthetic_seeds("a")[:2]
            + [
                synthetic_record(
                    "x", recipe="a", seed=9, target_loss=3.5, val_fingerprint="other", full_run=True
                )
            ]
        ),
        {},
        "different validation set",
    ),
    "hardware mismatch": (
        lambda: (
            synthetic_seeds("a")[:2]
            + [
                synthetic_record(
                    "x", recipe="a", seed=9, target_loss=3.5, hardware_class="8xH100", full_run=True
                )
            ]
        ),
        {},
        "is for '2-core CPU' only",
    ),
    "target mismatch": (lambda: synthetic_seeds("a", target_loss=3.6), {}, "requires 3.5"),
    "incomplete run": (
        lambda: (
            synthetic_seeds("a")[:2]
            + [synthetic_record("x", recipe="a", seed=9, target_loss=3.5, status="diverged")]
        ),
        {},
        "not complete: status 'diverged'",
    ),
    "mixed configs": (
        lambda: (
            synthetic_seeds("a", seeds=(0, 1))
            + synthetic_seeds("a", seeds=(2,), config={"model": {"n_layer": 4}})
        ),
        {},
        "mix recipes",
    ),
    "mixed recipes": (
        lambda: synthetic_seeds("a", seeds=(0, 1)) + synthetic_seeds("b", seeds=(2,)),
        {},
        "mix recipes",
    ),
    "repeated seed": (
        lambda: (
            synthetic_seeds("a")
            + [synthetic_record("dup", recipe="a", seed=0, target_loss=3.5, full_run=True)]
        ),
        {},
        "repeated seed",
    ),
    "t-test failure": (
        lambda: [
            synthetic_record(
                f"n{s}",
                recipe="a",
                seed=s,
                target_loss=3.5,
                flops=[1e12, 2e12],
                losses=[4.0, v],
                full_run=True,
            )
            for s, v in enumerate((3.49, 3.52, 3.47))
        ],
        {},
        "t-test does not show",
    ),
    "provisional above target": (
        lambda: [
            synthetic_record(
                "n0",
                recipe="a",
                seed=0,
                target_loss=3.5,
                flops=[1e12, 2e12],
                losses=[4.0, 3.6],
                full_run=True,
            )
        ],
        {},
        "not below the target",
    ),
    "stopped at the target": (
        lambda: synthetic_seeds("a", full_run=False, stop_at_target=True),
        {},
        "stopped at the target",
    ),
    "cut short": (lambda: cut_short(synthetic_seeds("a")), {}, "did not run its declared length"),
    "no reference": (lambda: synthetic_seeds("a"), {"reference": None}, "same machine"),
    "reference from another host": (
        lambda: synthetic_seeds("a"),
        {"reference": synthetic_reference(1e6, host={"cpu_model": "Other CPU"})},
        "only comparable on one host",
    ),
    "bad entry id": (lambda: synthetic_seeds("a"), {"name": "../evil"}, "not allowed"),
    "no contributors": (lambda: synthetic_seeds("a"), {"contributors": [" "]}, "contributor"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejected_submissions_change_nothing(board, case):
    make_runs, kwargs, match = REJECTIONS[case]
    submit_toy(board, synthetic_seeds("existing"), name="existing")
    before = snapshot(board)
    with pytest.raises(SubmissionError, match=match):
        submit_toy(board, make_runs(), **kwargs)
    assert snapshot(board) == before


def test_an_entry_id_cannot_be_reused(board):
    submit_toy(board, synthetic_seeds("a"), name="same")
    before = snapshot(board)
    with pytest.raises(SubmissionError, match="already exists"):
        submit_toy(board, synthetic_seeds("b"), name="same")
    assert snapshot(board) == before


def _submit_in_child(root: str, recipe: str, k: float, barrier) -> None:
    barrier.wait()  # both processes submit at the same moment
    submit(
        synthetic_seeds(recipe, k=k),
        "toy",
        f"entry {recipe}",
        ["ada"],
        leaderboard_dir=root,
        plots=True,
        now=datetime(2025, 1, 1, tzinfo=timezone.utc),
        reference=synthetic_reference(1e6),
    )


def test_concurrent_submits_both_land_intact(board):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_submit_in_child, args=(str(board), r, k, barrier))
        for r, k in (("alpha", 1.5), ("beta", 2.0))
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    entries = load_entries(board)["toy"]
    assert sorted(e.recipe for e in entries) == ["alpha", "beta"]
    assert len({e.id for e in entries}) == 2  # same second, still unique ids
    readme = (board / "README.md").read_text()
    assert all(e.id in readme for e in entries)
    assert not list(board.rglob("*.tmp"))
