"""CLI errors that need more than an argv: --version, a closed pipe, disk faults, a corrupt record
among many (the argv-only cases are the corpus in test_malformed_inputs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lit_algos.analysis.synthetic import synthetic_seeds, synthetic_tracks_yaml
from lit_algos.cli import main

from .malformed_fixtures import snapshot


def test_version(capsys):
    from lit_algos import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lit-algos {__version__}"


def test_json_into_a_closed_pipe_is_quiet(tmp_path):
    """`lit-algos leaderboard --json | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    cmd = f"{sys.executable} -m lit_algos leaderboard --json --no-write | head -1"
    done = subprocess.run(cmd, shell=True, cwd=repo, capture_output=True, text=True, env={**os.environ})
    assert done.stdout.strip() == "{" and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.mark.parametrize(
    "errno_name, remedy",
    [("EACCES", "read-only"), ("EROFS", "read-only"), ("ENOSPC", "disk (or your quota) is full")],
)
def test_unwritable_runs_dir_is_a_clear_error(tmp_path, monkeypatch, capsys, errno_name, remedy):
    """Read-only or full disks (simulated: tests run as root, which ignores permissions)."""
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        code = getattr(errno, errno_name)
        raise OSError(code, os.strerror(code), kwargs.get("dir"))

    import os

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    runs = tmp_path / "runs"
    runs.mkdir()
    code = main(["train", "debug", "--runs-dir", str(runs)])
    text = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in text
    assert str(runs) in text and remedy in text and "runs directory" in text
    assert list(runs.iterdir()) == []


def test_read_only_leaderboard_refuses_submit_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import errno
    import os

    from lit_algos.utils import io

    board = tmp_path / "board"
    board.mkdir()
    (board / "tracks.yaml").write_text(synthetic_tracks_yaml())
    paths = []
    for r in synthetic_seeds("ro"):
        paths.append(r.save(tmp_path / "runs" / r.run_id / "record.json"))
    before = snapshot(tmp_path)
    real = io.tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if str(dir).startswith(str(board)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(io.tempfile, "mkstemp", refuse)
    from lit_algos.analysis.synthetic import synthetic_reference
    from lit_algos.errors import StorageError
    from lit_algos.leaderboard.submit import submit

    runs = synthetic_seeds("ro")
    with pytest.raises(StorageError) as err:
        submit(
            runs, "toy", "d", ["me"], leaderboard_dir=board, plots=False, reference=synthetic_reference(1e6)
        )
    text = " ".join(str(err.value).split())
    assert "read-only" in text and str(board) in text
    assert snapshot(tmp_path) == {**before, "board/.lock": snapshot(tmp_path).get("board/.lock")}


def test_a_corrupt_record_in_the_runs_dir_hides_no_other_run(tmp_path, capsys):
    runs = tmp_path / "runs"
    for r in synthetic_seeds("scanned") + synthetic_seeds("other", k=2.0):
        r.save(runs / r.run_id / "record.json")
    (runs / "broken").mkdir()
    (runs / "broken" / "record.json").write_text('{"run_id": 3}')
    code = main(
        ["ceg", "--ref", "scanned", "--new", "other", "--runs-dir", str(runs), "--json", "--resamples", "100"]
    )
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err
    assert "warning: skipped" in captured.err and "broken" in captured.err and "'run_id'" in captured.err
    assert json.loads(captured.out)["ref"]["recipe"] == "scanned"
