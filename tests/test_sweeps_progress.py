"""Sweep progress (lit_algos.sweeps.progress): ETA from measured throughput, a line per evaluation."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from lit_algos.sweeps import RunSpec, plan_sweep
from lit_algos.sweeps.progress import SweepProgress, _duration
from tests.sweep_fixtures import fake_run


def _tracker(tmp_path, specs, **kwargs):
    plans = plan_sweep(specs, runs_dir=tmp_path)
    out = io.StringIO()
    tracker = SweepProgress(plans, plans, tmp_path, console=Console(file=out, width=200), **kwargs)
    return plans, tracker, out


def test_eta_before_any_evaluation_is_the_plans_estimate_or_unknown(tmp_path):
    specs = [RunSpec("a", "debug"), RunSpec("b", "debug", seed=1)]
    plans, tracker, _ = _tracker(tmp_path, specs, workers=2)
    assert tracker.eta() == (None, "")  # no past run on this machine: unknown, not guessed
    for plan in plans:
        plan.est_seconds = 100.0
    assert tracker.eta() == (pytest.approx(100.0), "est.")  # two workers side by side
    assert tracker.eta_text() == "1m40s (est.)"


def test_eta_from_the_measured_flop_rate(tmp_path):
    spec = RunSpec("a", "debug")  # 16384 budget tokens
    (plan,), tracker, out = _tracker(tmp_path, [spec])
    tracker.t0 = time.time() - 10.0
    tracker.started(plan)
    fake_run(tmp_path, spec, "running", evals=2)  # 2048 tokens done in the 10 s since the start
    tracker.poll(force=True)
    seconds, how = tracker.eta()
    assert how == "measured"
    assert seconds == pytest.approx((16384 - 2048) / 2048 * 10.0, rel=0.05)


def test_one_line_per_evaluation_when_piped(tmp_path):
    spec = RunSpec("a", "debug")
    (plan,), tracker, out = _tracker(tmp_path, [spec])
    tracker.start()
    tracker.started(plan)
    fake_run(tmp_path, spec, "running", evals=2)
    tracker.poll(force=True)
    tracker.poll(force=True)  # nothing new: no new lines
    fake_run(tmp_path, spec, "running", evals=3)
    tracker.poll(force=True)
    fake_run(tmp_path, spec, "budget_exhausted", evals=4)
    tracker.finished(plan, ok=True)
    lines = out.getvalue().splitlines()
    evals = [line for line in lines if " eval " in line]
    assert [line.split(" eval ")[1].split(":")[0] for line in evals] == ["1", "2", "3", "4"]
    assert "step 4," in evals[0] and "val loss 5.9000" in evals[0] and "ETA" in evals[0]
    assert lines[-1].startswith("[1/1 done] a seed 0: budget_exhausted")


def test_durations():
    assert _duration(None) == "unknown"
    assert _duration(59.6) == "1m00s"
    assert _duration(3 * 3600 + 120) == "3h02m"
