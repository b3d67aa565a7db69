"""Shared test set-up: a data cache that lives for the whole session, W&B offline, quiet logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("LIT_ALGOS_NO_HUB_CHECK_WAIT", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """One cache for the session so the bundled corpus is tokenized once (CI points it at .cache/)."""
    path = Path(os.environ.get("LIT_ALGOS_CACHE") or tmp_path_factory.mktemp("cache"))
    os.environ["LIT_ALGOS_CACHE"] = str(path)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(path / "inductor"))
    return path


@pytest.fixture(scope="session")
def single_debug(data_cache, tmp_path_factory):
    """The debug recipe trained in one process (its record and run directory): the curve every
    multi-process launch must match."""
    from types import SimpleNamespace

    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train

    runs = tmp_path_factory.mktemp("single")
    record = train(load_config("debug", ["train.accelerator=cpu"]), runs_dir=runs, progress=False)
    return SimpleNamespace(record=record, run_dir=runs / record.run_id)
