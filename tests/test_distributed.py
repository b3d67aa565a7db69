"""One run over several processes (lit_algos.training.distributed, .fsdp): the launch protocol, the
SLURM environment, Lightning's multi-node launch, and FSDP on CPU (gloo) with save, resume, export.

The srun launch needs a SLURM cluster and is in test_slurm.py; it shares the helpers here."""

from __future__ import annotations

import csv
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from lit_algos.errors import LitAlgosError
from lit_algos.optim.optimizers import clean_name, parameter_tags
from lit_algos.training.distributed import (
    build_strategy,
    complete_srun_environment,
    is_rank_zero,
    slurm_threads,
)

from .distributed_helpers import assert_same_curve, cli_env, lit_algos, only_record


def test_srun_dash_n_becomes_tasks_per_node_when_every_node_runs_the_same_count():
    env = {"SLURM_NTASKS": "2", "SLURM_STEP_TASKS_PER_NODE": "2"}
    complete_srun_environment(env)
    assert env["SLURM_NTASKS_PER_NODE"] == "2"  # Lightning's SLURMEnvironment refuses a step without it
    env = {"SLURM_NTASKS": "8", "SLURM_STEP_TASKS_PER_NODE": "4(x2)"}
    complete_srun_environment(env)
    assert env["SLURM_NTASKS_PER_NODE"] == "4"
    env = {"SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "2", "SLURM_STEP_TASKS_PER_NODE": "3,1"}
    complete_srun_environment(env)  # set by --ntasks-per-node: left alone
    assert env["SLURM_NTASKS_PER_NODE"] == "2"
    one = {"SLURM_NTASKS": "1"}
    complete_srun_environment(one)
    assert "SLURM_NTASKS_PER_NODE" not in one
    with pytest.raises(LitAlgosError, match=r"unevenly.*3,1.*--ntasks-per-node"):
        complete_srun_environment({"SLURM_NTASKS": "4", "SLURM_STEP_TASKS_PER_NODE": "3,1"})


def test_threads_come_from_what_slurm_gave_the_task():
    assert slurm_threads({}) is None  # not in a SLURM job
    job = {"SLURM_JOB_ID": "7", "SLURM_CPUS_ON_NODE": "64"}
    assert slurm_threads({**job, "SLURM_CPUS_PER_TASK": "4"}) == 4
    assert slurm_threads({**job, "SLURM_NTASKS_PER_NODE": "8"}) == 8  # 64 CPUs of this job, 8 tasks here
    assert slurm_threads({**job, "SLURM_STEP_TASKS_PER_NODE": "16(x2)"}) == 4
    assert slurm_threads({"SLURM_JOB_ID": "7", "SLURM_CPUS_ON_NODE": "1"}) == 1
    assert slurm_threads({"SLURM_JOB_ID": "7"}) is None


def test_a_local_sweep_inside_a_slurm_job_splits_the_cpus_slurm_gave_it(monkeypatch):
    from lit_algos.sweeps.executors import thread_plan

    monkeypatch.setenv("SLURM_JOB_ID", "9")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")  # the job got 1 CPU of this (2-core or larger) node
    assert thread_plan(1) == 1
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert thread_plan(1) == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("env", "zero"),
    [
        ({}, True),
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),
        ({"RANK": "3"}, False),  # torchrun
        ({"LOCAL_RANK": "1"}, False),  # a child of Lightning's launcher
        ({"SLURM_NTASKS": "2", "SLURM_PROCID": "1"}, False),  # srun
        ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, True),  # a one-task sweep job
        ({"NODE_RANK": "1"}, False),  # the other node of a Lightning multi-node launch
        ({"NODE_RANK": "0", "LOCAL_RANK": "0"}, True),
    ],
)
def test_rank_zero_is_read_from_whichever_launcher_started_the_process(monkeypatch, env, zero):
    for var in ("RANK", "LOCAL_RANK", "SLURM_NTASKS", "SLURM_PROCID", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert is_rank_zero() is zero


def test_fsdp_on_cpu_is_lightnings_fsdp_strategy_with_full_checkpoints():
    from lightning.pytorch.strategies import FSDPStrategy

    strategy = build_strategy("fsdp", "cpu")
    assert isinstance(strategy, FSDPStrategy) and type(strategy) is not FSDPStrategy
    assert strategy._state_dict_type == "full"  # sample/export/resume read one file
    assert type(build_strategy("fsdp", "gpu")) is FSDPStrategy
    assert build_strategy("ddp", "cpu") == "ddp" and build_strategy("auto", "gpu") == "auto"


def test_optimizer_tags_taken_before_wrapping_survive_fsdp_names_and_flat_shards():
    class Wrapped(nn.Module):  # what FSDP makes of a block: a prefix, and 1-D shards of matrices
        def __init__(self):
            super().__init__()
            self._fsdp_wrapped_module = nn.Module()
            self._fsdp_wrapped_module.weight = nn.Parameter(torch.zeros(6))

    assert clean_name("blocks.0._fsdp_wrapped_module.attn.weight") == "blocks.0.attn.weight"
    assert parameter_tags(Wrapped()) == {"_fsdp_wrapped_module.weight": "vector"}  # shape alone: wrong
    assert parameter_tags(Wrapped(), {"weight": "matrix"}) == {"_fsdp_wrapped_module.weight": "matrix"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_through_lightnings_multi_node_launch_give_the_one_process_curve(single_debug, tmp_path):
    """Two "nodes" on this host, one command each, as on a cluster without SLURM: NODE_RANK,
    MASTER_ADDR and MASTER_PORT set, --num-nodes 2. One run directory, one record, world size 2."""
    runs = tmp_path / "runs"
    port = str(free_port())
    args = ["train", "debug", "--num-nodes", "2", "--devices", "1", "--set", "train.accelerator=cpu"]
    args += ["--set", "train.strategy=ddp", "--runs-dir", str(runs), "--no-progress"]
    nodes = [
        lit_algos(
            *args,
            env=cli_env(NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=port, OMP_NUM_THREADS="1"),
        )
        for rank in (0, 1)
    ]
    outs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outs
    record = only_record(runs)
    assert record.world_size == 2 and record.hardware["num_nodes"] == 2
    assert_same_curve(single_debug.record, record)
    assert f"run {record.run_id}" in outs[0] and "run debug-" not in outs[1]  # node 1 prints no summary


@pytest.mark.slow
def test_fsdp_on_cpu_trains_saves_resumes_and_exports_the_one_process_run(single_debug, tmp_path):
    """FSDP over 2 CPU processes (gloo, adamw): killed outright after its first checkpoint (a lost
    node), resumed from it, it ends with the one-process curve; its checkpoint exports whole."""
    from safetensors.torch import load_file

    from lit_algos.inference import load_run

    runs = tmp_path / "runs"
    args = [
        "train",
        "debug",
        "--devices",
        "2",
        "--set",
        "train.strategy=fsdp",
        "--set",
        "train.accelerator=cpu",
    ]
    proc = lit_algos(
        *args,
        "--runs-dir",
        str(runs),
        "--no-progress",
        env=cli_env(OMP_NUM_THREADS="1"),
        start_new_session=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list(runs.glob("*/checkpoints/last.ckpt")):
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGKILL)  # both ranks, no clean-up (its record reads interrupted)
    proc.communicate()
    killed = only_record(runs)
    assert killed.status == "interrupted" and 0 < len(killed.curve) < len(single_debug.record.curve)

    resumed = lit_algos(
        "train",
        "--resume",
        killed.run_id,
        "--runs-dir",
        str(runs),
        "--no-progress",
        env=cli_env(OMP_NUM_THREADS="1"),
    )
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out
    record = only_record(runs)
    assert record.status == "budget_exhausted" and record.world_size == 2
    assert record.config["train"]["strategy"] == "fsdp"
    assert_same_curve(single_debug.record, record)

    export = lit_algos("export", record.run_id, "--out", str(tmp_path / "export"), "--runs-dir", str(runs))
    assert export.wait(timeout=120) == 0, export.communicate()[0]
    weights = load_file(str(tmp_path / "export" / "model.safetensors"))
    reference = load_run(single_debug.run_dir).model.state_dict()
    assert {k: v.shape for k, v in weights.items()} == {
        k: v.shape for k, v in reference.items()
    }  # not shards
    for key, value in weights.items():
        assert torch.allclose(value, reference[key], atol=1e-4), key


@pytest.mark.slow
def test_fsdp_logs_the_whole_gradient_norm_and_clips_by_it_as_one_process_does(data_cache, tmp_path):
    """LitGPT's step metrics under FSDP over 2 CPU processes (W&B offline): ``train/grad_norm`` is
    the norm of the whole gradient (each rank holds shards), at the steps, tokens and learning
    rates of the one-process run. With SGD (no Adam normalisation to hide the gradient's scale), a
    clip far below that norm acts at every step and the losses still match: clipping took the
    whole norm through the FSDP root (unclipped or per-shard updates would be other updates)."""
    from lightning.pytorch.loggers import CSVLogger

    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train
    from lit_algos.training.wandb_file import is_complete, read_history

    clip = 0.05
    overrides = ["train.accelerator=cpu", "train.max_tokens=4096", "train.eval_every_tokens=4096"]
    overrides += ["train.log_every=4", "optim.name=sgd", "optim.lr=1.0", f"optim.grad_clip={clip}"]
    csv_logger = CSVLogger(tmp_path / "csv", name="single")
    single = train(
        load_config("debug", overrides), runs_dir=tmp_path / "single", progress=False, loggers=[csv_logger]
    )
    with open(Path(csv_logger.log_dir) / "metrics.csv") as f:
        reference = {int(float(r["step"])): r for r in csv.DictReader(f) if r.get("train/grad_norm")}

    runs = tmp_path / "runs"
    sets = [a for o in [*overrides, "train.strategy=fsdp", "train.wandb.enabled=true"] for a in ("--set", o)]
    wandb_env = dict(WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true", WANDB_CONSOLE="off")
    proc = lit_algos("train", "debug", "--devices", "2", *sets, "--runs-dir", str(runs), "--no-progress",
                     env=cli_env(OMP_NUM_THREADS="1", **wandb_env))  # fmt: skip
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    assert_same_curve(single, only_record(runs))
    (path,) = runs.glob("*/wandb/offline-run-*/run-*.wandb")
    deadline = time.time() + 120  # W&B's background writer can finish the file after the run ends
    while not is_complete(path) and time.time() < deadline:
        time.sleep(0.5)
    rows = [r for r in read_history(path) if "train/grad_norm" in r]
    assert [r["trainer/global_step"] for r in rows] == sorted(reference) == [4, 8, 12, 16]
    for r in rows:
        ref = reference[r["trainer/global_step"]]
        assert r["tokens"] == float(ref["tokens"]) and r["flops"] == pytest.approx(float(ref["flops"]))
        assert r["lr/sgd"] == pytest.approx(float(ref["lr/sgd"]), rel=1e-9)
        assert r["train/grad_norm"] == pytest.approx(float(ref["train/grad_norm"]), rel=1e-4)
        assert r["train/grad_norm"] > 5 * clip
