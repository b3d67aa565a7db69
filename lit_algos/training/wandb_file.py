"""Read an offline W&B run back from its ``.wandb`` file: what ``wandb sync`` would upload.

    from lit_algos.training.wandb_file import read_history
    rows = read_history(next(Path("runs/<id>/wandb").glob("offline-run-*/run-*.wandb")))
    [(r["tokens"], r["val/loss"]) for r in rows if "val/loss" in r]

The file is a LevelDB-style log: a 7-byte header (``:W&B``, a magic number, a version), then 32 KiB
blocks of chunks, each with a 7-byte header (CRC-32C, length, type: full, first, middle, last);
each assembled record is a ``wandb_internal_pb2.Record`` protobuf. Only history rows and metric
definitions are decoded here; the CRCs are not checked.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7  # file header and chunk header are both 7 bytes
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: str | Path) -> Iterator[bytes]:
    """The payload of every record in a ``.wandb`` file, in order."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (no ':W&B' header)")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk


def _records(path: str | Path):
    # optional dependency (the wandb extra)
    from wandb.proto import wandb_internal_pb2 as pb

    for raw in raw_records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        yield record


def read_history(path: str | Path) -> list[dict]:
    """Every history row (one per ``run.log``) as a dict of metric name to value."""
    rows = []
    for record in _records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in record.history.item}
            )
    return rows


def read_metric_axes(path: str | Path) -> dict[str, str]:
    """The x-axis (``step_metric``) defined for each metric name or glob."""
    axes = {}
    for record in _records(path):
        if record.WhichOneof("record_type") == "metric" and record.metric.step_metric:
            axes[record.metric.name or record.metric.glob_name] = record.metric.step_metric
    return axes


def read_summary(path: str | Path) -> dict:
    """The run summary as written last (summary updates merged in order)."""
    summary: dict = {}
    for record in _records(path):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
            for item in record.summary.remove:
                summary.pop(item.key or "/".join(item.nested_key), None)
    return summary


def read_config(path: str | Path) -> dict:
    """The run's config (``wandb.config``) as written, later updates winning."""
    config: dict = {}
    for record in _records(path):
        if record.WhichOneof("record_type") == "config":
            for item in record.config.update:
                config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return config


def is_complete(path: str | Path) -> bool:
    """Whether the run's ``exit`` record is written. W&B's service writes the file in the
    background: right after ``finish()`` returns, on a loaded host, the last records may still come."""
    try:
        return any(r.WhichOneof("record_type") == "exit" for r in _records(path))
    except (OSError, ValueError):
        return False
