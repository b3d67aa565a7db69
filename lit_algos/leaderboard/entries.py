"""Leaderboard entries: validating a submission, its statistics, and writing it safely.

An entry is one JSON file, ``<leaderboard dir>/entries/<track>/<entry id>.json``, holding the
full run records of all its seeds plus who, what, when and the statistics. Submitting:

1. the track exists and is calibrated (its val_fingerprint and target_loss are set);
2. every run is complete (``reached`` or ``budget_exhausted`` with a curve), was evaluated
   on the track's validation set (data.val_fingerprint) and trained for the track's target
   (record.target_loss), and all runs are distinct seeds of one recipe (one recipe hash);
3. the speedrun rule (``lit_algos.leaderboard.speedrun``): every seed ran its declared length
   in full (``train.stop_at_target: false``), and a same-machine reference (or, on a track with
   ``exact_hardware``, exactly that hardware) makes its seconds comparable;
4. a one-sided t-test that the mean final validation loss is below the target: with at
   least ``min_seeds_for_significance`` seeds it must give p < alpha; with fewer seeds the
   entry is *provisional* and only its mean must be below the target;
5. the whole entry is evidence (``lit_algos.leaderboard.evidence``): the reference runs pass the
   same checks and audit as the entry's own runs and are stored in the entry with digests; no
   record carries another's losses (one run, one seed, on the whole board); the statistics,
   summary, identity and reference are made from the stored records, and re-derived on every
   load: an entry whose stored figures differ, or whose digests fail, is flagged, never ranked.

Entries made before the rule (``rule: stop-at-target``) still load and are shown, unranked.

Any failure raises ``SubmissionError`` before anything is written. The entry file is written
atomically and the board regenerated while holding an exclusive ``fcntl.flock`` on
``<leaderboard dir>/.lock``, so concurrent submits both land and the board lists both.
"""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import math
import re
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lit_algos.analysis.runs import recipe_hash
from lit_algos.errors import LitAlgosError, LitAlgosWarning, SubmissionError
from lit_algos.leaderboard import speedrun
from lit_algos.leaderboard.audit import audit_submission, record_digest
from lit_algos.leaderboard.evidence import (  # noqa: F401  (cost_to_target, summarize_costs: old names)
    Evidence,
    cost_to_target,
    derive_identity,
    derive_statistics,
    derive_summary,
    duplicate_problems,
    entry_digest,
    entry_evidence,
    entry_problems,
    summarize_costs,
)
from lit_algos.leaderboard.speedrun import LEGACY_RULE
from lit_algos.leaderboard.tracks import Track, default_leaderboard_dir, load_tracks
from lit_algos.records import RunRecord
from lit_algos.schema import check_entry
from lit_algos.utils.io import ensure_dir, finite_json, read_json, storage_error

ENTRY_VERSION = 2  # 2: reference runs stored with digests, entry_digest (issue 25)
ENTRY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Entry:
    id: str
    track: str
    description: str
    contributors: list[str]
    date: str  # ISO 8601, UTC
    commit: str | None
    dirty: bool | None
    recipe: str
    config_hash: str  # the recipe hash: the config without the seed (lit_algos.analysis.runs.recipe_hash)
    hardware: str
    statistics: dict
    summary: dict  # unit -> {value, low, high, n, values}: cost to target over seeds
    runs: list[RunRecord] = field(default_factory=list)
    entry_version: int = ENTRY_VERSION
    rule: str = "stop-at-target"  # absent in entries made before the declared-length rule
    reference: dict | None = None  # same-machine reference (lit_algos.leaderboard.speedrun)
    run_digests: list[str] | None = None  # sha256 of each run as stored (leaderboard.audit.record_digest)
    reference_runs: list[RunRecord] | None = None  # the runs the reference is made from (issue 25)
    reference_digests: list[str] | None = None
    entry_digest: str | None = None  # sha256 of the whole entry file (leaderboard.evidence.entry_digest)

    @property
    def provisional(self) -> bool:
        return bool(self.statistics.get("provisional"))

    def to_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k not in RECORD_LISTS and not k.startswith("_")}
        for key in RECORD_LISTS:
            records = getattr(self, key)
            data[key] = None if records is None else [r.to_dict() for r in records]
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "<entry>") -> Entry:

        # The entry exactly as stored, for its digests: a deep copy taken first, because checking
        # and building the typed records may normalise their dicts in place.
        raw = copy.deepcopy(data) if isinstance(data, dict) else None
        check_entry(data, source)
        known = {f for f in cls.__dataclass_fields__ if f not in RECORD_LISTS}
        lists = {
            key: [
                RunRecord.from_dict(r, source=f"{source} {key}[{i}]")
                for i, r in enumerate(data.get(key) or [])
            ]
            for key in RECORD_LISTS
        }
        if data.get("reference_runs") is None:
            lists["reference_runs"] = None
        entry = cls(**{k: v for k, v in data.items() if k in known}, **lists)
        entry._raw = raw
        return entry

    @classmethod
    def load(cls, path: Path) -> Entry:
        try:
            return cls.from_dict(read_json(path), source=str(path))
        except UnicodeDecodeError:
            raise LitAlgosError(f"Leaderboard entry {path} is not UTF-8 text.") from None
        except ValueError as err:
            raise LitAlgosError(f"Leaderboard entry {path} is not valid JSON: {err}.") from None
        except OSError as err:
            raise storage_error(path, err, "read") from None


