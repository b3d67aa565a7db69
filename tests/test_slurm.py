"""Sweeps and runs on a real SLURM cluster (one node; scripts/slurm-up.sh starts it): the README's
check sweep through submitit and sbatch, scancel mid-way and the same command again, a failing
job, and ``srun -n 2 lit-algos train``.

Skipped where no cluster answers; under ``CI=true`` that is a failure, so CI cannot skip them."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from lit_algos.records import FINISHED_STATUSES, RunRecord
from lit_algos.sweeps import RunSpec, run_sweep
from lit_algos.sweeps.engine import read_journal
from lit_algos.sweeps.runner import SweepError

from .conftest import REPO
from .distributed_helpers import assert_same_curve, cli_env, only_record

pytestmark = pytest.mark.slurm


@functools.cache
def cluster_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in out.stdout.split())


@pytest.fixture(autouse=True)
def slurm_cluster():
    if cluster_answers():
        return
    message = "no SLURM cluster answers here (sbatch, sinfo); start one with scripts/slurm-up.sh (as root)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the SLURM tests, but {message}")
    pytest.skip(message)


def readme_slurm_check() -> str:
    """The block the README's SLURM section says its users run first, exactly as written there."""
    text = (REPO / "README.md").read_text()
    assert "<!-- slurm-check:" in text, "the README lost its SLURM check block"
    block = re.search(r"```bash\n(.*?)```", text.split("<!-- slurm-check:", 1)[1], re.S)
    assert block and "--executor slurm" in block.group(1)
    return block.group(1)


def sweep_env(runs: Path) -> dict[str, str]:
    env = cli_env(LIT_ALGOS_RUNS=str(runs))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LIT_ALGOS_THREADS"):
        env.pop(var, None)  # threads must come from what SLURM gave each task
    return env


def wait_until_midway(runs: Path, proc: subprocess.Popen, log: Path, timeout: float = 300) -> set[str]:
    """Wait until a run is finished, a run that started after it has its first checkpoint, and every
    started, unfinished run has one; returns the finished runs' spec ids. (Runs of one array batch
    start together; one that starts after the first finished is far from its own end.)"""
    deadline = time.time() + timeout
    while True:
        events = read_journal(runs)
        done = {e["spec_id"]: e["time"] for e in events if e["action"] == "done"}
        trains = {e["spec_id"]: e["time"] for e in events if e["action"] == "train"}
        started = set(trains) - set(done)
        later = {s for s in started if done and trains[s] > min(done.values())}
        if later and all((runs / s / "checkpoints" / "last.ckpt").is_file() for s in started):
            return set(done)
        assert proc.poll() is None, f"the sweep ended before it could be cancelled:\n{log.read_text()}"
        assert time.time() < deadline, f"no run reached its first checkpoint in time:\n{log.read_text()}"
        time.sleep(0.2)


def unfinished_with_checkpoint(runs: Path) -> set[str]:
    out = set()
    for path in runs.glob("*/record.json"):
        record = RunRecord.load(path)
        if record.status not in FINISHED_STATUSES and (path.parent / "checkpoints" / "last.ckpt").is_file():
            out.add(path.parent.name)
    return out


