"""What the multi-process tests share: the CLI in a child process, and the curve comparison."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lit_algos.records import RunRecord

from .conftest import REPO

# 1 process vs 2 (DDP, FSDP, srun, two "nodes") on the debug recipe, 64 steps, 2026-12-03: the
# largest difference was 9.5e-7 in the training loss (1.8e-7 relative) and 2.7e-7 in the
# validation loss: float32 summation order (docs/measurements/distributed.md). Asserted: 1e-5.
CURVE_TOLERANCE = 1e-5


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI child: this interpreter's bin on PATH, unbuffered, 1 thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PMI_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def lit_algos(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lit_algos", *args],
        cwd=REPO,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def only_record(runs: Path) -> RunRecord:
    """The one run under ``runs`` (several processes of one run must write one run directory)."""
    paths = list(Path(runs).glob("*/record.json"))
    assert len(paths) == 1, f"expected one run directory, found {[p.parent.name for p in paths]}"
    return RunRecord.load(paths[0])


def assert_same_curve(single: RunRecord, other: RunRecord) -> None:
    """The per-token curve of ``other`` is ``single``'s: same tokens at every step and evaluation,
    losses within CURVE_TOLERANCE."""
    assert [t for t, _ in other.train_curve] == [t for t, _ in single.train_curve]
    assert [p.tokens for p in other.curve] == [p.tokens for p in single.curve]
    assert [loss for _, loss in other.train_curve] == pytest.approx(
        [loss for _, loss in single.train_curve], abs=CURVE_TOLERANCE, rel=0
    )
    assert [p.val_loss for p in other.curve] == pytest.approx(
        [p.val_loss for p in single.curve], abs=CURVE_TOLERANCE, rel=0
    )
    assert other.config_hash == single.config_hash
