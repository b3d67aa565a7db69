"""The sweep engine (lit_algos.sweeps.engine / runner): states, estimates, locks, dry run, and an
end-to-end kill-and-rerun that counts what was trained."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lit_algos.sweeps import RunSpec, plan_sweep
from lit_algos.sweeps.engine import SpecLock, measured_rates, pick_rate, read_journal
from tests.sweep_fixtures import fake_run

REPO = Path(__file__).resolve().parents[1]


def test_states_from_the_runs_directory(tmp_path):
    finished = RunSpec("done", "debug", seed=0)
    diverged = RunSpec("blown", "debug", ("optim.lr=1.0",), seed=0)
    stopped = RunSpec("stopped", "debug", seed=1)
    killed = RunSpec("killed", "debug", seed=2)
    early = RunSpec("early", "debug", seed=3)
    fresh = RunSpec("fresh", "debug", seed=4)
    fake_run(tmp_path, finished, "budget_exhausted")
    fake_run(tmp_path, diverged, "diverged")  # a result: never retrained
    fake_run(tmp_path, stopped, "interrupted", checkpoint=True)
    # "running" whose writer is gone (a pid that cannot exist) reads as interrupted
    fake_run(
        tmp_path, killed, "running", checkpoint=True, owner={"host": os.uname().nodename, "pid": 2**22 + 7}
    )
    fake_run(tmp_path, early, "failed", checkpoint=False)  # nothing to resume from: trained again
    plans = plan_sweep([finished, diverged, stopped, killed, early, fresh, finished], runs_dir=tmp_path)
    assert [p.state for p in plans] == [
        "finished",
        "finished",
        "interrupted",
        "interrupted",
        "missing",
        "missing",
    ]
    assert plans[0].run_dir == tmp_path / finished.spec_id() and plans[-1].run_dir is None
    assert plans[1].status == "diverged"


def test_budget_and_estimates_from_a_past_run_of_this_machine(tmp_path):
    from lit_algos.flops import estimate_flops

    past = RunSpec("past", "debug", seed=9)
    # 2 evaluations of 4 steps x 256 tokens at 10 s each: FLOP rate = flops(2048 tokens) / 20 s
    fake_run(tmp_path, past, "budget_exhausted", evals=2, seconds_per_eval=10.0)
    spec = RunSpec("new", "debug", ("train.max_tokens=8000",))
    (plan,) = plan_sweep([spec], runs_dir=tmp_path)
    fpt = estimate_flops(spec.config().model).per_token_train
    assert plan.budget_tokens == 32 * 256  # ceil(8000 / 256) steps of batch 8 x block 32
    assert plan.est_flops == pytest.approx(fpt * 32 * 256)
    rate = fpt * 2048 / 20.0
    assert plan.est_seconds == pytest.approx(plan.est_flops / rate)
    assert plan.rate_source == past.spec_id()
    # no past run of a comparable size: the time is unknown rather than guessed
    (big,) = plan_sweep([RunSpec("big", "retro")], runs_dir=tmp_path)
    assert big.est_flops > 0 and big.est_seconds is None


def test_rates_come_only_from_this_host(tmp_path):
    fake_run(
        tmp_path, RunSpec("elsewhere", "debug"), "budget_exhausted", owner={"host": "other-host", "pid": 1}
    )
    assert measured_rates(tmp_path) == []
    assert pick_rate([], 1e6) == (None, None)
    assert pick_rate([(1e6, 5.0, "a"), (1e8, 7.0, "b")], 2e6) == (5.0, "a")


def _hold_lock(runs_dir: Path, spec_id: str) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from lit_algos.sweeps.engine import SpecLock
        lock = SpecLock(Path({str(runs_dir)!r}), {spec_id!r})  # kept: a collected FileLock releases
        assert lock.acquire(timeout=0)
        print("held", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_held_by_a_live_process_blocks_and_a_dead_holders_lock_is_taken_over(tmp_path):
    proc = _hold_lock(tmp_path, "x-0-s0")
    try:
        lock = SpecLock(tmp_path, "x-0-s0")
        assert lock.held_elsewhere()
        assert not lock.acquire(timeout=0)
        assert lock.holder().endswith(f":{proc.pid}")
    finally:
        proc.kill()  # SIGKILL: no chance to release; the OS drops the lock with the process
        proc.wait()
    assert not lock.held_elsewhere()
    assert lock.acquire(timeout=0)
    lock.release()


def test_a_running_record_whose_lock_is_held_reads_running(tmp_path):
    spec = RunSpec("busy", "debug")
    fake_run(tmp_path, spec, "running", checkpoint=True, owner={"host": "node7", "pid": 1})
    proc = _hold_lock(tmp_path, spec.spec_id())
    try:
        assert plan_sweep([spec], runs_dir=tmp_path)[0].state == "running"
    finally:
        proc.kill()
        proc.wait()
    # the holder died (a lost node): nobody trains it, so it is interrupted and will be resumed
    assert plan_sweep([spec], runs_dir=tmp_path)[0].state == "interrupted"


def test_dry_run_builds_no_model_and_prepares_no_data(tmp_path, monkeypatch, capsys):
    import lit_algos.data
    import lit_algos.data.prepare
    import lit_algos.flops
    import lit_algos.model
    from lit_algos.cli import main

    def forbidden(*args, **kwargs):
        raise AssertionError("a dry run must not build models or prepare data")

    monkeypatch.setattr(lit_algos.model, "build_model", forbidden)
    monkeypatch.setattr(lit_algos.model.GPT, "__init__", forbidden)
    monkeypatch.setattr(lit_algos.data, "prepare_dataset", forbidden)
    monkeypatch.setattr(lit_algos.data.prepare, "prepare_dataset", forbidden)
    monkeypatch.setattr(lit_algos.flops, "measure_flops", forbidden)
    runs = tmp_path / "runs"
    assert main(["sweep", "scaling", "--runs-dir", str(runs), "--dry-run", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 * 3 * 2 and all(r["state"] == "missing" and r["est_flops"] > 0 for r in rows)
    assert main(["sweep", "ablation", "--components", "position", "--runs-dir", str(runs), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "retro+position seed 0" in out and "missing" in out
    assert not runs.exists() or not any(runs.glob("*/record.json"))


# ---- end to end: kill a sweep, rerun it, count the trainings --------------------------------------
SWEEP_SCRIPT = """
import sys
from pathlib import Path
from lit_algos.sweeps import RunSpec, run_sweep
specs = [
    RunSpec("short", "debug", ("train.max_tokens=8192",)),
    RunSpec("long", "debug", ("train.max_tokens=49152",)),
    RunSpec("third", "debug", ("train.max_tokens=16384",), seed=1),
]
run_sweep(specs, runs_dir=Path(sys.argv[1]), workers=2, progress=True)
"""


def _workers_of(runs: Path) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"lit_algos.sweeps.worker" in args and str(runs).encode() in args:
            pids.append(int(cmdline.parent.name))
    return pids


def _alive(pid: int) -> bool:
    """Not yet a zombie: a dying process holds its files (and locks) until it is one."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _records(runs: Path) -> dict[str, dict]:
    out = {}
    for path in runs.glob("*/record.json"):
        try:
            out[path.parent.name.split("-")[0]] = json.loads(path.read_text())
        except ValueError:
            pass  # being replaced right now
    return out


