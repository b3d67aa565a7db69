"""The host fingerprint: what a run's seconds mean.

Two "2-core AMD EPYC" hosts can differ by 10x in bf16 matmul speed (one has AVX-512-BF16 / AMX,
the other only AVX2), so a core count says little. Every run records the CPU model, the
instruction-set flags that decide matmul speed, the cores and torch threads it used, the
accelerator name and count and the torch version (``record.hardware["host"]``). The leaderboard
compares seconds only through a same-machine reference (``lit_algos.leaderboard.speedrun``) and,
on GPU tracks, only between runs with the exact same hardware string.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

# The flags that decide CPU matmul throughput, fastest first.
ISA_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")


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


def host_fingerprint(accelerator: str = "cpu", n_devices: int = 1) -> dict:
    """CPU model and ISA flags, cores and threads used, accelerator name/count, torch version."""
    info = _cpuinfo()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = accelerator in ("gpu", "cuda") and torch.cuda.is_available()
    return {
        "cpu_model": info.get("model name") or platform.processor() or platform.machine(),
        "isa": cpu_flags(info),
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "accelerator": "cuda" if gpu else "cpu",
        "accelerator_name": torch.cuda.get_device_name(0) if gpu else None,
        "accelerator_count": n_devices if gpu else 0,
        "torch": torch.__version__,
    }


def host_string(host: dict | None) -> str:
    """One line naming a host: '2x AMD EPYC [avx2] 2 threads' or '8x NVIDIA H100 80GB HBM3'."""
    if not host:
        return "unknown host"
    if host.get("accelerator_name"):
        return f"{host.get('accelerator_count', 1)}x {host['accelerator_name']}"
    isa = ",".join(host.get("isa") or []) or "no avx2"
    return f"{host.get('cores')}-core {host.get('cpu_model')} [{isa}] {host.get('torch_threads')} threads"


def same_host(a: dict | None, b: dict | None) -> bool:
    """Hosts whose seconds are comparable: same CPU model, ISA flags, threads and accelerator.

    The one place that decides "is this the same machine as the record's?": the same-machine
    reference of a board entry (``leaderboard.speedrun``) and ``lit-algos verify``'s time
    judgement (``leaderboard.verify.judge_time``) both ask it, so a finer fingerprint (e.g.
    measured matmul peaks) changes both at once."""
    keys = ("cpu_model", "isa", "torch_threads", "accelerator_name", "accelerator_count")
    return bool(a) and bool(b) and all(a.get(k) == b.get(k) for k in keys)
