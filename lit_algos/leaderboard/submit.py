"""Submitting to the board: validate the runs into an entry, write it, regenerate the board.

Above ``entries`` (what an entry is, how it loads and what the board holds) and ``render`` (the
board's Markdown and plots): a submission is written under the board's lock and taken back if
the board cannot be regenerated with it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lit_algos.errors import SubmissionError
from lit_algos.leaderboard import render  # render.regenerate_board at call time: tests break it on purpose
from lit_algos.leaderboard.entries import (
    Entry,
    board_lock,
    build_entry,
    entry_path,
    get_submission_track,
    refuse_resubmission,
)
from lit_algos.leaderboard.tracks import default_leaderboard_dir
from lit_algos.records import RunRecord
from lit_algos.utils.io import atomic_write_json


def submit(
    runs: list[RunRecord],
    track: str,
    description: str,
    contributors: list[str],
    name: str | None = None,
    leaderboard_dir: str | Path | None = None,
    plots: bool = True,
    now: datetime | None = None,
    reference: dict | None = None,
    reference_runs: list[RunRecord] | None = None,
) -> Entry:
    """Validate, write the entry and regenerate the board; raises SubmissionError and writes
    nothing when the submission is rejected."""
    root = Path(leaderboard_dir) if leaderboard_dir else default_leaderboard_dir()
    entry = build_entry(
        runs,
        get_submission_track(track, root),
        description,
        contributors,
        name,
        now,
        reference,
        reference_runs,
    )
    with board_lock(root):
        path = entry_path(root, track, entry.id)
        if path.exists():
            raise SubmissionError(
                f"Entry id {entry.id!r} already exists in track {track!r}; choose another --name."
            )
        refuse_resubmission(entry, root)
        atomic_write_json(path, entry.to_dict())
        try:
            render.regenerate_board(root, plots=plots)
        except BaseException:
            path.unlink(missing_ok=True)  # a rejected submission leaves nothing behind
            raise
    return entry
