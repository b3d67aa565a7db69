"""Layer 3 of the board's tamper evidence: re-run a seed and judge its losses and its time.

Layer 1 (``leaderboard.audit``) re-derives each record from itself at submit, where each
record's final loss is also re-evaluated from its saved weights (``leaderboard.checkpoints``);
layer 2 (``leaderboard.evidence``) re-derives every figure of a stored entry on every load.
Neither can tell a record forged consistently (every loss lowered and re-derived, every seconds
figure halved, a seed relabelled) from an honest one; re-running can:

``verify_entry`` re-trains one run of an entry, one of its seeds or of its reference runs, chosen
at random unless one is named (a forger cannot know which will be re-run), from its recorded
config (runs are bitwise reproducible on the same software and hardware, so the seed, the data
order and the initialization are re-derived with the losses), and judges:

- losses: every evaluation within ``tolerance`` (0: bitwise) of the record;
- time: on the host the record names (``lit_algos.hardware.same_host``), the re-run's training
  seconds within ``time_tolerance`` of the recorded ones, else "time not reproduced"; on another
  host the time is not judged, and the result says so.

``reevaluate_checkpoint`` evaluates the run's saved checkpoint instead (losses only). The result
is stored in ``<leaderboard dir>/verified/<track>/<entry>.json`` and shown on the board.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lit_algos.config import Config, hash_config_dict
from lit_algos.config.recipes import apply_overrides
from lit_algos.errors import ConfigError, LitAlgosError
from lit_algos.hardware import host_string, same_host
from lit_algos.leaderboard.checkpoints import eval_device, load_checkpoint, validation_loss
from lit_algos.leaderboard.entries import (  # noqa: F401  (load_verification, verification_path: public here too)
    Entry,
    board_lock,
    entry_path,
    load_verification,
    verification_path,
)
from lit_algos.leaderboard.evidence import entry_problems
from lit_algos.leaderboard.tracks import load_tracks
from lit_algos.records import RunRecord
from lit_algos.training.run import train
from lit_algos.utils.fingerprint import software_fingerprint
from lit_algos.utils.io import atomic_write_json

# Re-run seconds / recorded seconds accepted on the same host: within [1/1.25, 1.25]. Seeds of one
# recipe on one idle host spread by up to ~10% (the cpu-kjv entries); a consistent forgery of
# every seconds figure by x0.5 (or x3 on a reference) lands at 2 (or 1/3).
TIME_TOLERANCE = 0.25


@dataclass
class Verification:
    entry: str
    track: str
    run_id: str
    seed: int
    verified: bool  # losses reproduced, and time reproduced or not judgeable here
    max_loss_difference: float | None
    time_ratio: float | None  # re-run train_seconds / recorded, at the last common evaluation
    points: int
    date: str
    hardware: str
    software: dict = field(default_factory=dict)
    note: str = ""
    role: str = "run"  # "run": one of the entry's seeds; "reference": one of its reference runs
    losses_verified: bool = False
    time_verified: bool | None = None  # None: not judged (another host, or a checkpoint re-evaluation)
    time_tolerance: float | None = None
    chosen: str = "given"  # "given" (--seed / --run) or "random"

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def verdict(self) -> str:
        if not self.losses_verified:
            return "NOT REPRODUCED"
        if self.time_verified is False:
            return "TIME NOT REPRODUCED"
        return "VERIFIED" if self.time_verified else "LOSSES VERIFIED (time not judged)"


def compare_curves(
    recorded: RunRecord, rerun: RunRecord, tolerance: float
) -> tuple[bool, float | None, int, str]:
    """(equal within tolerance, max |loss difference|, points compared, note)."""
    a = {p.step: p for p in recorded.curve}
    b = {p.step: p for p in rerun.curve}
    common = sorted(set(a) & set(b))
    if not common:
        return False, None, 0, "the re-run shares no evaluation step with the record"
    diffs = [abs(a[s].val_loss - b[s].val_loss) for s in common]
    worst = max(diffs)
    note = ""
    if len(common) != len(a):
        note = f"the re-run evaluated {len(common)} of the record's {len(a)} steps"
    ok = worst <= tolerance and len(common) == len(a)
    return ok, worst, len(common), note


def judge_time(
    recorded: RunRecord, rerun: RunRecord, tolerance: float
) -> tuple[bool | None, float | None, str]:
    """(time reproduced, re-run / recorded seconds at the last common evaluation, note). None when
    it cannot be judged: the re-run ran on another host than the record's, or shares no step."""
    steps = {p.step for p in rerun.curve}
    last = max((p.step for p in recorded.curve if p.step in steps and p.step > 0), default=None)
    if last is None:
        return (
            None,
            None,
            "time not judged: the re-run shares no evaluation after training steps with the record",
        )
    a = next(p for p in recorded.curve if p.step == last).train_seconds
    b = next(p for p in rerun.curve if p.step == last).train_seconds
    ratio = b / a if a > 0 else math.inf
    here, there = (rerun.hardware or {}).get("host"), (recorded.hardware or {}).get("host")
    if not same_host(here, there):
        return (
            None,
            ratio,
            (
                f"time not judged: the record ran on {host_string(there)} and this re-run on {host_string(here)}; "
                "seconds are only comparable on the submitter's host"
            ),
        )
    low, high = 1 / (1 + tolerance), 1 + tolerance
    if low <= ratio <= high:
        return True, ratio, ""
    return (
        False,
        ratio,
        (
            f"time not reproduced: the re-run took {b:.4g} s where the record says {a:.4g} s at step {last} "
            f"(ratio {ratio:.3g}, allowed [{low:.3g}, {high:.3g}] on the same host; load average here "
            f"{_load():.2f}: other work on the host slows a re-run, so judge time on an idle one)"
        ),
    )


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


