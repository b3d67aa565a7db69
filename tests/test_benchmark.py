"""The benchmark's machinery: alternating rounds, spreads and the plain loop (no timing asserts)."""

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


def test_plain_loop_trains_the_recipe(data_cache):
    out = bench.plain_loop("debug", [], steps=2)
    assert out["steps"] == 2 and out["tokens_per_s"] > 0 and out["precision"] == "32-true"


def test_ab_rows_run_the_recipe_with_a_config_override(monkeypatch):
    """A before/after toggle is a config override of the benchmark (--ab KEY=VALUE), not an
    environment variable: its row runs the recipe with the override appended."""
    calls = []
    monkeypatch.setattr(bench, "lightning_round", lambda r, o, s: calls.append((r, list(o), s)) or {})
    jobs = bench.benchmark_jobs(["debug"], ["train.batch_size=4"], 3, ab=["train.chunked_loss=false"])
    assert list(jobs) == ["debug", "debug [train.chunked_loss=false]"]
    for job in jobs.values():
        job()
    assert calls == [
        ("debug", ["train.batch_size=4"], 3),
        ("debug", ["train.batch_size=4", "train.chunked_loss=false"], 3),
    ]


@pytest.mark.parametrize(
    "toggle, hint",
    [("LIT_ALGOS_CHUNKED_CE=0", "--ab train.chunked_loss=false"), ("LIT_ALGOS_NS_BF16=0", "optim.muon_ns_dtype"),
     ("LIT_ALGOS_BATCHED_NS=0", "only one left"), ("chunked", "key.path=value")],
)  # fmt: skip
def test_a_retired_environment_toggle_names_its_config_option(toggle, hint):
    from lit_algos.errors import LitAlgosError

    with pytest.raises(LitAlgosError, match=hint.replace(".", r"\.").replace("-", r"\-")):
        bench.benchmark_jobs(["debug"], [], 3, ab=[toggle])


def test_rows_get_their_mfu_from_the_one_mfu():
    summary = {
        "a": {"precision": "32-true", "flop_per_s": {"median": 5e10, "min": 4e10, "max": 6e10, "n": 3}}
    }
    (row,) = bench.with_mfu(summary, {"fp32": {"peak": 1e11}}, "cpu")
    assert row["mfu"] == {"median": 0.5, "min": 0.4, "max": 0.6}
    assert row["peak_source"] == "measured sustained fp32 matmul peak"


def test_startup_pairs_rounds_and_subtracts_the_import(monkeypatch):
    imports, trains = iter([5.0, 6.0, 4.0]), iter([6.5, 6.8, 5.9])
    monkeypatch.setattr(bench, "import_round", lambda: {"seconds": next(imports)})
    monkeypatch.setattr(bench, "startup_round", lambda r, o: {"seconds": next(trains), "header_seconds": 1.0})
    order = []
    out = bench.startup("debug", rounds=3, on_round=lambda r, name, o: order.append(name))
    assert order == ["import lightning", "train debug", "train debug", "import lightning"] + order[:2]
    # paired by round: 6.5-5.0, 6.8-6.0, 5.9-4.0 -> 1.5, 0.8, 1.9
    assert out["beyond_import"]["median"] == pytest.approx(1.5) and out["beyond_import"]["n"] == 3
    assert out["import"]["median"] == 5.0 and out["train"]["max"] == 6.8 and out["header"]["median"] == 1.0


def test_startup_round_times_a_real_run_to_its_first_step(data_cache, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = bench.startup_round("debug")
    assert 0 < out["header_seconds"] < out["seconds"]
