"""Layer 1 of the board's tamper evidence: a run record re-derived from itself.

``audit_record`` (run by ``submit`` on the entry's runs and on its reference runs alike)
re-derives every figure a run record publishes from its curve and its config: tokens = steps x
batch x block, FLOPs = FLOPs/token x tokens, FLOPs/token, parameter counts and the config hash
from the config, the cost to target from the curve, the status from the curve and the budget,
and that the validation loss is not far below the training loss at the same step. A hand-edited
record (lowered losses, shrunk seconds, a changed config, a relabelled status) fails one of these
unless every derived figure was forged consistently, which the final-checkpoint re-evaluation at
submit (losses) and ``lit-algos verify`` (losses, seed and time) catch.

``record_digest`` is the sha256 of a record as stored in an entry (``leaderboard.evidence``).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from lit_algos.config import Config, hash_config_dict
from lit_algos.errors import ConfigError, SubmissionError
from lit_algos.flops import estimate_flops
from lit_algos.model import param_counts
from lit_algos.records import RunRecord, interpolate_to_target

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


def audit_submission(runs: list[RunRecord], what: str = "run records") -> None:
    """SubmissionError listing every figure of ``runs`` that does not re-derive."""
    problems = [p for r in runs for p in audit_record(r)]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise SubmissionError(
            f"The {what} do not agree with themselves, so they were edited or corrupted after training: {shown}. "
            "Submit the record.json files exactly as `lit-algos train` wrote them."
        )
