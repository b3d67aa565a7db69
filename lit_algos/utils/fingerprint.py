"""Where a run came from: code commit, hardware and software versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

import lit_algos
from lit_algos.hardware import host_fingerprint


def code_fingerprint() -> dict:
    """The git commit of the lit_algos checkout and whether it had uncommitted changes."""
    root = Path(lit_algos.__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "version": lit_algos.__version__,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_fingerprint(
    accelerator: str, n_devices: int, num_nodes: int = 1, peaks: dict | None = None
) -> dict:
    """Device kind and count; ``class`` is what leaderboard tracks compare (e.g. '2-core CPU', '8xH100');
    ``host``: the host fingerprint, with the measured matmul peaks given (``lit_algos.peaks.fingerprint_peaks``)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if accelerator == "gpu" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        short = name.replace("NVIDIA ", "").split(" ")[0]
        klass = f"{n_devices * num_nodes}x{short}"
    else:
        name = _cpu_name()
        klass = f"{cores}-core CPU"
    return {
        "accelerator": accelerator,
        "device_name": name,
        "n_devices": n_devices,
        "num_nodes": num_nodes,
        "cpu": _cpu_name(),
        "cpu_cores": cores,
        "class": klass,
        "host": host_fingerprint(
            accelerator, n_devices, peaks
        ),  # CPU identity, ISA, threads, peaks (lit_algos.hardware)
    }


def software_fingerprint() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": metadata.version("lightning"),  # Lightning's version without importing it (seconds)
        "lit_algos": lit_algos.__version__,
        "platform": platform.platform(),
    }
