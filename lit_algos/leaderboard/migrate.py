"""Bringing entries made before issue 25 (``entry_version`` 1) to the evidence format (2).

Nothing is edited by hand and no number is carried over unchecked: each entry's run digests must
hold, and its statistics, cost summary and identity must re-derive from its stored runs (the
re-derived figures are what is written). A ``runs`` reference gets its run records from the
board (any entry holding a run of that id, digest-checked) or from run folders given; the
reference re-derived from them must equal the stored one. A reference whose runs are found
nowhere keeps its figures, marked ``records: "not kept"`` (shown on the board), and like every
migrated entry is then covered by the whole-entry digest. An entry that fails any check is not
migrated and the reason is reported.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from lit_algos.errors import LitAlgosError
from lit_algos.leaderboard import speedrun
from lit_algos.leaderboard.audit import record_digest
from lit_algos.leaderboard.entries import ENTRY_VERSION, Entry, board_lock
from lit_algos.leaderboard.evidence import (
    REFERENCE_NOT_KEPT,
    derive_identity,
    derive_statistics,
    derive_summary,
    differences,
    entry_digest,
)
from lit_algos.leaderboard.tracks import load_tracks
from lit_algos.records import RunRecord
from lit_algos.utils.io import atomic_write_json, finite_json, read_json


def _stored_runs(paths: list[Path], runs_dirs: list[Path]) -> dict[str, dict]:
    """run id -> the record as stored: every run of every entry (whose digest holds), then
    every record.json under the run folders given."""
    pool: dict[str, dict] = {}
    for path in paths:
        data = read_json(path)
        for run, digest in zip(data.get("runs") or [], data.get("run_digests") or []):
            if record_digest(run) == digest:
                pool.setdefault(run["run_id"], run)
    for folder in runs_dirs:
        for record in sorted(Path(folder).glob("*/record.json")):
            run = read_json(record)
            if isinstance(run, dict) and "run_id" in run:
                pool.setdefault(run["run_id"], {k: v for k, v in run.items() if k != "root"})
    return pool


def migrate_entry(data: dict, track, pool: dict[str, dict]) -> tuple[dict, str]:
    """(the entry in format 2, what was done); LitAlgosError when it cannot be migrated."""

    entry = Entry.from_dict(copy.deepcopy(data), source=data.get("id", "<entry>"))
    digests = data.get("run_digests") or []
    if len(digests) != len(data["runs"]) or any(record_digest(r) != d for r, d in zip(data["runs"], digests)):
        raise LitAlgosError(f"entry {entry.id}: its run digests do not hold; it is not migrated")
    rule = entry.rule
    derived = {
        **derive_identity(entry.runs),
        "statistics": derive_statistics(entry.runs, track, rule),
        "summary": derive_summary(entry.runs, track.target_loss, rule),
    }
    problems = differences({k: getattr(entry, k) for k in derived}, derived, "entry")
    if problems:
        raise LitAlgosError(
            f"entry {entry.id}: its figures do not re-derive from its runs: {'; '.join(problems)}"
        )
    out = {**data, **finite_json(derived), "entry_version": ENTRY_VERSION}
    note = "figures re-derived"
    ref = data.get("reference")
    if ref:
        ids = ref.get("runs") or []
        found = [pool[i] for i in ids if i in pool]
        if ref.get("kind") == "runs" and ids and len(found) == len(ids):
            records = [RunRecord.from_dict(copy.deepcopy(r)) for r in found]
            problems = differences(ref, speedrun.derive_reference("runs", records), "reference")
            if problems:
                raise LitAlgosError(
                    f"entry {entry.id}: its reference does not re-derive: {'; '.join(problems)}"
                )
            out["reference_runs"] = copy.deepcopy(found)
            out["reference_digests"] = [record_digest(r) for r in found]
            note += f"; reference re-derived from {len(found)} stored runs"
        else:
            out["reference"] = {**ref, "records": REFERENCE_NOT_KEPT}
            note += "; reference runs not found: marked 'not kept'"
    out = json.loads(json.dumps(finite_json(out), default=str))  # exactly what the file will hold
    out["entry_digest"] = entry_digest(out)
    return out, note


def migrate_board(root: Path, runs_dirs: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    """Migrate every format-1 entry under ``root``; returns one line per entry."""

    tracks = load_tracks(root)
    paths = sorted((root / "entries").glob("*/*.json"))
    lines = []
    with board_lock(root):
        pool = _stored_runs(paths, list(runs_dirs))
        for path in paths:
            data = read_json(path)
            if not isinstance(data, dict) or data.get("entry_version", 1) >= 2:
                continue
            track = tracks.get(path.parent.name)
            try:
                if track is None:
                    raise LitAlgosError(f"its track {path.parent.name!r} is not in tracks.yaml")
                migrated, note = migrate_entry(data, track, pool)
            except LitAlgosError as err:
                lines.append(f"{path}: not migrated: {err}")
                continue
            atomic_write_json(path, migrated)
            lines.append(f"{path}: migrated ({note})")
    return lines
