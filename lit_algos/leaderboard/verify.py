"""Tamper evidence for the board: re-derive what a record claims, digest it, and re-run it.

Three layers, from cheap to expensive:

1. ``audit_record`` (run by ``submit``) re-derives every figure a run record publishes from
   its curve and its config: tokens = steps x batch x block, FLOPs = FLOPs/token x tokens,
   FLOPs/token, parameter counts and the config hash from the config, the cost to target from
   the curve, the status from the curve and the budget, and that the validation loss is not
   far below the training loss at the same step. A hand-edited record (lowered losses, shrunk
   seconds, a changed config, a relabelled status) fails one of these unless every derived
   figure was forged consistently, which layer 3 catches.
2. ``record_digest``: the sha256 of each run as stored in the entry; ``entry_problems`` (run
   whenever the board is loaded) recomputes them and the entry's cost summary, so an entry
   edited after submission is skipped with a warning.
3. ``verify_entry`` re-runs one seed of an entry from its recorded config (runs are bitwise
   reproducible on the same software and hardware) and compares the evaluation curve, or
   ``reevaluate_checkpoint`` evaluates the run's saved checkpoint against its recorded loss; the
   result is stored in ``<leaderboard dir>/verified/<track>/<entry>.json`` and shown on the board.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lit_algos.errors import ConfigError, LitAlgosError, SubmissionError
from lit_algos.records import RunRecord, interpolate_to_target
from lit_algos.utils.io import atomic_write_json, read_json

REL = 1e-6  # relative tolerance of re-derived figures (they are computed, not measured)
# The validation loss may sit below the training loss (dropout, a lucky batch), but not by more
# than this many nats plus this share of it: a record whose val losses were lowered by hand fails.
VAL_BELOW_TRAIN_NATS = 0.25
VAL_BELOW_TRAIN_SHARE = 0.05
TRAIN_WINDOW = 8  # training steps averaged before each evaluation


def record_digest(run: dict[str, Any]) -> str:
    """sha256 of a run record's canonical JSON (sorted keys, no whitespace)."""
    blob = json.dumps(run, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def _close(a: float, b: float, rel: float = REL) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-9)


# ---- layer 1: re-derive a record's figures -------------------------------------------------
def audit_record(record: RunRecord, *, deep: bool = True) -> list[str]:
    """Every way ``record`` disagrees with itself; empty when its figures re-derive.

    ``deep`` also rebuilds the config (parameter counts, FLOPs per token, config hash), which
    needs this lit_algos to know every config field."""
    problems: list[str] = []
    cfg = record.config
    train, model = cfg.get("train", {}), cfg.get("model", {})
    rid = record.run_id
    batch, block = train.get("batch_size"), model.get("block_size")
    if not isinstance(batch, int) or not isinstance(block, int):
        return [f"run {rid}: config.train.batch_size / config.model.block_size are missing or not integers"]
    fpt = record.flops_per_token.get("analytic")
    points = list(record.curve) + ([record.final] if record.final is not None else [])
    for i, p in enumerate(record.curve):
        where = f"run {rid}: curve[{i}]"
        if p.tokens != p.step * batch * block:
            problems.append(
                f"{where}.tokens is {p.tokens}, but step {p.step} x batch {batch} x block {block} = {p.step * batch * block}"
            )
        if fpt is not None and not _close(p.flops, fpt * p.tokens):
            problems.append(
                f"{where}.flops is {p.flops:.6g}, but FLOPs/token {fpt:.6g} x tokens {p.tokens} = {fpt * p.tokens:.6g}"
            )
        if i and not (
            p.step > record.curve[i - 1].step and p.train_seconds >= record.curve[i - 1].train_seconds
        ):
            problems.append(f"{where}: steps and training seconds must increase along the curve")
    val_tokens, val_bytes = record.data.get("val_tokens"), record.data.get("val_bytes")
    if isinstance(val_tokens, int) and isinstance(val_bytes, int) and val_tokens > 0 and val_bytes > 0:
        per_nat = 1 / (math.log(2) * val_bytes / val_tokens)
        for i, p in enumerate(record.curve):
            if math.isfinite(p.val_loss) and not _close(p.val_bpb, p.val_loss * per_nat):
                problems.append(
                    f"run {rid}: curve[{i}].val_bpb {p.val_bpb:.6g} does not match its val_loss {p.val_loss:.6g} "
                    f"({p.val_loss * per_nat:.6g} at {val_bytes / val_tokens:.4g} bytes per token)"
                )
    if record.final is not None and record.curve and record.final != record.curve[-1]:
        problems.append(f"run {rid}: final is not the last point of the curve")
    if any(p.train_seconds <= 0 for p in points if p.step > 0):
        problems.append(f"run {rid}: an evaluation after training steps reports train_seconds <= 0")
    if record.tokens_per_second and record.final is not None and record.final.train_seconds > 0:
        timed = max(0.0, 1.0 - record.warmup_steps / record.final.step) if record.final.step else 0.0
        expected = record.final.tokens * timed / record.final.train_seconds
        if not _close(record.tokens_per_second, expected, 1e-6):
            problems.append(
                f"run {rid}: tokens_per_second {record.tokens_per_second:.6g} does not match the final evaluation "
                f"({expected:.6g} from its tokens and train_seconds)"
            )
    problems += _audit_target(record)
    problems += _audit_train_loss(record)
    if deep:
        problems += _audit_config(record)
    return problems