RECORD_LISTS = ("runs", "reference_runs")


# ---- validation ----------------------------------------------------------------------------
def validate_runs(runs: list[RunRecord], track: Track, rule: str | None = None) -> dict:
    """Checks a submission against its track; returns its statistics or raises SubmissionError.
    ``rule`` "declared-length" (what ``submit`` uses) also checks the speedrun rule."""
    if not track.calibrated:
        raise SubmissionError(
            f"Track {track.name!r} is not calibrated yet (val_fingerprint={track.val_fingerprint!r}, "
            f"target_loss={track.target_loss!r} in tracks.yaml), so it accepts no submissions. "
            "Its maintainers must first set the validation fingerprint and the target."
        )
    if not runs:
        raise SubmissionError("A submission needs at least one run record.")
    check_seeds_of_one_recipe(runs, track, "Run")
    if rule == speedrun.RULE:
        speedrun.check_declared_runs(runs)
        if track.exact_hardware:
            speedrun.check_exact_hardware(runs, track.exact_hardware)
    stats = derive_statistics(runs, track, rule or LEGACY_RULE)
    significance(stats, track)
    return stats


def check_seeds_of_one_recipe(runs: list[RunRecord], track: Track, what: str, target: bool = True) -> None:
    """Complete runs on the track's validation set (and target), distinct seeds of one recipe."""
    for r in runs:
        if not r.complete:
            raise SubmissionError(
                f"{what} {r.run_id} is not complete: status {r.status!r} with {len(r.curve)} evaluation(s). "
                "Only runs that reached the target or spent their budget (status 'reached' or 'budget_exhausted', "
                "with an evaluation curve) can be submitted."
            )
        if r.val_fingerprint != track.val_fingerprint:
            raise SubmissionError(
                f"{what} {r.run_id} was evaluated on a different validation set: data.val_fingerprint "
                f"{r.val_fingerprint!r}, track {track.name!r} requires {track.val_fingerprint!r} "
                f"(corpus {track.corpus}, tokenizer {track.tokenizer}, {track.val_tokens} validation tokens)."
            )
        if target and (
            r.target_loss is None
            or not math.isclose(r.target_loss, track.target_loss, rel_tol=0, abs_tol=1e-9)
        ):
            raise SubmissionError(
                f"{what} {r.run_id} trained for target_loss {r.target_loss!r}; track {track.name!r} requires "
                f"{track.target_loss}. Re-run with train.target_loss={track.target_loss}."
            )
        hw = r.hardware.get("class")
        if track.enforce_hardware and hw != track.hardware_class:
            raise SubmissionError(
                f"{what} {r.run_id} ran on {hw!r} ({r.hardware.get('device_name', 'unknown device')}); track "
                f"{track.name!r} is for {track.hardware_class!r} only. Run it on that hardware, or submit to another track."
            )
    recipes = sorted({r.recipe for r in runs})
    hashes = sorted({recipe_hash(r.config) for r in runs})
    if len(recipes) > 1 or len(hashes) > 1:
        raise SubmissionError(
            f"{what}s of one entry are seeds of one recipe, but these mix recipes {recipes} / config hashes "
            f"{hashes}. Submit each configuration as its own entry."
        )
    for key, values in (("run_id", [r.run_id for r in runs]), ("seed", [r.seed for r in runs])):
        dupes = sorted({str(v) for v in values if values.count(v) > 1})
        if dupes:
            raise SubmissionError(
                f"Each {what.lower()} must be a distinct seed; repeated {key}: {', '.join(dupes)}."
            )