def find_entry(entry_id: str, root: Path, track: str | None = None):
    path = Path(entry_id)
    if path.suffix == ".json" and path.is_file():
        return Entry.load(path)
    base = root / "entries"
    tracks = [track] if track else sorted(p.name for p in base.glob("*") if p.is_dir())
    for name in tracks:
        candidate = entry_path(root, name, entry_id)
        if candidate.is_file():
            return Entry.load(candidate)
    raise LitAlgosError(
        f"No leaderboard entry {entry_id!r} under {base} (tracks: {', '.join(tracks) or 'none'}). "
        "Pass an entry id as shown on the board, or the path of its .json file."
    )


def _save_verification(result: Verification, leaderboard_dir: Path) -> None:
    with board_lock(leaderboard_dir):
        atomic_write_json(verification_path(leaderboard_dir, result.track, result.entry), result.to_dict())


def choose_run(
    entry, root: Path, seed: int | None = None, reference: bool = False, rng: random.Random | None = None
) -> tuple[RunRecord, str]:
    """(the run to re-run, its role): the one with ``seed`` (among the reference runs with
    ``reference``), else one of the entry's runs and reference runs drawn at random."""
    problems = entry_problems(entry, load_tracks(root).get(entry.track))
    if problems:
        raise LitAlgosError(
            f"Entry {entry.id} fails its integrity checks, so it is not re-run: {'; '.join(problems)}."
        )
    refs = [r for r in entry.reference_runs or [] if r.run_id not in {x.run_id for x in entry.runs}]
    if reference and not entry.reference_runs:
        raise LitAlgosError(f"Entry {entry.id} stores no reference runs to re-run (--reference).")
    pool = [(r, "reference") for r in entry.reference_runs] if reference else [(r, "run") for r in entry.runs]
    if seed is not None:
        chosen = [c for c in pool if c[0].seed == seed]
        if not chosen:
            seeds = sorted(r.seed for r, _ in pool)
            which = "reference run" if reference else "run"
            raise LitAlgosError(f"Entry {entry.id} has no {which} with seed {seed}; its seeds are {seeds}.")
        return chosen[0]
    if not reference:
        pool += [(r, "reference") for r in refs]  # they rank its time: as much evidence as its runs
    return (rng or random.SystemRandom()).choice(pool)