@pytest.mark.slow
def test_the_readme_sweep_runs_through_sbatch_survives_scancel_and_resumes(data_cache, tmp_path):
    runs, log = tmp_path / "runs", tmp_path / "first.log"
    command, env = readme_slurm_check(), sweep_env(tmp_path / "runs")
    with log.open("w") as out:
        first = subprocess.Popen(
            ["bash", "-c", command], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        finished_first = wait_until_midway(runs, first, log)
        arrays = {e["job_id"].split("_")[0] for e in read_journal(runs) if e["action"] == "submit"}
        subprocess.run(["scancel", *sorted(arrays)], check=True)
        assert first.wait(timeout=180) != 0
    text = log.read_text()
    assert "ended without a result" in text and "log: " in text, text
    interrupted = unfinished_with_checkpoint(runs)
    assert interrupted, f"no run was cancelled mid-way:\n{text}"

    rerun_at = time.time()
    second = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stdout + second.stderr
    events = read_journal(runs)
    specs = {e["spec_id"] for e in events if e["action"] == "submit"}
    assert len(specs) == 4  # 2 sizes x 2 seeds
    assert all(RunRecord.load(runs / s / "record.json").status in FINISHED_STATUSES for s in specs)
    # nothing trained twice: one `train` per run over both commands
    assert Counter(e["spec_id"] for e in events if e["action"] == "train") == Counter(specs)
    resubmitted = {e["spec_id"] for e in events if e["action"] == "submit" and e["time"] >= rerun_at}
    assert not resubmitted & finished_first  # finished runs are skipped, not even submitted
    resumed = {e["spec_id"] for e in events if e["action"] == "resume" and e["time"] >= rerun_at}
    assert resumed == interrupted  # each run cancelled after a checkpoint continued from it
    # threads from SLURM (--slurm-cpus-per-task 1), not one per core of the node
    assert {e["torch_threads"] for e in events if e["action"] in ("train", "resume")} == {1}
    scripts = sorted(
        (runs / ".sweep" / "submitit").glob("*_submission.sh"), key=lambda p: int(p.name.split("_")[0])
    )
    first_array, rerun_array = (p.read_text() for p in scripts)  # one array per command
    assert "--array=0-3%2" in first_array  # 4 runs, at most 2 at once
    for script in (first_array, rerun_array):
        assert "--job-name=lit-algos-scaling" in script and "--requeue" in script


@pytest.mark.slow
def test_a_failing_job_is_reported_with_its_slurm_log_and_the_others_finish(data_cache, tmp_path):
    bad = tmp_path / "bad.yaml"  # its tokenizer has 512 tokens: only the job, after data prep, finds out
    bad.write_text("extends: debug\nmodel: {vocab_size: 256}\n")
    good = [RunSpec("good", "debug", ("train.max_tokens=8192",), seed) for seed in (0, 1)]
    specs = [good[0], RunSpec("bad", str(bad), ("train.max_tokens=8192",)), good[1]]
    slurm = {"time": 10, "cpus_per_task": 1}
    with pytest.raises(SweepError) as failure:
        run_sweep(specs, runs_dir=tmp_path / "runs", executor="slurm", slurm=slurm, progress=False)
    message = str(failure.value)
    assert "1 of 3 runs failed" in message and specs[1].spec_id() in message
    logs = re.findall(r"log: (\S+\.err)", message)
    assert len(logs) == 1 and "vocab_size" in Path(logs[0]).read_text()
    assert re.search(r"SLURM job \d+_1 failed: .*vocab_size", message)
    for spec in good:
        assert RunRecord.load(tmp_path / "runs" / spec.spec_id() / "record.json").status == "budget_exhausted"


@pytest.mark.slow
def test_srun_dash_n_2_trains_one_run_with_the_one_process_curve(single_debug, tmp_path):
    runs = tmp_path / "runs"
    env = sweep_env(runs)
    args = ["train", "debug", "--devices", "2", "--set", "train.accelerator=cpu", "--no-progress"]
    out = subprocess.run(
        ["srun", "-n", "2", "lit-algos", *args, "--runs-dir", str(runs)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    record = only_record(runs)
    assert record.world_size == 2 and record.hardware["host"]["torch_threads"] == 1  # 2 CPUs, 2 tasks
    assert_same_curve(single_debug.record, record)
    # rank 0 alone prints: its header line ("run ID | folder ...") and its summary (titled "run ID")
    assert out.stdout.count(f"run {record.run_id} | folder") == 1
    assert out.stdout.count(f"run {record.run_id}") == 2


@pytest.mark.slow
def test_a_two_device_run_in_a_slurm_sweep_is_one_job_of_two_tasks_and_one_record(single_debug, tmp_path):
    """One task per device (--ntasks-per-node 2), joined by Lightning's SLURMEnvironment; rank 1
    decides nothing and writes nothing of its own."""
    runs = tmp_path / "runs"
    spec = RunSpec("ddp2", "debug", ("train.devices=2", "train.strategy=ddp", "train.accelerator=cpu"))
    dirs = run_sweep(
        [spec], runs_dir=runs, executor="slurm", slurm={"time": 10, "cpus_per_task": 1}, progress=False
    )
    record = RunRecord.load(dirs[spec.spec_id()] / "record.json")
    assert record.world_size == 2 and record.status == "budget_exhausted"
    assert_same_curve(single_debug.record, record)
    assert [e["action"] for e in read_journal(runs)] == ["submit", "train", "done"]
    (script,) = (runs / ".sweep" / "submitit").glob("*_submission.sh")
    assert "--ntasks-per-node=2" in script.read_text()
