"""The benchmark's machinery: alternating rounds, spreads, the plain loop and the peak (no timing asserts)."""

from __future__ import annotations

import itertools

import pytest

from lit_algos import benchmark as bench


def test_round_order_alternates():
    assert bench.round_order(["a", "b", "c"], 3) == [["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]]


def test_spread_known_answer():
    s = bench.spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s["median"], s["min"], s["max"], s["q1"], s["q3"], s["n"]) == (3.0, 1.0, 5.0, 2.0, 4.0, 5)
    assert bench.spread([7.0])["q1"] == 7.0


def test_compare_runs_jobs_in_abba_order_and_summarises():
    calls = []
    counter = itertools.count(1)

    def job(name):
        def run():
            calls.append(name)
            return {
                "tokens_per_s": 100.0 * next(counter),
                "step_s": 0.5,
                "flops_per_token": 2.0,
                "precision": "32-true",
            }

        return run

    out = bench.compare({"a": job("a"), "b": job("b")}, rounds=2)
    assert calls == ["a", "b", "b", "a"]
    assert out["a"]["tokens_per_s"]["median"] == 250.0  # rounds 100 and 400
    assert out["b"]["flop_per_s"]["max"] == 600.0  # 300 tokens/s x 2 FLOPs/token
    assert len(out["a"]["rounds"]) == 2 and out["a"]["precision"] == "32-true"


def test_matmul_peak_reports_each_size():
    peak = bench.matmul_peak("fp32", sizes=(32, 64), repeats=2)
    assert set(peak["per_size"]) == {32, 64} and peak["peak"] == max(peak["per_size"].values()) > 0


def test_peak_for_uses_table_on_known_gpus_and_measured_on_cpu():
    measured = {"fp32": {"peak": 1e11}, "bf16": {"peak": 1e9}}
    assert bench.peak_for("32-true", measured, "cpu") == (1e11, "measured fp32 matmul peak")
    assert bench.peak_for("bf16-mixed", measured, "cpu")[0] == 1e9
    value, source = bench.peak_for("bf16-mixed", None, "NVIDIA H100 80GB HBM3")
    assert value == pytest.approx(989.4e12) and "data sheet" in source


def test_plain_loop_trains_the_recipe(data_cache):
    out = bench.plain_loop("debug", [], steps=2)
    assert out["steps"] == 2 and out["tokens_per_s"] > 0 and out["precision"] == "32-true"


def test_with_env_sets_and_restores(monkeypatch):
    import os

    monkeypatch.delenv("LIT_ALGOS_TEST_TOGGLE", raising=False)
    seen = bench.with_env("LIT_ALGOS_TEST_TOGGLE", "0", lambda: {"v": os.environ["LIT_ALGOS_TEST_TOGGLE"]})()
    assert seen == {"v": "0"} and "LIT_ALGOS_TEST_TOGGLE" not in os.environ
