"""Sustained matmul peaks: the median over windows, the per-host cache, the peak MFU uses (no timing asserts)."""

from __future__ import annotations

import statistics

import pytest
import torch

from lit_algos import peaks
from lit_algos.flops import mfu


def test_sustained_peak_is_the_median_of_every_window():
    out = peaks.sustained_peak("fp32", sizes=(32, 48), repeats=3, window_s=0.001)
    windows = out["windows"]
    assert set(windows) == {32, 48} and all(len(w) == 3 for w in windows.values())
    every = [r for w in windows.values() for r in w]
    assert out["peak"] == statistics.median(every) and out["spread"]["n"] == 6
    assert out["spread"]["min"] == min(every) and out["spread"]["max"] == max(every)
    assert out["per_size"] == {n: statistics.median(w) for n, w in windows.items()}


def test_a_spent_budget_is_an_error_not_a_zero_peak():
    with pytest.raises(RuntimeError, match="no bf16 matmul window"):
        peaks.sustained_peak("bf16", sizes=(32,), repeats=2, window_s=0.001, budget_s=-1)


@pytest.fixture(autouse=True)
def steady_load(monkeypatch):
    """A constant load average: whether cached peaks are measured again depends on it."""
    monkeypatch.setattr(peaks, "_load", lambda: 0.5)


def _fake_measure(calls):
    def measure(kind, **kwargs):
        calls.append(kind)
        rate = {"fp32": 1e11, "bf16": 3e11}[kind]
        return {
            "peak": rate,
            "spread": {"min": rate * 0.99, "max": rate * 1.01, "n": 15},
            "load": peaks._load(),
        }

    return measure


def test_host_peaks_are_measured_once_per_thread_count(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(peaks, "sustained_peak", _fake_measure(calls))
    first = peaks.host_peaks(cache_dir=tmp_path)
    assert calls == ["fp32", "bf16"] and first["bf16"]["flops"] == 3e11 and first["fp32"]["n"] == 15
    assert peaks.host_peaks(cache_dir=tmp_path) == first and len(calls) == 2  # from the cache
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        peaks.host_peaks(cache_dir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 4  # another thread count: measured again
    monkeypatch.setenv("LIT_ALGOS_PEAK_QUICK", "0")  # other measurement settings: their own entry
    peaks.host_peaks(cache_dir=tmp_path)
    assert len(calls) == 6


def test_peaks_measured_under_a_higher_load_than_now_are_measured_again(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(peaks, "sustained_peak", _fake_measure(calls))
    peaks.store_peaks({k: {**_fake_measure([])(k), "load": 3.0} for k in peaks.KINDS}, cache_dir=tmp_path)
    assert peaks.measured_under_load(peaks.cached_peaks(cache_dir=tmp_path))
    assert peaks.host_peaks(cache_dir=tmp_path)["bf16"]["load"] == 0.5 and len(calls) == 2
    assert peaks.host_peaks(cache_dir=tmp_path) and len(calls) == 2  # now measured at today's load: kept
    assert not peaks.measured_under_load({"bf16": {"load": 1.2}}, load=0.5)  # within one busy process


def test_a_corrupt_or_old_cache_file_is_measured_again(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(peaks, "sustained_peak", _fake_measure(calls))
    path = peaks.cache_file("cpu", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"peak": 12.0, "measured_at": "2026-01-01"}')  # issue 26's format
    assert peaks.host_peaks(cache_dir=tmp_path)["fp32"]["flops"] == 1e11 and len(calls) == 2


def test_peak_for_uses_the_data_sheet_on_known_gpus_and_the_measured_peak_on_cpu():
    measured = {
        "fp32": {"flops": 1e11, "measured_at": "2026-12-03T10:00", "load": 0.4},
        "bf16": {"flops": 3e11},
    }
    value, source = peaks.peak_for("32-true", measured, "cpu")
    assert value == 1e11 and source == "measured sustained fp32 matmul peak (2026-12-03T10:00, load 0.4)"
    assert peaks.peak_for("bf16-mixed", measured, "cpu")[0] == 3e11
    value, source = peaks.peak_for("bf16-mixed", None, "NVIDIA H100 80GB HBM3")
    assert value == pytest.approx(989.4e12) and "data sheet" in source
    assert peaks.peak_for("32-true", None, "cpu") == (None, "no peak")


def test_device_peak_on_cpu_is_the_cached_host_peak(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_ALGOS_CACHE", str(tmp_path))
    monkeypatch.setattr(peaks, "sustained_peak", _fake_measure([]))
    assert peaks.device_peak("cpu", "bf16-mixed")[0] == 3e11
    assert peaks.device_peak("Some Unknown GPU", "bf16-mixed", "gpu")[0] is None


def test_mfu_is_model_flops_over_the_peak_of_all_devices():
    assert mfu(50.0, 100.0) == 0.5 and mfu(50.0, 100.0, devices=2) == 0.25
    assert mfu(50.0, None) is None and mfu(None, 100.0) is None and mfu(0.0, 100.0) == 0.0


def _run(median: float, best: float) -> dict:
    return {"peak": median, "spread": {"max": best}}


@pytest.mark.parametrize(
    "runs, kept, transients",
    [
        ([_run(380, 400)], 380, []),  # a steady run: measured once
        ([_run(208, 395), _run(375, 402)], 375, [208]),  # half the machine gone for one run
        ([_run(200, 400)] * 3 + [_run(390, 400)], 200, [200, 200]),  # at most two retries
        ([_run(138, 183)], 138, []),  # fp32's wide but steady spread (0.75 of its best) is kept
    ],
)
def test_a_run_far_below_its_own_best_window_is_measured_again(runs, kept, transients):
    queue = iter(runs)
    out = peaks.steady_peak("bf16", measure=lambda: next(queue))
    assert out["peak"] == kept and out["transients"] == transients


def test_the_peak_line_says_when_a_run_was_measured_again():
    from lit_algos.cli.job_cmds import _peak_line

    kept = {"flops": 3.75e11, "min": 3.4e11, "max": 4.0e11, "n": 24, "measured_at": "t", "load": 0.1}
    measured = {"per_size": {1024: 3.7e11}, "seconds": 6.0, "transients": [2.08e11]}
    assert "measured again after a run at 208.0 GFLOP/s" in _peak_line("bf16", kept, measured)
    assert "measured again" not in _peak_line("bf16", kept, {**measured, "transients": []})