def _audit_target(record: RunRecord) -> list[str]:
    rid, out = record.run_id, []
    hit = interpolate_to_target(record.curve, record.target_loss) if record.target_loss is not None else None
    if (hit is None) != (record.to_target is None):
        out.append(
            f"run {rid}: to_target is {'set' if record.to_target else 'null'}, but the curve "
            f"{'reaches' if hit else 'never reaches'} target_loss {record.target_loss}"
        )
    elif hit is not None:
        for unit in ("step", "tokens", "flops", "train_seconds"):
            if not _close(getattr(hit, unit), getattr(record.to_target, unit)):
                out.append(
                    f"run {rid}: to_target.{unit} is {getattr(record.to_target, unit):.6g}, but the curve gives "
                    f"{getattr(hit, unit):.6g}"
                )
    if record.reached != (hit is not None):
        out.append(f"run {rid}: reached is {record.reached}, but the curve says {hit is not None}")
    if record.status == "reached" and hit is None:
        out.append(
            f"run {rid}: status 'reached', but no evaluation is at or below target_loss {record.target_loss}"
        )
    if record.status == "budget_exhausted" and record.final is not None:
        t = record.config.get("train", {})
        spent = [
            t.get("max_tokens") is not None and record.final.tokens >= t["max_tokens"],
            t.get("max_flops") is not None and record.final.flops >= t["max_flops"] * (1 - 1e-9),
            t.get("max_seconds") is not None and record.final.train_seconds >= t["max_seconds"],
        ]
        if not any(spent):
            out.append(
                f"run {rid}: status 'budget_exhausted', but its last evaluation (tokens {record.final.tokens}, "
                f"train_seconds {record.final.train_seconds:.4g}) spent none of max_tokens/max_flops/max_seconds"
            )
    return out


def _audit_train_loss(record: RunRecord) -> list[str]:
    """Each evaluation's loss against the mean training loss of the steps just before it."""
    by_step = {int(s): v for s, v in record.train_curve if v is not None and math.isfinite(v)}
    if not by_step:
        return []
    out = []
    for i, p in enumerate(record.curve):
        window = [by_step[s] for s in range(p.step - TRAIN_WINDOW + 1, p.step + 1) if s in by_step]
        if len(window) < min(TRAIN_WINDOW, p.step) or not math.isfinite(p.val_loss):
            continue
        train = sum(window) / len(window)
        floor = train - VAL_BELOW_TRAIN_NATS - VAL_BELOW_TRAIN_SHARE * train
        if p.val_loss < floor:
            out.append(
                f"run {record.run_id}: curve[{i}].val_loss {p.val_loss:.4f} is far below the training loss "
                f"{train:.4f} of the {len(window)} steps before it (at most {VAL_BELOW_TRAIN_NATS} nats + "
                f"{VAL_BELOW_TRAIN_SHARE:.0%} below is plausible)"
            )
    return out


