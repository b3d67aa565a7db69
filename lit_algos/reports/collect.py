"""Finding a study's run records: each spec's record is the one in the runs directory with the
spec's config hash and seed (names are not part of the hash), so a report needs no index of its
own and finds runs the engine trained for another study with the same config."""

from __future__ import annotations

from pathlib import Path

from lit_algos.analysis.runs import USABLE, distinct_runs, index_records  # noqa: F401  (USABLE: public here too)
from lit_algos.studies.expand import Expansion


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
