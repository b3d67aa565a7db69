"""One schema for what is read back from disk: run records and leaderboard entries.

Every reader (``RunRecord.load``, ``Entry.load``, ``ceg``, ``submit``, the board, ``verify``)
checks a file against these pydantic models before using it, so a hand-edited or corrupt file
is one ``RecordError`` naming the file, the field, the value and what is allowed, never a
traceback deep inside the statistics.

Strict where it matters, open where other code grows:

- known fields have strict types (no "0" for 0, no true for 1), numbers are finite and costs are
  non-negative; statuses are ``record_format.STATUSES``;
- a curve point holds the fields of ``records.EvalPoint`` and no other (``EvalPointModel``
  declares the same fields; a test keeps the two in step), all six required;
- unknown keys at the top level of a record and inside its open sub-objects (``code``,
  ``hardware``, ``software``, ``data``, ``config``, ``statistics``) are kept and ignored, so a
  record written by a slightly newer lit_algos still validates; a record whose
  ``schema_version`` is newer than ours is refused with "upgrade".
- A diverged run evaluates a non-finite loss; JSON has no NaN, so it is stored as null, and null
  losses are accepted only in records whose status is ``diverged`` (or an unfinished status).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lit_algos.errors import LitAlgosError
from lit_algos.record_format import SCHEMA_VERSION, STATUSES


class RecordError(LitAlgosError):
    """A run record or leaderboard entry file that does not match the schema."""

    def __init__(self, source: str, field: str, value: object, allowed: str, what: str = "Run record"):
        self.source, self.field, self.value, self.allowed = source, field, value, allowed
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(
            f"{what} {source} is malformed: field '{field}' is {shown}. Allowed: {allowed} "
            "Fix or remove the file (records are written by `lit-algos train`; do not edit them by hand)."
        )


_STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="allow")

NonNegInt = Annotated[int, Field(ge=0)]
NonNeg = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Name = Annotated[str, Field(min_length=1, max_length=200)]

# statuses in which a record may still hold null (non-finite) losses
_LOSS_MAY_BE_NULL = ("diverged", "failed", "running", "interrupted")


class EvalPointModel(BaseModel):
    model_config = _STRICT
    step: NonNegInt
    tokens: NonNegInt
    flops: NonNeg
    train_seconds: NonNeg
    val_loss: NonNeg | None
    val_bpb: NonNeg | None

    @model_validator(mode="after")
    def _only_known_fields(self) -> EvalPointModel:
        known = set(type(self).model_fields)  # the fields of lit_algos.records.EvalPoint
        for key, value in (self.model_extra or {}).items():
            if key not in known:
                raise ValueError(f"unknown_key:{key}:{', '.join(sorted(known))}")
            _finite_tree(value, key)
        return self


class ToTargetModel(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")
    step: NonNeg
    tokens: NonNeg
    flops: NonNeg
    train_seconds: NonNeg


def _finite_tree(value: Any, path: str = "") -> None:
    """Every number inside ``value`` is finite (open sub-objects may hold anything else)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non_finite:{path}")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite_tree(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite_tree(v, f"{path}[{i}]")