def _audit_config(record: RunRecord) -> list[str]:
    from lit_algos.config import Config, hash_config_dict
    from lit_algos.flops import estimate_flops
    from lit_algos.model import param_counts

    rid, out = record.run_id, []
    if hash_config_dict(record.config) != record.config_hash:
        out.append(
            f"run {rid}: config_hash {record.config_hash} does not match its config (which hashes to "
            f"{hash_config_dict(record.config)})"
        )
    try:
        cfg = Config.from_dict(record.config)
    except ConfigError as err:
        return out + [f"run {rid}: its config does not validate here: {err}"]
    if cfg.train.seed != record.seed:
        out.append(f"run {rid}: seed {record.seed}, but its config says train.seed={cfg.train.seed}")
    if cfg.train.target_loss != record.target_loss:
        out.append(
            f"run {rid}: target_loss {record.target_loss}, but its config says train.target_loss={cfg.train.target_loss}"
        )
    fpt = estimate_flops(cfg.model).per_token_train
    if not _close(record.flops_per_token.get("analytic") or -1, fpt):
        out.append(
            f"run {rid}: flops_per_token.analytic {record.flops_per_token.get('analytic')}, but its config gives {fpt:.6g}"
        )
    counts = param_counts(cfg.model)
    for key, value in counts.items():
        if key in record.params and record.params[key] != value:
            out.append(f"run {rid}: params.{key} is {record.params[key]}, but its config gives {value}")
    return out


def audit_submission(runs: list[RunRecord]) -> None:
    """SubmissionError listing every figure of ``runs`` that does not re-derive."""
    problems = [p for r in runs for p in audit_record(r)]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise SubmissionError(
            f"The run records do not agree with themselves, so they were edited or corrupted after training: {shown}. "
            "Submit the record.json files exactly as `lit-algos train` wrote them."
        )


# ---- layer 2: entries on the board --------------------------------------------------------
def entry_problems(entry, raw_runs: list[dict] | None = None) -> list[str]:
    """Why a stored entry cannot be trusted (digests, cost summary, record audit); empty if none."""
    from lit_algos.leaderboard.entries import cost_to_target

    out = []
    if raw_runs is None:  # the runs as stored: re-serialised records gain fields newer code added
        raw_runs = getattr(entry, "_raw_runs", None) or [r.to_dict() for r in entry.runs]
    digests = getattr(entry, "run_digests", None)
    if digests:
        for i, (run, digest) in enumerate(zip(raw_runs, digests)):
            if record_digest(run) != digest:
                out.append(
                    f"runs[{i}] does not match its stored digest (the record was edited after submission)"
                )
    target = entry.statistics.get("target_loss")
    if isinstance(target, (int, float)):
        for unit in ("flops", "train_seconds", "tokens"):
            stored = (entry.summary.get(unit) or {}).get("values")
            if stored is None:
                continue
            if getattr(entry, "rule", "stop-at-target") == "stop-at-target":
                derived = [cost_to_target(r, target)[unit] for r in entry.runs]
            else:  # the declared-length rule ranks the whole run: its last evaluation
                derived = [float(getattr(r.final, unit)) for r in entry.runs if r.final is not None]
            if len(stored) != len(derived) or not all(
                _close(a, b) for a, b in zip(sorted(stored), sorted(derived))
            ):
                out.append(f"summary.{unit} does not match the costs to target of its runs")
    for r in entry.runs:
        out += audit_record(r, deep=False)
    return out


# ---- layer 3: re-run a seed ---------------------------------------------------------------
@dataclass
class Verification:
    entry: str
    track: str
    run_id: str
    seed: int
    verified: bool
    max_loss_difference: float | None
    time_ratio: float | None  # re-run train_seconds / recorded, at the last common evaluation
    points: int
    date: str
    hardware: str
    software: dict = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def verification_path(root: Path, track: str, entry_id: str) -> Path:
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


def find_entry(entry_id: str, root: Path, track: str | None = None):
    from lit_algos.leaderboard.entries import Entry, entry_path

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
    from lit_algos.leaderboard.entries import board_lock

    with board_lock(leaderboard_dir):
        atomic_write_json(verification_path(leaderboard_dir, result.track, result.entry), result.to_dict())


def _chosen_run(entry, seed: int | None) -> RunRecord:
    problems = entry_problems(entry, getattr(entry, "_raw_runs", None))
    if problems:
        raise LitAlgosError(
            f"Entry {entry.id} fails its integrity checks, so it is not re-run: {'; '.join(problems)}."
        )
    chosen = [r for r in entry.runs if seed is None or r.seed == seed]
    if not chosen:
        seeds = sorted(r.seed for r in entry.runs)
        raise LitAlgosError(f"Entry {entry.id} has no run with seed {seed}; its seeds are {seeds}.")
    return min(chosen, key=lambda r: r.seed)


