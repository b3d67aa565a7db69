"""Finding a study's run records: each spec's record is the one in the runs directory with the
spec's config hash and seed (names are not part of the hash), so a report needs no index of its
own and finds runs the engine trained for another study with the same config."""

from __future__ import annotations

import warnings
from pathlib import Path

from lit_algos.analysis.runs import distinct_runs
from lit_algos.errors import LitAlgosError, LitAlgosWarning
from lit_algos.records import RunRecord
from lit_algos.studies.expand import Expansion

# Records the analyses use: finished, or stopped with a curve (listed as censored by CEG).
USABLE = ("reached", "budget_exhausted", "diverged", "failed")


def index_records(runs_dir: Path) -> dict[tuple[str, int], RunRecord]:
    """(config hash, seed) -> the newest usable record under ``runs_dir``."""
    out: dict[tuple[str, int], RunRecord] = {}
    root = Path(runs_dir)
    if not root.is_dir():
        return out
    for path in sorted(root.glob("*/record.json")):
        try:
            rec = RunRecord.load(path)
        except LitAlgosError as err:
            warnings.warn(f"skipped {path}: {err}", LitAlgosWarning, stacklevel=2)
            continue
        if rec.status not in USABLE or not rec.curve:
            continue
        key = (rec.config_hash, rec.seed)
        if key not in out or (rec.finished_at or "") > (out[key].finished_at or ""):
            out[key] = rec
    return out


def group_records(expansion: Expansion, runs_dir: Path) -> tuple[dict, list[str]]:
    """(experiment, arm, size) -> records of its seeds, and the specs that have no record yet."""
    index = index_records(runs_dir)
    groups, missing = {}, []
    for key, specs in expansion.groups().items():
        found = []
        for spec in specs:
            rec = index.get((expansion.config_hash(spec), spec.seed))
            if rec is None:
                missing.append(f"{spec.name} seed {spec.seed}")
            elif rec.run_id not in {r.run_id for r in found}:
                found.append(rec)
        groups[key] = distinct_runs(found, f"{key[1]} at {key[2]}")
    return groups, sorted(set(missing))
