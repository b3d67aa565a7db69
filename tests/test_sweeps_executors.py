"""Executors (lit_algos.sweeps.executors): thread split, device assignment, worker environment,
SLURM parameters, and the submitit path through submitit's local executor."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from lit_algos.errors import LitAlgosError
from lit_algos.sweeps import RunSpec, plan_sweep, run_sweep
from lit_algos.sweeps.engine import read_journal
from lit_algos.sweeps.executors import (
    LocalExecutor,
    _minutes,
    device_groups,
    slurm_parameters,
    spec_from_json,
    spec_to_json,
    thread_plan,
    worker_env,
)
from lit_algos.sweeps.slurm import SpecTask


def test_threads_are_the_cores_split_between_workers():
    assert thread_plan(2, cores=2) == 1  # two runs on 2 cores: one thread each, not two each
    assert thread_plan(1, cores=2) == 2
    assert thread_plan(4, cores=16) == 4
    assert thread_plan(3, cores=2) == 1  # never zero
    assert thread_plan(2, threads=3, cores=2) == 3  # explicit wins
    with pytest.raises(LitAlgosError, match="--workers"):
        thread_plan(0, cores=2)
    with pytest.raises(LitAlgosError, match="--threads"):
        thread_plan(1, threads=0)


def test_worker_environment_sets_threads_and_devices():
    env = worker_env(1, [], base={"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["LIT_ALGOS_THREADS"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"  # no assignment on a CPU plan: left as it was
    env = worker_env(4, ["1"], base={})
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["OMP_NUM_THREADS"] == "4"


def test_devices_are_assigned_round_robin():
    assert device_groups([], 3) == [[], [], []]
    assert device_groups(["0", "1"], 4) == [["0"], ["1"], ["0"], ["1"]]
    assert device_groups(["0", "1", "2", "3"], 2, per_run=2) == [["0", "1"], ["2", "3"]]
    assert device_groups(["4", "5"], 2) == [["4"], ["5"]]  # the ids of CUDA_VISIBLE_DEVICES, not 0..n


def test_local_executor_reads_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    ex = LocalExecutor(workers=2, threads=None)
    assert ex.gpus == ["2", "3"] and ex.threads >= 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert LocalExecutor(workers=1).gpus == []


def test_slurm_parameters_from_flags_or_a_study_file():
    params = slurm_parameters(
        {
            "partition": "gpu",
            "time": "01:30:00",
            "gpus_per_node": "1",
            "cpus_per_task": 8,
            "mem_gb": 32,
            "account": "lab",
            "array_parallelism": 4,
            "additional": {"gres": "gpu:a100:1"},
            "cluster": "local",
        }
    )
    assert params == {
        "slurm_partition": "gpu",
        "timeout_min": 90,
        "gpus_per_node": 1,
        "cpus_per_task": 8,
        "mem_gb": 32.0,
        "slurm_account": "lab",
        "slurm_array_parallelism": 4,
        "slurm_additional_parameters": {"gres": "gpu:a100:1"},
    }
    assert _minutes(45) == 45 and _minutes("2-00:00:00") == 2880 and _minutes("10:00") == 10
    with pytest.raises(LitAlgosError, match="'partitoin'.*allowed: partition"):
        slurm_parameters({"partitoin": "gpu"})


def test_the_submitted_task_and_spec_survive_pickling():
    spec = RunSpec("retro+rope", "retro", ("model.position.kind=rope",), 3, {"role": "add-one"})
    assert spec.patch == {"model.position.kind": "rope"}  # --set strings are parsed once, into a patch
    assert spec_from_json(spec_to_json(spec)) == spec
    assert isinstance(pickle.loads(pickle.dumps(SpecTask())), SpecTask)


def test_unknown_executor_is_refused(tmp_path):
    with pytest.raises(LitAlgosError, match="Unknown executor 'ray'; allowed: local, slurm"):
        run_sweep([RunSpec("a", "debug")], runs_dir=tmp_path, executor="ray")


@pytest.mark.slow
def test_slurm_path_with_submitits_local_executor(data_cache, tmp_path):
    runs = tmp_path / "runs"
    specs = [RunSpec("a", "debug", ("train.max_tokens=8192",), s) for s in (0, 1)]
    slurm = {"cluster": "local", "time": 10, "cpus_per_task": 1, "partition": "ignored-locally"}
    dirs = run_sweep(specs, runs_dir=runs, executor="slurm", slurm=slurm, progress=False)
    assert set(dirs) == {s.spec_id() for s in specs}
    assert [p.state for p in plan_sweep(specs, runs_dir=runs)] == ["finished", "finished"]
    trained = [e for e in read_journal(runs) if e["action"] == "train"]
    assert len(trained) == 2 and {e["torch_threads"] for e in trained} == {1}  # cpus_per_task
    assert any((runs / ".sweep" / "submitit").iterdir())  # submitit's job folder (logs, pickles)
    # the same sweep again: every run is finished, nothing is submitted or trained
    assert run_sweep(specs, runs_dir=runs, executor="slurm", slurm=slurm, progress=False) == dirs
    assert len([e for e in read_journal(runs) if e["action"] == "train"]) == 2
    assert all(Path(d, "record.json").is_file() for d in dirs.values())


@pytest.mark.slow
def test_a_ddp_run_inside_a_local_worker(data_cache, tmp_path):
    """Lightning re-runs the worker command for rank 1: it must train the same run, not wait for
    rank 0's lock or stop itself as if its sweep had died."""
    import json

    spec = RunSpec(
        "ddp",
        "debug",
        ("train.devices=2", "train.strategy=ddp", "train.accelerator=cpu", "train.max_tokens=8192"),
    )
    dirs = run_sweep([spec], runs_dir=tmp_path, threads=1, progress=False)
    record = json.loads((dirs[spec.spec_id()] / "record.json").read_text())
    assert record["status"] == "budget_exhausted" and record["world_size"] == 2
    assert [e["action"] for e in read_journal(tmp_path)] == ["train", "done"]  # rank 1 made no decision