@pytest.mark.slow
def test_killed_sweep_resumes_without_training_anything_twice(data_cache, tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", SWEEP_SCRIPT, str(runs)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            recs = _records(runs)
            short, long = recs.get("short"), recs.get("long")
            long_ckpt = any(runs.glob("long-*/checkpoints/last.ckpt"))
            if (
                short
                and short["status"] == "budget_exhausted"
                and long
                and len(long["curve"]) >= 2
                and long_ckpt
            ):
                break
            assert proc.poll() is None, "the sweep ended before it could be killed mid-way"
            time.sleep(0.2)
        else:
            pytest.fail("the sweep did not reach the kill point in time")
    finally:
        # a crash: the sweep and every worker die at once (SIGKILL, no clean-up). The sweep first,
        # so it starts no new worker; then its workers (their command line names this runs dir).
        os.kill(proc.pid, signal.SIGKILL)
        workers = _workers_of(runs)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        end = time.time() + 30
        while any(_alive(pid) for pid in workers) and time.time() < end:  # kill is asynchronous
            time.sleep(0.1)
    before = _records(runs)
    # its writer was killed (running: kill -9 came first) or stopped by SIGTERM when the sweep died
    assert before["long"]["status"] in ("running", "interrupted")
    short_started = before["short"]["started_at"]
    first_events = len(read_journal(runs))

    plans = {p.name: p.state for p in plan_sweep_from_script(runs)}
    assert plans["short"] == "finished" and plans["long"] == "interrupted"

    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resuming long" in out.stdout and "eval" in out.stdout  # one line per evaluation when piped

    journal = read_journal(runs)
    second = journal[first_events:]

    def count(events, name, action):
        return sum(1 for e in events if e["spec_id"].startswith(name + "-") and e["action"] == action)

    assert count(journal, "short", "train") == 1 and not [
        e for e in second if e["spec_id"].startswith("short-")
    ]
    assert count(journal, "long", "train") == 1 and count(second, "long", "resume") == 1
    # the third run: whatever state the crash left it in decides, and it gets one action at most
    third = {"finished": (0, 0), "interrupted": (0, 1), "missing": (1, 0)}[plans["third"]]
    assert (count(second, "third", "train"), count(second, "third", "resume")) == third

    after = _records(runs)
    assert after["short"]["started_at"] == short_started  # not retrained
    assert all(r["status"] == "budget_exhausted" for r in after.values())
    long_curve = after["long"]["curve"]
    assert [p["step"] for p in long_curve] == list(range(16, 16 * 12 + 1, 16))  # continued, not restarted
    # threads split between the 2 workers: cores // 2 (at least 1) in every worker
    expected = max(1, len(os.sched_getaffinity(0)) // 2)
    trained = [e for e in journal if e["action"] in ("train", "resume")]
    assert {e["torch_threads"] for e in trained} == {expected}
    assert {e["omp_threads"] for e in trained} == {str(expected)}


def plan_sweep_from_script(runs: Path):
    namespace: dict = {}
    exec(SWEEP_SCRIPT.split("run_sweep(")[0].replace("import sys", ""), namespace)  # the same specs
    return plan_sweep(namespace["specs"], runs_dir=runs)


@pytest.mark.slow
def test_a_failed_run_is_reported_with_its_log_and_retried_on_rerun(tmp_path):
    from lit_algos.sweeps import SweepError, run_sweep

    spec = RunSpec("broken", "debug", ("data.corpus=no_such_corpus",))
    with pytest.raises(SweepError, match="1 of 1 runs failed") as info:
        run_sweep([spec], runs_dir=tmp_path, progress=False)
    assert "no_such_corpus" in str(info.value)  # the tail of the worker's log
    assert [e["action"] for e in read_journal(tmp_path)] == ["train", "error"]
    assert plan_sweep([spec], runs_dir=tmp_path)[0].state == "missing"  # nothing to resume: trained again
    dirs = run_sweep([spec], runs_dir=tmp_path, progress=False, allow_failures=True)
    assert list(dirs) == [spec.spec_id()]
    assert [e["action"] for e in read_journal(tmp_path)] == ["train", "error", "train", "error"]