def significance(stats: dict, track: Track) -> None:
    """Raises unless the one-sided t-test (``evidence.derive_statistics``) passes."""
    n, mean, std, t, p = (stats[k] for k in ("n", "mean_final_loss", "std_final_loss", "t", "p"))
    if stats["provisional"]:
        if not mean < track.target_loss:
            raise SubmissionError(
                f"The mean final validation loss {mean:.4f} over {n} seed(s) is not below the target "
                f"{track.target_loss}; the entry is rejected."
            )
    elif p is None or not p < track.alpha:
        raise SubmissionError(
            f"The one-sided t-test does not show the mean final validation loss below the target: mean {mean:.4f} "
            f"(std {std:.4f}, n={n}) against target {track.target_loss} gives t={t:.3f}, p={p:.4g}, which is not "
            f"below alpha={track.alpha}. Add seeds or lower the loss."
        )


# ---- writing -------------------------------------------------------------------------------
@contextmanager
def board_lock(leaderboard_dir: Path) -> Iterator[None]:
    """Exclusive lock over entry creation and board regeneration (one per leaderboard dir)."""
    ensure_dir(leaderboard_dir, "use the leaderboard directory")
    try:
        handle = open(leaderboard_dir / ".lock", "a+")
    except OSError as err:
        raise storage_error(leaderboard_dir / ".lock", err, "lock the leaderboard at") from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "entry"


def entry_path(leaderboard_dir: Path, track: str, entry_id: str) -> Path:
    return leaderboard_dir / "entries" / track / f"{entry_id}.json"


@dataclass
class Flagged:
    """An entry left off the ranking: ``entry`` None when the file does not even parse."""

    path: Path
    entry: Entry | None
    problems: list[str]


def load_entries(
    leaderboard_dir: str | Path | None = None,
    track: str | None = None,
    flagged: list[Flagged] | None = None,
) -> dict[str, list[Entry]]:
    """Trusted entries per track (every track folder under entries/, or only ``track``), oldest
    first. Entries that fail their checks are left out with a BoardWarning, and appended to
    ``flagged`` when given (the board lists them, unranked, with the reason)."""
    root = Path(leaderboard_dir) if leaderboard_dir else default_leaderboard_dir()
    base = root / "entries"
    folders = [base / track] if track else sorted(p for p in base.glob("*") if p.is_dir())
    tracks = load_tracks(root) if folders and (root / "tracks.yaml").exists() else {}
    out: dict[str, list[Entry]] = {}
    for folder in folders:
        entries = []
        for path in sorted(folder.glob("*.json")):
            entry, problems = _load_checked(path, tracks.get(folder.name))
            if not problems:
                entries.append(entry)
                continue
            warnings.warn(f"skipped {path}: {'; '.join(problems[:3])}", BoardWarning, stacklevel=2)
            if flagged is not None:
                flagged.append(Flagged(path, entry, problems))
        out[folder.name] = sorted(entries, key=lambda e: (e.date, e.id))
    return out


def verification_path(root: Path, track: str, entry_id: str) -> Path:
    """Where ``lit-algos verify`` keeps its last verdict on an entry (shown on the board)."""
    return root / "verified" / track / f"{entry_id}.json"


def load_verification(root: Path, track: str, entry_id: str) -> dict | None:
    path = verification_path(root, track, entry_id)
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class BoardWarning(LitAlgosWarning):
    """An entry left off the board (corrupt, or failing its integrity checks)."""


def _load_checked(path: Path, track: Track | None) -> tuple[Entry | None, list[str]]:
    """The entry at ``path`` and why it cannot be trusted (empty when it can): one bad file must
    not take the board, or any other submission, down with it."""
    try:
        entry = Entry.load(path)
    except LitAlgosError as err:
        return None, [str(err)]
    if entry.track != path.parent.name:
        return entry, [f"it names track {entry.track!r} but sits in the folder of track {path.parent.name!r}"]
    problems = entry_problems(entry, track)
    if problems:
        return entry, ["it fails its integrity checks: " + "; ".join(problems)]
    entry._verification = load_verification(path.parents[2], path.parent.name, entry.id)
    entry._verified = bool(entry._verification and entry._verification.get("verified"))
    return entry, []


def get_submission_track(track: str, leaderboard_dir: str | Path | None = None) -> Track:
    root = Path(leaderboard_dir) if leaderboard_dir else default_leaderboard_dir()
    tracks = load_tracks(root)
    if track not in tracks:
        raise SubmissionError(
            f"Unknown track {track!r}. Tracks in {root / 'tracks.yaml'}: {', '.join(tracks)}."
        )
    return tracks[track]


