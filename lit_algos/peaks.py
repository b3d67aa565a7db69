"""A host's sustained dense matmul peaks: what MFU is measured against and what tells hosts apart.

One call of a matmul says little: on a shared 2-core host the best of five single calls of one
size ranged 212-397 GFLOP/s (bf16) over a day, so an MFU computed against it moved by +-20%.
``sustained_peak`` times windows of back-to-back matmuls (each window ``window_s`` long, the
first one of each size dropped as warm-up) at several sizes in the saturated range, and reports
the **median over every window of every size** with its spread (min, max, quartiles). That
median is "the peak" everywhere: MFU in training, ``lit-algos benchmark`` and the host
fingerprint (``lit_algos.hardware``), where two hosts whose peaks differ by more than 20% are
never the same machine.

It is measured once per host, torch version, device and thread count and kept in the data cache
(``<cache>/peaks/``) with the load average it was measured under; a run that finds the host
quieter by at least one busy process measures it again (a peak measured under load is too low,
and makes every MFU too high: 123% was seen), and ``lit-algos benchmark --peak`` measures it
again and replaces it (do that on a quiet host).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import statistics
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch

from lit_algos.data.hub import cache_root
from lit_algos.flops import PEAK_FLOPS, canonical_device, peak_flops
from lit_algos.hardware import cpu_identity
from lit_algos.utils.io import atomic_write_json
from lit_algos.utils.spread import spread

KINDS = ("fp32", "bf16")
# Square sizes per device kind, all in the range where the rate has levelled off (smaller ones
# are launch- or cache-bound and would pull the median down).
PEAK_SIZES = {"cpu": (1024, 1536, 2048), "cuda": (4096, 6144, 8192)}
REPEATS = 8  # timed windows per size
WINDOW_S = 0.25  # seconds of back-to-back calls per window
# LIT_ALGOS_PEAK_QUICK=1: small sizes and short windows (the test suite, smoke runs): milliseconds
# instead of seconds, and a peak far below the real one. Cached under its own key.
QUICK = {"sizes": [64, 128], "repeats": 2, "window_s": 0.01}
PEAK_CACHE = "peaks"  # under the data cache (lit_algos.data.hub.cache_root)
REFRESH_LOAD = 1.0  # cached peaks measured under a load average this much above now's are measured again
CACHE_VERSION = 2  # 2: sustained median (issue 29); the best-of-calls files of issue 26 are ignored


def sustained_peak(
    dtype: str = "fp32",
    sizes: Sequence[int] | None = None,
    repeats: int | None = None,
    window_s: float | None = None,
    device: str = "cpu",
    budget_s: float = 20.0,
) -> dict:
    """FLOP/s of square matmuls timed in windows of back-to-back calls; ``peak`` is the median of all windows.

    Per size: one call sizes the window (``window_s`` seconds of calls), one window is dropped as
    warm-up, then ``repeats`` windows are timed. ``budget_s`` bounds the whole measurement (an
    AVX2-only CPU emulates bf16 at a few GFLOP/s): sizes left when it runs out are skipped, and the
    result says how many windows it has (``spread["n"]``).
    """
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    settings = _settings(device)
    sizes = tuple(sizes or settings["sizes"])
    repeats = settings["repeats"] if repeats is None else repeats
    window_s = settings["window_s"] if window_s is None else window_s

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    start = time.perf_counter()
    windows: dict[int, list[float]] = {}
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dt)
        b = torch.randn(n, n, device=device).to(dt)
        out = torch.empty(n, n, device=device, dtype=dt)
        sync()
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        sync()
        calls = max(1, round(window_s / max(time.perf_counter() - t0, 1e-9)))
        rates = []
        for r in range(repeats + 1):  # window 0: warm-up (caches, clocks, allocator)
            if time.perf_counter() - start > budget_s:
                break
            sync()
            t0 = time.perf_counter()
            for _ in range(calls):
                torch.mm(a, b, out=out)
            sync()
            if r:
                rates.append(calls * 2 * n**3 / (time.perf_counter() - t0))
        if rates:
            windows[n] = rates
    samples = [r for rates in windows.values() for r in rates]
    if not samples:
        raise RuntimeError(f"no {dtype} matmul window finished within {budget_s} s on {device}")
    return {
        "dtype": dtype,
        "device": device,
        "peak": statistics.median(samples),
        "spread": spread(samples),
        "per_size": {n: statistics.median(rates) for n, rates in windows.items()},
        "windows": windows,
        "window_s": window_s,
        "seconds": time.perf_counter() - start,
        "load": _load(),
    }


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


# A measurement whose median is below this fraction of its own best window ran while part of the
# machine was gone (on a VM: a bf16 run at 208 GFLOP/s, every size at half rate, with windows up to
# 395, among runs at 363-384): it says nothing about the host and is measured again.
TRANSIENT_RATIO = 0.65
TRANSIENT_RETRIES = 2


def steady_peak(dtype: str = "fp32", device: str = "cpu", measure=None) -> dict:
    """``sustained_peak``, measured again (at most ``TRANSIENT_RETRIES`` times) when its median is
    below ``TRANSIENT_RATIO`` of its best window; the result lists the discarded medians under
    ``transients`` (the last measurement is kept whatever it reads)."""
    measure = measure or (lambda: sustained_peak(dtype, device=device))
    transients: list[float] = []
    out = measure()
    while out["peak"] < TRANSIENT_RATIO * out["spread"]["max"] and len(transients) < TRANSIENT_RETRIES:
        transients.append(out["peak"])
        out = measure()
    return {**out, "transients": transients}


def summary(measured: dict) -> dict:
    """What a record keeps of a measurement: the peak, its spread and when and under what load."""
    s = measured["spread"]
    return {
        "flops": measured["peak"],
        "min": s["min"],
        "max": s["max"],
        "n": s["n"],
        "measured_at": measured.get("measured_at")
        or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load": measured.get("load"),
        "transients": measured.get("transients", []),  # medians of runs measured again (steady_peak)
    }


# ---- the cache -----------------------------------------------------------------------------------
def _settings(device: str) -> dict:
    """How the peak is measured by default (part of the cache key: a change re-measures)."""
    if os.environ.get("LIT_ALGOS_PEAK_QUICK", "") not in ("", "0"):
        return dict(QUICK)
    return {
        "sizes": list(PEAK_SIZES["cuda" if device == "cuda" else "cpu"]),
        "repeats": REPEATS,
        "window_s": WINDOW_S,
    }


def cache_file(device: str = "cpu", cache_dir=None) -> Path:
    """One file per host (its name and CPU identity), torch version, device, torch thread count
    and measurement settings.

    The host name is part of the key (hashed, never stored): two machines that report the same
    CPU can differ 2.5x in matmul rate, so a shared home directory must not share their peaks."""
    ident = cpu_identity()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else ""
    key = json.dumps(
        [
            CACHE_VERSION,
            socket.gethostname(),
            ident,
            torch.__version__,
            device,
            gpu,
            torch.get_num_threads(),
            _settings(device),
        ],
        sort_keys=True,
    )
    return (
        cache_root(cache_dir) / PEAK_CACHE / f"{device}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    )


def store_peaks(peaks: dict[str, dict], device: str = "cpu", cache_dir=None) -> dict[str, dict]:
    """Keep measured peaks (``sustained_peak`` results by kind) for later runs on this host; returns their summaries."""
    kept = {kind: summary(m) for kind, m in peaks.items()}
    try:
        atomic_write_json(cache_file(device, cache_dir), {"version": CACHE_VERSION, "peaks": kept})
    except OSError:
        pass  # a read-only cache only costs a measurement next time
    return kept


def cached_peaks(device: str = "cpu", cache_dir=None) -> dict[str, dict] | None:
    try:
        stored = json.loads(cache_file(device, cache_dir).read_text())
        peaks = stored["peaks"]
        if stored.get("version") == CACHE_VERSION and all(float(peaks[k]["flops"]) > 0 for k in KINDS):
            return peaks
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def measured_under_load(peaks: dict[str, dict], load: float | None = None) -> bool:
    """Whether cached peaks were measured while the host was busier than now by at least
    ``REFRESH_LOAD`` (1-minute load average): such a peak is low, and every MFU against it high."""
    load = _load() if load is None else load
    loads = [p.get("load") for p in peaks.values() if p.get("load") is not None]
    return load is not None and bool(loads) and min(loads) >= load + REFRESH_LOAD


def host_peaks(device: str = "cpu", cache_dir=None) -> dict[str, dict]:
    """This host's sustained fp32 and bf16 peaks (``summary`` dicts): cached, else measured now
    (seconds, once per host and thread count) and stored; measured again when the cached ones
    were measured under a clearly higher load than now (``measured_under_load``)."""
    peaks = cached_peaks(device, cache_dir)
    if peaks is None or measured_under_load(peaks):
        peaks = store_peaks({k: steady_peak(k, device=device) for k in KINDS}, device, cache_dir)
    return peaks


# ---- the peak MFU is computed against --------------------------------------------------------------
def kind_of(precision: str) -> str:
    return "bf16" if str(precision).startswith("bf16") else "fp32"


def peak_for(precision: str, peaks: dict[str, dict] | None, device_name: str) -> tuple[float | None, str]:
    """The per-device peak MFU is computed against and where it comes from: a known GPU's data
    sheet, else the measured peak of the precision's kind (``peaks``: summaries or measurements)."""
    key = canonical_device(device_name)
    if key is not None and PEAK_FLOPS.get(key):
        return peak_flops(device_name, precision), f"{key} data sheet"
    kind = kind_of(precision)
    if peaks and kind in peaks:
        p = peaks[kind]
        when = ", ".join(
            x for x in (p.get("measured_at"), f"load {p['load']}" if p.get("load") is not None else None) if x
        )
        return float(p.get("flops", p.get("peak"))), f"measured sustained {kind} matmul peak" + (
            f" ({when})" if when else ""
        )
    return None, "no peak"


def fingerprint_peaks(accelerator: str = "cpu", cached: bool = False) -> dict[str, dict] | None:
    """The peaks a host fingerprint records for the device that computes: this host's
    (``host_peaks``, measured once if none are cached), or with ``cached`` only cached ones."""
    device = "cuda" if accelerator in ("gpu", "cuda") and torch.cuda.is_available() else "cpu"
    return cached_peaks(device) if cached else host_peaks(device)


def device_peak(device_name: str, precision: str, accelerator: str = "cpu") -> tuple[float | None, str]:
    """Peak FLOP/s per device that MFU is computed against: a known GPU's data sheet, this CPU's
    sustained peak (``host_peaks``), or None for a GPU missing from the table."""
    key = canonical_device(device_name)
    if accelerator != "cpu" and not (key is not None and PEAK_FLOPS.get(key)):
        return None, f"no peak for {device_name!r} in lit_algos.flops.PEAK_FLOPS"
    return peak_for(precision, None if accelerator != "cpu" else host_peaks("cpu"), device_name)
