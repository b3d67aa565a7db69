"""Precision that fits the host: bf16 only where it is native, fp32 with a warning otherwise."""

from __future__ import annotations

import pytest

import lit_algos.precision as precision
from lit_algos.precision import native_bf16, resolve_precision


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(precision.OVERRIDE_ENV, raising=False)


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        (["avx2"], False),
        (["avx512f", "avx2"], False),
        (["avx512_bf16", "avx512f"], True),
        (["amx_bf16", "amx_tile"], True),
    ],
)
def test_native_bf16_from_cpu_flags(flags, native):
    assert native_bf16("cpu", flags) is native


def test_bf16_falls_back_to_fp32_without_native_bf16():
    ran, reason = resolve_precision("bf16-mixed", "cpu", ["avx2"])
    assert ran == "32-true" and "avx512_bf16" in reason and "bf16-mixed" in reason
    assert resolve_precision("bf16-mixed", "cpu", ["avx512_bf16"]) == ("bf16-mixed", None)
    assert resolve_precision("32-true", "cpu", ["avx2"]) == ("32-true", None)
    assert resolve_precision("16-mixed", "cpu", ["amx_bf16"])[0] == "32-true"  # no CPU fp16 kernels


def test_override_runs_what_was_asked(monkeypatch):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "asked")
    assert resolve_precision("bf16-mixed", "cpu", ["avx2"]) == ("bf16-mixed", None)


def test_gpu_asks_torch(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("bf16-mixed", "gpu")[0] == "32-true"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("bf16-mixed", "gpu") == ("bf16-mixed", None)


def test_run_record_states_asked_and_ran(data_cache, tmp_path, monkeypatch):
    """A bf16-mixed debug run on a host whose flags lack bf16 runs in fp32, warns and records both."""
    from lit_algos.config.recipes import load_config
    from lit_algos.errors import LitAlgosWarning
    from lit_algos.training.run import train

    monkeypatch.setattr(precision, "cpu_flags", lambda info=None: ["avx2"])
    cfg = load_config(
        "debug", ["train.precision=bf16-mixed", "train.max_tokens=4096", "train.target_loss=null"]
    )
    with pytest.warns(LitAlgosWarning, match="no native bf16"):
        record = train(cfg, runs_dir=tmp_path, progress=False)
    assert record.hardware["precision"]["requested"] == "bf16-mixed"
    assert record.hardware["precision"]["ran"] == "32-true"
    assert record.config["train"]["precision"] == "bf16-mixed"  # the config (and its hash) is what was asked