def build_entry(
    runs: list[RunRecord],
    track: Track,
    description: str,
    contributors: list[str],
    name: str | None = None,
    now: datetime | None = None,
    reference: dict | None = None,
    reference_runs: list[RunRecord] | None = None,
    require_reference: bool = True,
) -> Entry:
    """Validate a submission under the declared-length rule and build its entry without writing
    anything (SubmissionError if rejected). A CPU track needs a same-machine ``reference`` (the
    benchmark ``speedrun.benchmark_reference`` measured, its run record included) or
    ``reference_runs`` (baseline seeds run beside); either is checked and audited like the runs."""
    if not description or not description.strip():
        raise SubmissionError("A submission needs a --description of what the entry changes.")
    contributors = [c.strip() for c in contributors if c and c.strip()]
    if not contributors:
        raise SubmissionError("A submission needs at least one contributor (--contributors).")
    if name is not None and not ENTRY_ID.match(name):
        raise SubmissionError(
            f"Entry id {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    stats = validate_runs(runs, track, rule=speedrun.RULE)
    ref_runs: list[RunRecord] = []
    if reference_runs:
        check_seeds_of_one_recipe(reference_runs, track, "Reference run")
        speedrun.reference_from_runs(reference_runs, runs, track.baseline_recipe)
        kind, ref_runs, declared = "runs", sorted(reference_runs, key=lambda r: r.seed), None
    elif reference is not None:
        speedrun.reference_from_benchmark(reference, reference.get("declared_tokens"), runs)
        check_seeds_of_one_recipe([reference["record"]], track, "Reference run", target=False)
        kind, ref_runs, declared = "benchmark", [reference["record"]], int(reference["declared_tokens"])
    elif require_reference and not track.exact_hardware:
        raise SubmissionError(
            f"Track {track.name!r} ranks time by the speedup over its baseline measured on the same machine, and "
            "this submission has no such reference. `lit-algos submit` measures one (a short benchmark of the "
            f"baseline recipe {track.baseline_recipe!r}) unless --no-reference is given; or pass --reference-runs "
            "with baseline seeds run on this host."
        )
    audit_submission(runs)  # last: it rebuilds each config
    audit_submission(ref_runs, "reference run records")
    runs = sorted((_published(r) for r in runs), key=lambda r: r.seed)
    ref_runs = [_published(r) for r in ref_runs]
    problems = duplicate_problems(
        [Evidence(r, "run", "this submission") for r in runs]
        + [Evidence(r, "reference", "this submission") for r in ref_runs]
    )
    if problems:
        raise SubmissionError(f"{'; '.join(problems)}. Submit each seed's own run.")
    now = now or datetime.now(timezone.utc)
    entry = Entry(
        id=name or f"{now:%Y%m%d-%H%M%S}-{_slug(runs[0].recipe)}-{secrets.token_hex(3)}",
        track=track.name,
        description=" ".join(description.split()),
        contributors=contributors,
        date=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **derive_identity(runs),
        statistics=stats,
        summary=derive_summary(runs, track.target_loss, speedrun.RULE),
        runs=runs,
        rule=speedrun.RULE,
        reference=speedrun.derive_reference(kind, ref_runs, declared) if ref_runs else None,
        run_digests=[record_digest(r.to_dict()) for r in runs],
        reference_runs=ref_runs or None,
        reference_digests=[record_digest(r.to_dict()) for r in ref_runs] or None,
    )
    entry.entry_digest = entry_digest(finite_json(entry.to_dict()))
    return entry


# Record fields that name a place on the submitter's machine: they mean nothing on another host
# and an entry in the repository must not carry them (the digests cover the published record).
_LOCAL_DATA_FIELDS = ("root",)


def _published(run: RunRecord) -> RunRecord:
    data = {k: v for k, v in run.data.items() if k not in _LOCAL_DATA_FIELDS}
    return dataclasses.replace(run, data=data)


def refuse_resubmission(entry: Entry, root: Path) -> None:
    """A run may be in one entry only (by run id or by content), and no record may carry the
    losses of another run on the board (any track) under another seed or id. Held under the lock."""
    flagged: list[Flagged] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoardWarning)
        trusted = [e for track_entries in load_entries(root, flagged=flagged).values() for e in track_entries]
    existing = trusted + [f.entry for f in flagged if f.entry is not None]
    digests = set(entry.run_digests or [])
    for other in existing:
        shared = sorted({r.run_id for r in other.runs} & {r.run_id for r in entry.runs})
        if shared or digests & set(other.run_digests or []):
            raise SubmissionError(
                f"Run(s) {', '.join(shared) or '(same records)'} are already in entry {other.id!r} on track "
                f"{other.track!r}; a run may be in one entry only. Train new seeds for a new entry."
            )
    problems = duplicate_problems(
        entry_evidence(entry), [ev for other in existing for ev in entry_evidence(other)]
    )
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise SubmissionError(f"{shown}. Train new seeds for a new entry.")
