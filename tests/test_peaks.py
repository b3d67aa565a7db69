"""Peak FLOP/s per device and the one MFU (no timing asserts)."""

from __future__ import annotations

import pytest

from lit_algos import peaks


def test_mfu_is_achieved_over_peak_times_devices():
    assert peaks.mfu(5e10, 1e11) == 0.5
    assert peaks.mfu(5e10, 1e11, devices=2) == 0.25
    assert peaks.mfu(5e10, None) is None and peaks.mfu(None, 1e11) is None


def test_matmul_peak_reports_each_size():
    peak = peaks.matmul_peak("fp32", sizes=(32, 64), repeats=2)
    assert set(peak["per_size"]) == {32, 64} and peak["peak"] == max(peak["per_size"].values()) > 0


def test_peak_for_uses_table_on_known_gpus_and_measured_on_cpu():
    measured = {"fp32": {"peak": 1e11}, "bf16": {"peak": 1e9}}
    assert peaks.peak_for("32-true", measured, "cpu") == (1e11, "measured fp32 matmul peak")
    assert peaks.peak_for("bf16-mixed", measured, "cpu")[0] == 1e9
    value, source = peaks.peak_for("bf16-mixed", None, "NVIDIA H100 80GB HBM3")
    assert value == pytest.approx(989.4e12) and "data sheet" in source


def test_cpu_peak_is_measured_once_then_read_back(tmp_path, monkeypatch):
    measured = []
    fake = {"dtype": "fp32", "per_size": {8: 2e9}, "peak": 2e9}
    monkeypatch.setattr(peaks, "matmul_peak", lambda *a, **k: measured.append(1) or fake)
    first, source = peaks.cpu_peak("fp32", cache_dir=tmp_path)
    again, stored = peaks.cpu_peak("fp32", cache_dir=tmp_path)
    assert first == again == 2e9 and len(measured) == 1
    assert "(now)" in source and "(now)" not in stored
