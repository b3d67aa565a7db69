"""The host fingerprint: what a run's seconds mean.

Two "2-core AMD EPYC" hosts can differ by 10x in bf16 matmul speed (one has AVX-512-BF16 / AMX,
the other only AVX2), and two with the same model name, family, model and ISA flags were
measured 2.5-2.9x apart in sustained bf16 matmul rate (issue 29). So every run records
(``record.hardware["host"]``) the CPU's model name, vendor, family / model / stepping and clock,
the instruction-set flags that decide matmul speed, the cores and torch threads it used, the
accelerator name and count, the torch version, and the host's **measured sustained fp32 and
bf16 matmul peaks** (``lit_algos.peaks``, measured once per host and thread count and cached).

``same_host`` is the one judgement of "the same machine" (a board entry's same-machine reference,
``lit-algos verify``'s time judgement): the same identity, and peaks within ``PEAK_TOLERANCE``.
On GPU tracks the board compares only runs with the exact same hardware string.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

# The flags that decide CPU matmul throughput, fastest first.
ISA_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")
# Two hosts whose measured peaks (of either kind) differ by more than this fraction are different machines.
PEAK_TOLERANCE = 0.20
# /proc/cpuinfo keys naming the CPU exactly: x86 (vendor_id, cpu family, model, stepping) and ARM.
_ID_KEYS = {
    "vendor": ("vendor_id", "CPU implementer"),
    "family": ("cpu family", "CPU architecture"),
    "model": ("model", "CPU part"),
    "stepping": ("stepping", "CPU revision"),
}


def _cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo (empty off Linux)."""
    out: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def cpu_flags(info: dict[str, str] | None = None) -> list[str]:
    """Which of ``ISA_FLAGS`` the CPU reports (x86 ``flags`` or ARM ``Features``)."""
    info = _cpuinfo() if info is None else info
    present = set((info.get("flags") or info.get("Features") or "").split())
    return [f for f in ISA_FLAGS if f in present]


def cpu_identity(info: dict[str, str] | None = None) -> dict[str, str | None]:
    """Vendor, family, model and stepping as the kernel reports them (x86 or ARM keys; None when absent)."""
    info = _cpuinfo() if info is None else info
    return {name: next((info[k] for k in keys if k in info), None) for name, keys in _ID_KEYS.items()}


def cpu_clock_mhz(info: dict[str, str] | None = None) -> float | None:
    """The CPU's maximum clock (cpufreq) where the kernel exposes it, else the clock /proc/cpuinfo
    reports (a VM's nominal clock; on bare metal a momentary one). Recorded, not compared: the
    measured peaks say what the clock delivers."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000
    except (OSError, ValueError):
        pass
    info = _cpuinfo() if info is None else info
    try:
        return float(info["cpu MHz"])
    except (KeyError, ValueError):
        return None


def host_fingerprint(accelerator: str = "cpu", n_devices: int = 1, peaks: dict | None = None) -> dict:
    """CPU identity, clock and ISA flags, cores and threads used, accelerator name/count, torch
    version and, when given, the sustained matmul peaks of the device that computes (``peaks``:
    ``lit_algos.peaks.fingerprint_peaks``; this module sits below it and does not measure)."""
    info = _cpuinfo()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = accelerator in ("gpu", "cuda") and torch.cuda.is_available()
    host = {
        "cpu_model": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_id": cpu_identity(info),
        "clock_mhz": cpu_clock_mhz(info),
        "isa": cpu_flags(info),
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "accelerator": "cuda" if gpu else "cpu",
        "accelerator_name": torch.cuda.get_device_name(0) if gpu else None,
        "accelerator_count": n_devices if gpu else 0,
        "torch": torch.__version__,
    }
    if peaks:
        host["peaks"] = peaks
    return host


def peak_text(host: dict | None) -> str:
    """'bf16 338, fp32 169 GFLOP/s' from a fingerprint's measured peaks ('' without them)."""
    peaks = (host or {}).get("peaks") or {}
    parts = [
        f"{k} {peaks[k]['flops'] / 1e9:,.0f}" for k in ("bf16", "fp32") if (peaks.get(k) or {}).get("flops")
    ]
    return f"{', '.join(parts)} GFLOP/s" if parts else ""


def host_string(host: dict | None) -> str:
    """One line naming a host: '2-core AMD EPYC [avx2] 2 threads; bf16 40, fp32 160 GFLOP/s' or
    '8x NVIDIA H100 80GB HBM3' (a GPU is named by its accelerator alone: exact-hardware tracks
    compare this string)."""
    if not host:
        return "unknown host"
    if host.get("accelerator_name"):
        return f"{host.get('accelerator_count', 1)}x {host['accelerator_name']}"
    isa = ",".join(host.get("isa") or []) or "no avx2"
    text = f"{host.get('cores')}-core {host.get('cpu_model')} [{isa}] {host.get('torch_threads')} threads"
    peaks = peak_text(host)
    return f"{text}; {peaks}" if peaks else text


def host_details(host: dict | None) -> str:
    """``host_string`` plus the CPU identity and clock, and a note when no peaks were measured
    (the board's hardware column)."""
    text = host_string(host)
    if not host or host.get("accelerator_name"):
        return text
    ident = host.get("cpu_id") or {}
    parts = [f"{k} {ident[k]}" for k in ("vendor", "family", "model", "stepping") if ident.get(k)]
    if host.get("clock_mhz"):
        parts.append(f"{host['clock_mhz']:,.0f} MHz")
    if parts:
        text += f" ({', '.join(parts)})"
    if not peak_text(host):
        text += "; matmul peaks not measured (a fingerprint from before issue 29)"
    return text


def peaks_agree(a: dict | None, b: dict | None, tolerance: float = PEAK_TOLERANCE) -> bool:
    """Whether two fingerprints' measured peaks agree within ``tolerance`` for every kind both have."""
    pa, pb = (h.get("peaks") or {} for h in (a or {}, b or {}))
    common = [k for k in pa if k in pb and (pa[k] or {}).get("flops") and (pb[k] or {}).get("flops")]
    for k in common:
        x, y = float(pa[k]["flops"]), float(pb[k]["flops"])
        if max(x, y) > (1 + tolerance) * min(x, y):
            return False
    return bool(common)


def same_host(a: dict | None, b: dict | None) -> bool:
    """Hosts whose seconds are comparable: same CPU (model name, identity where both record it),
    ISA flags, threads and accelerator, and measured matmul peaks within ``PEAK_TOLERANCE``.

    The one place that decides "is this the same machine as the record's?": the same-machine
    reference of a board entry (``leaderboard.speedrun``) and ``lit-algos verify``'s time
    judgement (``leaderboard.verify.judge_time``) both ask it. Fingerprints made before peaks
    were recorded (issue 29) are compared as they were then (model name, flags, threads,
    accelerator) among themselves; one with peaks and one without are never the same machine,
    since the older fingerprint cannot tell two such hosts apart."""
    if not a or not b:
        return False
    keys = ("cpu_model", "isa", "torch_threads", "accelerator_name", "accelerator_count")
    if any(a.get(k) != b.get(k) for k in keys):
        return False
    if a.get("cpu_id") and b.get("cpu_id") and a["cpu_id"] != b["cpu_id"]:
        return False
    measured = [bool(h.get("peaks")) for h in (a, b)]
    if not any(measured):
        return True  # two fingerprints from before issue 29: the comparison they were made under
    return all(measured) and peaks_agree(a, b)