class RecordModel(BaseModel):
    model_config = _STRICT
    run_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+=@-]{0,199}$")]
    recipe: Name
    config: dict[str, Any]
    config_hash: Name
    seed: int
    status: str = "running"
    schema_version: NonNegInt = 0
    code: dict[str, Any] = {}
    hardware: dict[str, Any] = {}
    software: dict[str, Any] = {}
    world_size: Annotated[int, Field(ge=1)] = 1
    data: dict[str, Any] = {}
    owner: dict[str, Any] = {}
    params: dict[str, NonNegInt] = {}
    flops_per_token: dict[str, NonNeg | None] = {}
    target_loss: Positive | None = None
    reached: bool = False
    to_target: ToTargetModel | None = None
    curve: list[EvalPointModel] = []
    train_curve: list[list[Any]] = []
    final: EvalPointModel | None = None
    mfu: NonNeg | None = None
    tokens_per_second: NonNeg | None = None
    eval_seconds: NonNeg = 0.0
    warmup_seconds: NonNeg = 0.0
    warmup_steps: NonNegInt = 0
    started_at: str = ""
    finished_at: str = ""
    error: str | None = None

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value not in STATUSES:
            raise ValueError(f"status:{', '.join(STATUSES)}")
        return value

    @field_validator("train_curve")
    @classmethod
    def _step_loss_pairs(cls, value: list) -> list:
        for i, pair in enumerate(value):
            step, loss = (pair + [None, None])[:2] if len(pair) == 2 else (None, None)
            ok_step = isinstance(step, int) and not isinstance(step, bool) and step >= 0
            ok_loss = loss is None or (
                isinstance(loss, (int, float)) and not isinstance(loss, bool) and math.isfinite(loss)
            )
            if not (ok_step and ok_loss):
                raise ValueError(f"pair:train_curve[{i}]")
        return value

    @field_validator("config", "code", "hardware", "software", "data")
    @classmethod
    def _finite_inside(cls, value: dict) -> dict:
        _finite_tree(value)
        return value

    @field_validator("config")
    @classmethod
    def _config_sections(cls, value: dict) -> dict:
        for section in ("model", "optim", "data", "train"):
            if section in value and not isinstance(value[section], dict):
                raise ValueError(f"section:{section}")
        return value

    @model_validator(mode="after")
    def _null_losses_only_when_diverged(self) -> RecordModel:
        if self.status in _LOSS_MAY_BE_NULL:
            return self
        for i, p in enumerate(self.curve):
            if p.val_loss is None or p.val_bpb is None:
                raise ValueError(f"null_loss:curve[{i}].{'val_loss' if p.val_loss is None else 'val_bpb'}")
        for i, (_, loss) in enumerate(self.train_curve):
            if loss is None:
                raise ValueError(f"null_loss:train_curve[{i}][1]")
        return self


class EntryModel(BaseModel):
    model_config = _STRICT
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    track: Name
    description: str
    contributors: list[str]
    date: str
    commit: str | None = None
    dirty: bool | None = None
    recipe: Name
    config_hash: str
    hardware: str
    statistics: dict[str, Any]
    summary: dict[str, Any]
    runs: Annotated[list[dict[str, Any]], Field(min_length=1)]
    entry_version: NonNegInt = 1
    run_digests: list[str] | None = None
    reference: dict[str, Any] | None = None
    reference_runs: list[dict[str, Any]] | None = None
    reference_digests: list[str] | None = None
    entry_digest: str | None = None

    @field_validator("statistics", "summary")
    @classmethod
    def _finite_inside(cls, value: dict) -> dict:
        _finite_tree(value)
        return value