def _validation_loss(module, loader) -> float:
    """The full validation loss as training computes it: batch means weighted by their target count."""
    import torch
    from torchmetrics import MeanMetric

    from lit_algos.model import IGNORE_INDEX

    metric = MeanMetric(nan_strategy=float("inf"))  # as LitGPT: a NaN loss (divergence) stays visible
    module.eval()
    with torch.no_grad():
        for x, y in loader:
            _, loss = module(x, y)  # (B, T) in, mean cross-entropy over non-padding targets out
            count = (y != IGNORE_INDEX).sum()
            metric.update(torch.where(count > 0, loss, torch.zeros_like(loss)), weight=count)
    return float(metric.compute())


def reevaluate_checkpoint(
    entry_id: str,
    checkpoint: Path,
    *,
    seed: int | None = None,
    leaderboard_dir: Path,
    track: str | None = None,
    tolerance: float = 0.0,
) -> Verification:
    """Evaluate a run's saved checkpoint on the validation set and compare with the recorded loss
    at the checkpoint's step (a checkpoint is written after every evaluation)."""
    import torch

    from lit_algos.config import Config, hash_config_dict
    from lit_algos.data import TokenDataModule, prepare_dataset
    from lit_algos.training.module import LitGPT
    from lit_algos.utils.fingerprint import software_fingerprint

    entry = find_entry(entry_id, leaderboard_dir, track)
    recorded = _chosen_run(entry, seed)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        config = state["hyper_parameters"]["config"]
        step = int(state["global_step"])
        weights = state["state_dict"]
    except FileNotFoundError:
        raise LitAlgosError(f"No checkpoint at {checkpoint}.") from None
    except Exception as err:  # not a checkpoint of ours: say so instead of a torch traceback
        raise LitAlgosError(f"{checkpoint} is not a lit_algos training checkpoint ({err}).") from None
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
    cfg = Config.from_dict(config)
    prepared = prepare_dataset(cfg.data)
    if prepared.val_fingerprint != recorded.val_fingerprint:
        raise LitAlgosError(
            f"The validation set here ({prepared.val_fingerprint}) is not the one run {recorded.run_id} was "
            f"evaluated on ({recorded.val_fingerprint})."
        )
    module = LitGPT(config, total_steps=1)
    module.load_state_dict(weights)
    t = cfg.train
    data = TokenDataModule(prepared, cfg.model.block_size, t.batch_size, t.micro_batch_size, t.seed)
    loss = _validation_loss(module, data.val_dataloader())
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
        note=f"checkpoint at step {step} re-evaluated: loss {loss:.6f}, recorded {points[step].val_loss:.6f}",
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
    progress: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
) -> Verification:
    """Re-run one seed of an entry from its recorded config and compare the evaluation curve.

    ``tolerance`` 0 asks for bitwise equal losses (same software and hardware); give e.g. 1e-4
    when re-running elsewhere. ``overrides`` change only systems fields (e.g. data.cache_dir)."""
    from lit_algos.config import Config
    from lit_algos.config.recipes import apply_overrides
    from lit_algos.training.run import train
    from lit_algos.utils.fingerprint import software_fingerprint

    entry = find_entry(entry_id, leaderboard_dir, track)
    recorded = _chosen_run(entry, seed)
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
    last = max((p.step for p in recorded.curve if p.step in {q.step for q in rerun.curve}), default=None)
    ratio = None
    if last is not None:
        a = next(p for p in recorded.curve if p.step == last).train_seconds
        b = next(p for p in rerun.curve if p.step == last).train_seconds
        ratio = b / a if a > 0 else None
    result = Verification(
        entry=entry.id,
        track=entry.track,
        run_id=recorded.run_id,
        seed=recorded.seed,
        verified=ok,
        max_loss_difference=worst,
        time_ratio=ratio,
        points=n,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        hardware=str(rerun.hardware.get("class") or rerun.hardware.get("device_name") or "unknown"),
        software=software_fingerprint(),
        note=note,
    )
    _save_verification(result, leaderboard_dir)
    return result
