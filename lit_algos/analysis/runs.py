"""Finding run records: by path, by run directory, or by recipe name in the runs directory.

Records live at ``<runs dir>/<run_id>/record.json``; the runs directory is ``--runs-dir``,
else ``$LIT_ALGOS_RUNS``, else ``./runs``. A recipe name matches every complete record whose
``recipe`` field equals it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from lit_algos.config import hash_config_dict
from lit_algos.errors import LitAlgosError, LitAlgosWarning
from lit_algos.records import RunRecord, default_runs_dir


def recipe_hash(config: dict) -> str:
    """What "the same recipe" means for CEG groups and leaderboard entries: the config hash,
    which leaves out the seed and the device layout (``lit_algos.config.hash_config_dict``)."""
    return hash_config_dict(config)


def _scan(runs_dir: Path) -> list[tuple[Path, RunRecord]]:
    """Every readable record under ``runs_dir``; a corrupt one is skipped with a warning, so one bad
    file does not hide every other run (naming it directly still fails with its error)."""
    if not runs_dir.is_dir():
        return []
    found = []
    for path in sorted(runs_dir.glob("*/record.json")):
        try:
            found.append((path, RunRecord.load(path)))
        except LitAlgosError as err:
            warnings.warn(f"skipped {path}: {err}", LitAlgosWarning, stacklevel=2)
    return found


def resolve_runs(
    specs: Iterable[str], runs_dir: str | Path | None = None, what: str = "runs", include_failed: bool = False
) -> list[RunRecord]:
    """Run records for each spec: a record.json path, a run directory, a directory of run
    directories, or a recipe name looked up in ``runs_dir``. Duplicates (same run_id) are dropped.
    A recipe name matches complete records, and with ``include_failed`` also diverged / failed ones
    that have a curve (CEG lists them as censored rather than dropping them silently)."""
    root = Path(runs_dir) if runs_dir else default_runs_dir()
    scanned: list[tuple[Path, RunRecord]] | None = None
    out: dict[str, RunRecord] = {}
    for spec in specs:
        path = Path(spec)
        if path.is_file():
            found = [RunRecord.load(path)]
        elif path.is_dir() and (path / "record.json").is_file():
            found = [RunRecord.load(path / "record.json")]
        elif path.is_dir() and any(path.glob("*/record.json")):
            found = [rec for _, rec in _scan(path)]
        else:
            if scanned is None:
                scanned = _scan(root)
            usable = ("diverged", "failed") if include_failed else ()
            found = [
                rec
                for _, rec in scanned
                if rec.recipe == spec and (rec.complete or (rec.status in usable and rec.curve))
            ]
            if not found:
                known = sorted({rec.recipe for _, rec in scanned if rec.complete})
                raise LitAlgosError(
                    f"No run records for {what} {spec!r}: it is not a record.json file or run directory, and no "
                    f"complete record under {root}/ has recipe {spec!r}. "
                    f"Recipes with complete records there: {', '.join(known) or 'none'}. "
                    "Pass --runs-dir (or set $LIT_ALGOS_RUNS) to look elsewhere."
                )
        for rec in found:
            out.setdefault(rec.run_id, rec)
    if not out:
        raise LitAlgosError(f"No run records given for {what}.")
    return list(out.values())


def check_comparable(records: list[RunRecord]) -> str:
    """The shared validation fingerprint; refuses records evaluated on different data."""
    missing = [r.run_id for r in records if not r.val_fingerprint]
    if missing:
        raise LitAlgosError(
            f"Run record(s) {', '.join(missing)} have no data.val_fingerprint, so their validation set is unknown "
            "and they cannot be compared. Only records whose val_fingerprint matches may be compared."
        )
    prints = {r.val_fingerprint for r in records}
    if len(prints) > 1:
        by_print = "; ".join(
            f"{fp}: {', '.join(r.run_id for r in records if r.val_fingerprint == fp)}"
            for fp in sorted(prints)
        )
        raise LitAlgosError(
            f"These runs were evaluated on different validation sets (data.val_fingerprint differs: {by_print}). "
            "CEG compares losses, so all runs must share one validation set: same corpus, tokenizer and val_tokens."
        )
    for r in records:
        if not r.curve:
            raise LitAlgosError(
                f"Run record {r.run_id} has no evaluation curve (status {r.status!r}); nothing to compare."
            )
    return prints.pop()


def single_recipe(records: list[RunRecord], what: str) -> str:
    """The one recipe hash of a group of seeds; refuses groups that mix configurations."""
    hashes: dict[str, list[str]] = {}
    for r in records:
        hashes.setdefault(recipe_hash(r.config), []).append(r.run_id)
    if len(hashes) > 1:
        detail = "; ".join(f"{h}: {', '.join(ids)}" for h, ids in hashes.items())
        raise LitAlgosError(
            f"The {what} runs mix {len(hashes)} different configurations ({detail}). A CEG group must be seeds of "
            "one config; pass record paths to choose, or use --scaling to fit across sizes."
        )
    return next(iter(hashes))


def curve_key(record: RunRecord) -> tuple:
    """What makes two records the same run: their evaluation curves, loss by loss (to 1e-9: two
    seeds never agree that closely on every evaluation; a copied record does, exactly)."""
    return tuple((p.tokens, round(p.val_loss, 9)) for p in record.curve)


def distinct_runs(records: list[RunRecord], what: str = "runs") -> list[RunRecord]:
    """The records with every copy dropped: one run stands for one seed. A record whose curve
    equals an earlier record's (under another run id or seed) is left out with a warning that
    names both; a copy would count as an extra seed and narrow every interval."""
    seen: dict[tuple, RunRecord] = {}
    out = []
    for r in records:
        key = curve_key(r) if r.curve else ("no curve", r.run_id)
        first = seen.setdefault(key, r)
        if first is r:
            out.append(r)
            continue
        warnings.warn(
            f"{what}: run {r.run_id} (seed {r.seed}) has the same evaluation curve as run {first.run_id} "
            f"(seed {first.seed}), loss for loss; it is a copy of one run, not another seed, and is left out",
            LitAlgosWarning,
            stacklevel=2,
        )
    return out


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
