"""``submit`` re-evaluates each run's final checkpoint (lit_algos.leaderboard.checkpoints).

Issue 25: every loss of honest records lowered by 0.02, with bpb and the target crossing
re-derived, passed every check at submit; only ``verify`` caught it. The weights the run saved
still give the true final loss, so submit now refuses the forgery before anything is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lit_algos.cli import main
from tests.leaderboard_fixtures import forged, losses_lowered, seconds_times, tracks_yaml, train_debug


@pytest.fixture(scope="module")
def runs(data_cache, tmp_path_factory):
    """Two seeds of the debug recipe, run in full: one for the entry, one as its reference."""
    root = tmp_path_factory.mktemp("ckpt-runs")
    return root, [train_debug(root, seed) for seed in (0, 1)]


@pytest.fixture
def board(runs, tmp_path) -> Path:
    root = tmp_path / "board"
    root.mkdir()
    (root / "tracks.yaml").write_text(tracks_yaml(runs[1][0]))
    return root


def copy_run(runs_root: Path, record, dest: Path, change=None) -> Path:
    """The run folder copied to ``dest`` (checkpoint included), its record optionally forged."""
    folder = dest / record.run_id
    shutil.copytree(runs_root / record.run_id, folder)
    if change is not None:
        forged(record, change).save(folder / "record.json")
    return folder


def submit_args(board: Path, run: Path, ref: Path) -> list[str]:
    return ["submit", str(run), "--track", "toy", "--description", "debug", "--contributors", "ada",
            "--leaderboard-dir", str(board), "--no-plots", "--reference-runs", str(ref)]  # fmt: skip


def test_honest_runs_pass_the_checkpoint_reevaluation(runs, board, capsys):
    root, (record, ref) = runs
    assert main(submit_args(board, root / record.run_id, root / ref.run_id)) == 0
    out = capsys.readouterr().out
    assert "Re-evaluating the final checkpoints of 2 run(s)" in out and "provisional" in out


def test_lowered_losses_are_refused_at_submit(runs, board, tmp_path, capsys):
    root, (record, ref) = runs
    run = copy_run(root, record, tmp_path / "forged", losses_lowered(0.02))
    before = sorted(board.rglob("*"))
    assert main(submit_args(board, run, root / ref.run_id)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"run {record.run_id}: its final checkpoint evaluates to validation loss" in err
    assert "at most 0.001 allowed" in err and "Traceback" not in err
    assert sorted(board.rglob("*")) == before


def test_reference_runs_are_checked_the_same_way(runs, board, tmp_path, capsys):
    root, (record, ref) = runs
    slow = copy_run(root, ref, tmp_path / "refs", seconds_times(3.0))  # consistent: the audit passes
    lowered = copy_run(root, ref, tmp_path / "lowered", losses_lowered(0.02))
    assert main(submit_args(board, root / record.run_id, lowered)) == 2
    assert "reference runs' final losses" in " ".join(capsys.readouterr().err.split())
    assert main(submit_args(board, root / record.run_id, slow)) == 0  # seconds: only verify can judge them
    capsys.readouterr()


def test_a_run_without_its_checkpoint_is_refused(runs, board, tmp_path, capsys):
    root, (record, ref) = runs
    run = copy_run(root, record, tmp_path / "bare")
    (run / "checkpoints" / "last.ckpt").unlink()
    assert main(submit_args(board, run, root / ref.run_id)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"run {record.run_id} has no final checkpoint at {run / 'checkpoints' / 'last.ckpt'}" in err