# ---- error rendering -----------------------------------------------------------------------
def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _allowed(err: dict) -> tuple[str | None, str]:
    """(field override or None, what is allowed) for one pydantic error."""
    kind, ctx, msg = err["type"], err.get("ctx") or {}, err.get("msg", "")
    if kind == "value_error":
        text = str(ctx.get("error", msg))
        code, _, rest = text.partition(":")
        if code == "status":
            return None, f"one of {rest}."
        if code == "unknown_key":
            key, _, known = rest.partition(":")
            return key, f"no such field in a curve point; its fields are {known}."
        if code == "non_finite":
            return rest or None, "a finite number (JSON has no NaN or Infinity)."
        if code == "pair":
            return rest, "a [step, loss] pair: an integer step >= 0 and a finite loss."
        if code == "section":
            return f"config.{rest}", "a mapping of that section's fields."
        if code == "null_loss":
            return (
                rest,
                "a finite number; null (a non-finite loss) only in a diverged or unfinished record.",
            )
        return None, text + "."
    table = {
        "missing": "this field is required.",
        "int_type": "an integer.",
        "float_type": "a number.",
        "bool_type": "true or false.",
        "string_type": "a string.",
        "dict_type": "a mapping (a JSON object).",
        "list_type": "a list.",
        "tuple_type": "a [step, loss] pair.",
        "model_type": "a mapping (a JSON object).",
        "model_attributes_type": "a mapping (a JSON object).",
        "finite_number": "a finite number (JSON has no NaN or Infinity).",
        "extra_forbidden": "no such field here.",
        "none_required": "null.",
    }
    if kind in ("greater_than_equal", "greater_than"):
        op = ">=" if kind == "greater_than_equal" else ">"
        bound = ctx.get("ge", ctx.get("gt"))
        return None, f"a finite number {op} {bound}."
    if kind == "string_pattern_mismatch":
        return None, f"a string matching {ctx.get('pattern')}."
    if kind in ("string_too_short", "too_short"):
        return None, "a non-empty value."
    if kind in ("string_too_long", "too_long"):
        return None, "a shorter value."
    return None, table.get(kind, msg + ".")


def _raise(err: ValidationError, data: Any, source: str, what: str, prefix: str = "") -> None:
    errors = err.errors(include_url=False)
    # A field that may be null reports one error per alternative; keep the most informative one.
    first = errors[0]
    for e in errors:
        if e["loc"][: len(first["loc"])] == first["loc"] and e["type"] not in ("none_required",):
            first = e
            break
    loc = tuple(p for p in first["loc"] if p not in ("function-after[_only_known_fields(), EvalPointModel]",))
    loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith(("function-", "constrained-"))))
    override, allowed = _allowed(first)
    field = _loc(loc)
    value = first.get("input")
    if override is not None:
        field = (
            f"{field}.{override}" if field and not override.startswith(("curve", "train_curve")) else override
        )
        value = _dig(data, field)
    if first["type"] == "missing":
        value = None
        allowed = "this field is required (it is missing)."
    raise RecordError(source, prefix + (field or "(top level)"), value, allowed, what) from None


def _dig(data: Any, path: str) -> Any:
    node = data
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError):
            return None
    return node


# ---- public checks -------------------------------------------------------------------------
def check_record(data: Any, source: str, *, what: str = "Run record", prefix: str = "") -> dict:
    """``data`` (a parsed record.json) checked against the schema; returns it, or raises RecordError."""
    if not isinstance(data, dict):
        raise RecordError(source, prefix + "(top level)", type(data).__name__, "a JSON object.", what)
    version = data.get("schema_version", 0)
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise LitAlgosError(
            f"{what} {source} has schema_version {version}; this lit_algos reads up to {SCHEMA_VERSION}. "
            "Upgrade lit_algos."
        )
    try:
        RecordModel.model_validate(data)
    except ValidationError as err:
        _raise(err, data, source, what, prefix)
    return data


def check_entry(data: Any, source: str) -> dict:
    """A parsed leaderboard entry checked against the schema, every run record in it included."""
    if not isinstance(data, dict):
        raise RecordError(source, "(top level)", type(data).__name__, "a JSON object.", "Leaderboard entry")
    try:
        EntryModel.model_validate(data)
    except ValidationError as err:
        _raise(err, data, source, "Leaderboard entry")
    for key, digests_key in (("runs", "run_digests"), ("reference_runs", "reference_digests")):
        runs = data.get(key) or []
        for i, run in enumerate(runs):
            check_record(run, source, what="Leaderboard entry", prefix=f"{key}[{i}].")
        digests = data.get(digests_key)
        if digests is not None and len(digests) != len(runs):
            raise RecordError(
                source,
                digests_key,
                digests,
                f"one digest per {'run' if key == 'runs' else 'reference run'} ({len(runs)}).",
                "Leaderboard entry",
            )
    return data
