"""The speedrun leaderboard: tracks, validated submissions, and the rendered board."""

from lit_algos.leaderboard.entries import Entry, build_entry, load_entries, validate_runs
from lit_algos.leaderboard.render import (
    BoardRow,
    baseline_entry,
    board_rows,
    preview_row,
    render_markdown,
    write_board,
)
from lit_algos.leaderboard.submit import submit
from lit_algos.leaderboard.tracks import Track, default_leaderboard_dir, get_track, load_tracks

__all__ = [
    "BoardRow",
    "build_entry",
    "preview_row",
    "Entry",
    "Track",
    "baseline_entry",
    "board_rows",
    "default_leaderboard_dir",
    "get_track",
    "load_entries",
    "load_tracks",
    "render_markdown",
    "submit",
    "validate_runs",
    "write_board",
]
