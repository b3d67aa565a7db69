"""Peak FLOP/s per device and model FLOPs utilisation (MFU): the one ``mfu()``.

A known GPU's peak comes from its data sheet (``lit_algos.flops.PEAK_FLOPS``); a CPU has none, so
its dense matmul rate is measured (``matmul_peak``: best of several sizes and repeats) and kept per
host and thread count (``cpu_peak``), so a training run measures it once at most.
``lit-algos benchmark`` stores its own measurement there too. Training (the run record, the logged
``train/mfu``, progress lines) and the benchmark compute MFU with ``mfu`` against ``device_peak``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch

from lit_algos.data.hub import cache_root
from lit_algos.flops import PEAK_FLOPS, canonical_device, peak_flops
from lit_algos.hardware import host_fingerprint
from lit_algos.utils.io import atomic_write_json


def mfu(flop_per_s: float | None, peak_per_device: float | None, devices: int = 1) -> float | None:
    """Model FLOPs utilisation: achieved training FLOP/s over the peak of ``devices`` devices
    (None without a known peak or rate)."""
    if not peak_per_device or flop_per_s is None:
        return None
    return flop_per_s / (peak_per_device * devices)


PEAK_SIZES = {"fp32": (256, 512, 1024, 2048), "bf16": (256, 512, 1024)}


def matmul_peak(
    dtype: str = "fp32",
    sizes: Sequence[int] | None = None,
    repeats: int = 5,
    device: str = "cpu",
    budget_s: float = 3.0,
) -> dict:
    """Dense square matmul FLOP/s at each size (best of ``repeats``) and the best over sizes.

    ``budget_s`` bounds the time spent per size (emulated bf16 on an AVX2 CPU runs at ~1 GFLOP/s).
    """

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    per_size = {}
    for n in sizes or PEAK_SIZES[dtype]:
        a = torch.randn(n, n, device=device).to(dt)
        b = torch.randn(n, n, device=device).to(dt)
        out = torch.empty(n, n, device=device, dtype=dt)
        best = 0.0
        spent = 0.0
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            if device == "cuda":
                torch.cuda.synchronize()
            dt_s = time.perf_counter() - t0
            spent += dt_s
            best = max(best, 2 * n**3 / dt_s)
            if spent > budget_s:
                break
        per_size[n] = best
    return {"dtype": dtype, "per_size": per_size, "peak": max(per_size.values())}


def peak_for(precision: str, peaks: dict[str, dict] | None, device_name: str) -> tuple[float | None, str]:
    """The peak MFU is reported against, and where it comes from (measured here or the data sheet)."""

    key = canonical_device(device_name)
    if key is not None and PEAK_FLOPS.get(key):
        return peak_flops(device_name, precision), f"{key} data sheet"
    kind = "bf16" if precision.startswith("bf16") else "fp32"
    if peaks and kind in peaks:
        return peaks[kind]["peak"], f"measured {kind} matmul peak"
    return None, "no peak"


# The CPU peak that training's MFU (W&B, progress lines, the run record) is computed against: the
# benchmark's matmul measurement, stored per host and thread count so a run measures it once at most.
PEAK_CACHE = "peaks"


def _peak_cache_file(kind: str, cache_dir=None) -> Path:
    host = host_fingerprint("cpu")
    key = f"{host['cpu_model']}|{','.join(host['isa'] or [])}|{torch.get_num_threads()}|{kind}"
    return cache_root(cache_dir) / PEAK_CACHE / f"cpu-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def store_cpu_peak(kind: str, measured: dict, cache_dir=None) -> None:
    """Keep a CPU matmul peak (``matmul_peak``'s result) for the runs on this host and thread count."""

    try:
        atomic_write_json(
            _peak_cache_file(kind, cache_dir),
            {
                "peak": measured["peak"],
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )
    except OSError:
        pass  # a read-only cache only costs a measurement next time


def cpu_peak(kind: str = "fp32", cache_dir=None) -> tuple[float, str]:
    """This CPU's dense matmul peak (FLOP/s) for ``kind`` (fp32 or bf16), and where it comes from:
    the last ``lit-algos benchmark`` (or training run) on this host and thread count, else a quick
    measurement now (a second or two), stored for the next run."""

    path = _peak_cache_file(kind, cache_dir)
    try:
        stored = json.loads(path.read_text())
        return float(stored["peak"]), f"measured {kind} matmul peak ({stored.get('measured_at', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    measured = matmul_peak(kind, sizes=PEAK_SIZES[kind][-2:], repeats=3, budget_s=1.0)
    store_cpu_peak(kind, measured, cache_dir)
    return measured["peak"], f"measured {kind} matmul peak (now)"


def device_peak(device_name: str, precision: str, accelerator: str = "cpu") -> tuple[float | None, str]:
    """Peak FLOP/s per device that MFU is computed against: a known GPU's data sheet, the measured
    matmul peak on a CPU (``cpu_peak``), or None for a GPU missing from the table."""

    key = canonical_device(device_name)
    if key is not None and PEAK_FLOPS.get(key):
        return peak_flops(device_name, precision), f"{key} data sheet"
    if accelerator != "cpu":
        return None, f"no peak for {device_name!r} in lit_algos.flops.PEAK_FLOPS"
    return cpu_peak("bf16" if str(precision).startswith("bf16") else "fp32")
