"""The run record: one JSON file per training run, the only input of analysis and the board.

Every table and plot is derived from these files. ``SCHEMA_VERSION`` is bumped whenever a field
changes meaning; readers refuse records from a newer schema.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lit_algos.errors import LitAlgosError
from lit_algos.record_format import (  # noqa: F401  (public here)
    FINISHED_STATUSES,
    RESUMABLE_STATUSES,
    SCHEMA_VERSION,
    STATUSES,
)
from lit_algos.utils.io import atomic_write_json, read_json

RUNS_DIR_ENV = "LIT_ALGOS_RUNS"


def default_runs_dir() -> Path:
    """Where run directories go and are looked up: $LIT_ALGOS_RUNS, else ./runs."""
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


@dataclass
class EvalPoint:
    step: int  # optimizer steps completed
    tokens: int  # training tokens consumed (global, all ranks)
    flops: float  # analytic training FLOPs spent (forward + backward)
    train_seconds: float  # training clock: steps + data loading; no evaluation, no compilation
    val_loss: float  # mean cross-entropy (nats/token) over the whole fixed validation set
    val_bpb: float  # bits per byte of validation text


@dataclass
class ToTarget:
    """Cost at which the target was first reached, interpolated between bracketing evaluations."""

    step: float
    tokens: float
    flops: float
    train_seconds: float


@dataclass
class RunRecord:
    run_id: str
    recipe: str
    config: dict[str, Any]  # the fully resolved config
    config_hash: str
    seed: int
    status: str = "running"  # one of STATUSES
    schema_version: int = SCHEMA_VERSION
    code: dict[str, Any] = field(default_factory=dict)  # {commit, dirty, version}
    hardware: dict[str, Any] = field(
        default_factory=dict
    )  # {accelerator, device_name, n_devices, cpu, class}
    software: dict[str, Any] = field(default_factory=dict)  # {python, torch, lightning, lit_algos}
    world_size: int = 1
    data: dict[str, Any] = field(
        default_factory=dict
    )  # {corpus, tokenizer, val_fingerprint, tokenizer_fingerprint, corpus_fingerprint, val_tokens, val_bytes}
    params: dict[str, int] = field(default_factory=dict)  # {total, active, embedding, non_embedding}
    flops_per_token: dict[str, float | None] = field(default_factory=dict)  # {analytic, measured}
    # Component metrics, e.g. {"moe": {aux_loss, max_over_mean, layers: [{fraction, entropy, bias}]}}
    component_metrics: dict[str, Any] = field(default_factory=dict)
    target_loss: float | None = None
    reached: bool = False
    to_target: ToTarget | None = None
    curve: list[EvalPoint] = field(default_factory=list)
    train_curve: list[list[float]] = field(default_factory=list)  # [step, mean train loss] per optimizer step
    final: EvalPoint | None = None  # the last evaluation
    mfu: float | None = None  # model FLOPs utilisation over the training clock (None without a known peak)
    tokens_per_second: float | None = None
    eval_seconds: float = 0.0  # excluded from the training clock
    warmup_seconds: float = 0.0  # compilation / first-step warm-up, excluded from the training clock
    warmup_steps: int = (
        0  # optimizer steps whose time is in warmup_seconds (one per session; more after resumes)
    )
    started_at: str = ""
    finished_at: str = ""
    error: str | None = None
    # {host, pid} of the process that last wrote the record: a "running" record whose writer is
    # gone from this host was killed without a chance to write, and reads as "interrupted".
    owner: dict[str, Any] = field(default_factory=dict)

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready dicts and lists."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> RunRecord:
        """A record from its parsed JSON, checked against ``lit_algos.schema`` (RecordError if malformed).

        Keys this version does not know (written by newer code) are dropped; null losses (how
        JSON stores a diverged run's non-finite loss) come back as NaN."""
        from lit_algos.schema import check_record  # here: pydantic loads on the first read, not with --help

        check_record(data, source)
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["curve"] = [_point(p) for p in data.get("curve", [])]
        kwargs["train_curve"] = [[s, math.nan if v is None else v] for s, v in data.get("train_curve", [])]
        if data.get("final"):
            kwargs["final"] = _point(data["final"])
        if data.get("to_target"):
            kwargs["to_target"] = ToTarget(**data["to_target"])
        return cls(**kwargs)._orphan_is_interrupted()

    def _orphan_is_interrupted(self) -> RunRecord:
        """A ``running`` record whose writing process has ended on this host reads as ``interrupted``."""
        pid = self.owner.get("pid")
        if (
            self.status == "running"
            and isinstance(pid, int)
            and self.owner.get("host") == current_owner()["host"]
        ):
            if not _process_alive(pid):
                self.status = "interrupted"
                self.error = self.error or (
                    f"process {pid} ended without finishing the record (killed, e.g. kill -9 or power loss)"
                )
        return self

    def save(self, path: str | Path) -> Path:
        """Write the record atomically (a reader sees the old file or the new one)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Read and schema-check a record; a malformed one is a ``LitAlgosError`` naming the file."""
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise LitAlgosError(f"Run record {path} does not exist.") from None
        except IsADirectoryError:
            raise LitAlgosError(f"Run record {path} is a directory, not a record.json file.") from None
        except UnicodeDecodeError:
            raise LitAlgosError(f"Run record {path} is not UTF-8 text, so it is not a run record.") from None
        except ValueError as err:
            raise LitAlgosError(f"Run record {path} is not valid JSON: {err}.") from None
        except OSError as err:
            raise LitAlgosError(f"Run record {path} cannot be read: {err.strerror or err}.") from None
        return cls.from_dict(data, source=str(path))

    # ---- conveniences --------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Finished within its budget or at its target, with a curve: usable for CEG and the board."""
        return self.status in ("reached", "budget_exhausted") and bool(self.curve)

    @property
    def val_fingerprint(self) -> str | None:
        """The validation set's fingerprint: runs compare only on the same one."""
        return self.data.get("val_fingerprint")


def current_owner() -> dict[str, Any]:
    """This process as the writer of a record: {host, pid}."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _point(data: dict) -> EvalPoint:
    known = {f.name for f in fields(EvalPoint)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("val_loss", "val_bpb"):
        if values.get(key) is None:
            values[key] = math.nan
    return EvalPoint(**values)


def _log_interp(c0: float, c1: float, frac: float) -> float:
    """Interpolate a cost linearly in log space (linear when a side is zero, e.g. step 0)."""
    if c0 <= 0 or c1 <= 0:
        return c0 + frac * (c1 - c0)
    return math.exp(math.log(c0) + frac * (math.log(c1) - math.log(c0)))


def interpolate_to_target(curve: list[EvalPoint], target: float) -> ToTarget | None:
    """Step/tokens/FLOPs/seconds at which the running-minimum loss first reaches ``target``.

    Interpolated linearly in (log cost, loss) between the two evaluations that bracket the
    target (docs/design.md §7); the first evaluation itself when it is already at or below the target.
    """
    best = math.inf
    previous: EvalPoint | None = None
    prev_best = math.inf
    for point in curve:
        best = min(best, point.val_loss)
        if best <= target:
            if previous is None or not math.isfinite(prev_best):
                return ToTarget(point.step, point.tokens, point.flops, point.train_seconds)
            frac = (prev_best - target) / (prev_best - best)
            return ToTarget(
                *(
                    _log_interp(getattr(previous, k), getattr(point, k), frac)
                    for k in ("step", "tokens", "flops", "train_seconds")
                )
            )
        previous, prev_best = point, best
    return None