def reevaluate_checkpoint(
    entry_id: str,
    checkpoint: Path,
    *,
    seed: int | None = None,
    leaderboard_dir: Path,
    track: str | None = None,
    tolerance: float = 0.0,
    reference: bool = False,
) -> Verification:
    """Evaluate a run's saved checkpoint on the validation set and compare with the recorded loss
    at the checkpoint's step (a checkpoint is written after every evaluation)."""

    entry = find_entry(entry_id, leaderboard_dir, track)
    config, step, weights = load_checkpoint(checkpoint)
    if seed is None:  # the checkpoint names its run: its seed is in its config
        seed = int(config.get("train", {}).get("seed", 0))
    recorded, role = choose_run(entry, leaderboard_dir, seed, reference)
    if hash_config_dict(config) != hash_config_dict(recorded.config):
        raise LitAlgosError(
            f"Checkpoint {checkpoint} was trained with another config (hash {hash_config_dict(config)}) than run "
            f"{recorded.run_id} of entry {entry.id} ({hash_config_dict(recorded.config)})."
        )
    points = {p.step: p for p in recorded.curve}
    if step not in points:
        raise LitAlgosError(
            f"Checkpoint {checkpoint} is at step {step}, where run {recorded.run_id} has no evaluation "
            f"(evaluated steps: {sorted(points)[:10]}...)."
        )
    ran = ((recorded.hardware or {}).get("precision") or {}).get("ran") or "32-true"
    loss = validation_loss(config, weights, ran, eval_device(recorded), recorded.val_fingerprint)
    diff = abs(loss - points[step].val_loss)
    result = Verification(
        entry=entry.id,
        track=entry.track,
        run_id=recorded.run_id,
        seed=recorded.seed,
        verified=diff <= tolerance,
        max_loss_difference=diff,
        time_ratio=None,
        points=1,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        hardware="checkpoint re-evaluation",
        software=software_fingerprint(),
        note=f"checkpoint at step {step} re-evaluated: loss {loss:.6f}, recorded {points[step].val_loss:.6f}; "
        "time not judged",
        role=role,
        losses_verified=diff <= tolerance,
    )
    _save_verification(result, leaderboard_dir)
    return result


def verify_entry(
    entry_id: str,
    *,
    seed: int | None = None,
    leaderboard_dir: Path,
    runs_dir: Path,
    track: str | None = None,
    tolerance: float = 0.0,
    time_tolerance: float = TIME_TOLERANCE,
    reference: bool = False,
    progress: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    rng: random.Random | None = None,
) -> Verification:
    """Re-run one run of an entry from its recorded config; judge its curve and its seconds.

    ``tolerance`` 0 asks for bitwise equal losses (same software and hardware); give e.g. 1e-4
    when re-running elsewhere. ``overrides`` change only systems fields (e.g. data.cache_dir)."""

    entry = find_entry(entry_id, leaderboard_dir, track)
    recorded, role = choose_run(entry, leaderboard_dir, seed, reference, rng)
    try:
        cfg = Config.from_dict(apply_overrides(recorded.config, list(overrides)))
    except ConfigError as err:
        raise LitAlgosError(
            f"Entry {entry.id} run {recorded.run_id} has a config this lit_algos cannot run: {err}"
        ) from None
    if cfg.config_hash() != recorded.config_hash:
        raise LitAlgosError(
            "The overrides change what is trained (the config hash); only systems fields such as data.cache_dir may be set."
        )
    rerun = train(cfg, runs_dir=runs_dir, progress=progress)
    ok, worst, n, note = compare_curves(recorded, rerun, tolerance)
    time_ok, ratio, time_note = judge_time(recorded, rerun, time_tolerance)
    result = Verification(
        entry=entry.id,
        track=entry.track,
        run_id=recorded.run_id,
        seed=recorded.seed,
        verified=ok and time_ok is not False,
        max_loss_difference=worst,
        time_ratio=ratio,
        points=n,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        hardware=host_string((rerun.hardware or {}).get("host")),
        software=software_fingerprint(),
        note="; ".join(x for x in (note, time_note) if x),
        role=role,
        losses_verified=ok,
        time_verified=time_ok,
        time_tolerance=time_tolerance,
        chosen="given" if seed is not None else "random",
    )
    _save_verification(result, leaderboard_dir)
    return result
