"""Train-to-target end to end on the debug recipe: statuses, the run record, DDP and resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lit_algos.cli import main
from lit_algos.config.recipes import load_config
from lit_algos.records import EvalPoint, RunRecord, interpolate_to_target
from lit_algos.training.run import train

from .conftest import REPO


def run_debug(tmp_path, *overrides, **kwargs) -> RunRecord:
    cfg = load_config("debug", list(overrides))
    return train(cfg, runs_dir=tmp_path / "runs", progress=False, **kwargs)


def _sigint_as_from_a_terminal() -> None:
    # A suite launched in the background (`pytest &` in a script) inherits an ignored SIGINT, and
    # Python keeps an inherited SIG_IGN (nohup's contract): the Ctrl-C tests would then hang.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args: str, env_extra: dict | None = None, **popen) -> subprocess.Popen:
    """The CLI in its own process (DDP re-launches the command; a kill must not hit pytest)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "lit_algos", *args],
        cwd=REPO,
        env=env,
        preexec_fn=_sigint_as_from_a_terminal,
        **popen,
    )


def test_debug_run_writes_a_complete_record(data_cache, tmp_path):
    record = run_debug(tmp_path)
    run_dir = tmp_path / "runs" / record.run_id
    assert record.status == "budget_exhausted" and not record.reached
    on_disk = json.loads((run_dir / "record.json").read_text())
    for key in (
        "run_id",
        "recipe",
        "config",
        "config_hash",
        "code",
        "seed",
        "hardware",
        "software",
        "world_size",
        "data",
        "params",
        "flops_per_token",
        "target_loss",
        "reached",
        "to_target",
        "curve",
        "final",
        "mfu",
        "status",
        "eval_seconds",
        "warmup_seconds",
        "train_curve",
    ):
        assert key in on_disk, key
    assert on_disk["data"]["val_fingerprint"] and on_disk["data"]["tokenizer_fingerprint"]
    assert on_disk["params"]["total"] > on_disk["params"]["non_embedding"] > 0
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    # Evaluations every 4096 tokens of a 16384-token budget: steps 16, 32, 48, 64.
    assert [p.step for p in record.curve] == [16, 32, 48, 64]
    tokens_per_step = 8 * 32
    for p in record.curve:
        assert p.tokens == p.step * tokens_per_step
        assert p.flops == pytest.approx(p.tokens * record.flops_per_token["analytic"])
        assert p.val_bpb == pytest.approx(
            p.val_loss * record.data["val_tokens"] / (math.log(2) * record.data["val_bytes"])
        )
    assert record.curve[-1].val_loss < record.curve[0].val_loss  # it learns
    assert all(b.train_seconds >= a.train_seconds for a, b in zip(record.curve, record.curve[1:]))
    assert len(record.train_curve) == 64
    # Checkpoints hold no code objects: they load with weights_only=True.
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 64  # checkpointed after the last evaluation


def test_stops_as_soon_as_the_target_is_reached(data_cache, tmp_path):
    full = run_debug(tmp_path)
    target = (full.curve[0].val_loss + full.curve[1].val_loss) / 2  # between the first two evaluations
    record = run_debug(tmp_path, f"train.target_loss={target}")
    assert record.status == "reached" and record.reached
    assert record.final.step == 32  # stopped at the first evaluation at or below the target
    tt = record.to_target
    assert 16 < tt.step < 32 and 16 * 256 < tt.tokens < 32 * 256
    assert tt.flops == pytest.approx(tt.tokens * record.flops_per_token["analytic"], rel=1e-6)


def test_seconds_budget_is_exhausted(data_cache, tmp_path):
    record = run_debug(
        tmp_path, "train.max_tokens=100000000", "train.max_seconds=0.5", "optim.schedule.kind=constant"
    )
    assert record.status == "budget_exhausted"
    assert record.final.train_seconds >= 0.5
    assert record.final.step < 100_000_000 // 256


def test_without_a_step_budget_evaluations_keep_their_cadence(data_cache, tmp_path):
    record = run_debug(
        tmp_path, "train.max_tokens=null", "train.max_seconds=1.0", "optim.schedule.kind=constant"
    )
    assert record.status == "budget_exhausted"
    steps = [p.step for p in record.curve]
    assert all(s % 16 == 0 for s in steps[:-1])  # every 4096 tokens; only the closing one may be off-cadence
    assert len(steps) <= record.final.step // 16 + 1


def test_divergence_stops_with_the_curve_so_far(data_cache, tmp_path):
    record = run_debug(
        tmp_path, "optim.name=sgd", "optim.lr=1e4", "optim.grad_clip=null", "optim.momentum=0.9"
    )
    assert record.status == "diverged" and not record.reached
    assert record.final is not None and record.final.step < 64
    assert not math.isfinite(record.train_curve[-1][1]) or record.final.val_loss > record.curve[0].val_loss


def test_interpolation_is_in_log_cost():
    curve = [EvalPoint(10, 100, 1e3, 1.0, 4.0, 2.0), EvalPoint(20, 400, 4e3, 4.0, 2.0, 1.0)]
    tt = interpolate_to_target(curve, 3.0)  # half way in loss -> geometric mean in cost
    assert (
        tt.tokens == pytest.approx(200)
        and tt.flops == pytest.approx(2e3)
        and tt.train_seconds == pytest.approx(2.0)
    )
    assert interpolate_to_target(curve, 1.0) is None
    assert interpolate_to_target(curve, 5.0).tokens == 100  # reached at the first evaluation


def test_bad_override_fails_before_any_work(tmp_path, capsys):
    code = main(
        [
            "train",
            "debug",
            "--set",
            "train.batch_size=7",
            "--set",
            "train.micro_batch_size=2",
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    assert code == 2
    assert "train.micro_batch_size" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_another_batch_layout(data_cache, tmp_path):
    from lit_algos.errors import LitAlgosError

    # No time budget: whether a checkpoint exists must not depend on how fast the machine is.
    record = run_debug(tmp_path, "train.max_tokens=8192")
    assert record.status == "budget_exhausted"
    (tmp_path / "runs" / record.run_id / "record.json").write_text(
        json.dumps({**record.to_dict(), "status": "failed"})  # pretend it crashed
    )
    with pytest.raises(LitAlgosError, match="train.micro_batch_size=2"):
        run_debug(tmp_path, "train.max_tokens=8192", "train.micro_batch_size=2", resume=True)
    with pytest.raises(LitAlgosError, match="Cannot resume .* with this config"):
        run_debug(tmp_path, "train.max_tokens=8192", "model.n_layer=2", resume=record.run_id)


def test_resume_refuses_a_finished_run_and_leaves_its_record(data_cache, tmp_path):
    from lit_algos.errors import LitAlgosError

    record = run_debug(tmp_path, "train.max_tokens=4096")
    path = tmp_path / "runs" / record.run_id / "record.json"
    before = path.read_bytes()
    with pytest.raises(LitAlgosError, match="finished"):
        run_debug(tmp_path, "train.max_tokens=4096", resume=record.run_id)
    code = main(["train", "--resume", record.run_id, "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
    assert code == 2
    assert path.read_bytes() == before  # still 'budget_exhausted', still submittable


def test_resume_by_run_id_takes_the_config_from_the_record(data_cache, tmp_path, capsys):
    from lit_algos.training.run import resume

    # Started with overrides the recipe does not have; resumed by id alone, without retyping them.
    record = run_debug(tmp_path, "train.max_tokens=8192", "train.eval_every_tokens=2048", "optim.lr=1e-3")
    run_dir = tmp_path / "runs" / record.run_id
    (run_dir / "record.json").write_text(json.dumps({**record.to_dict(), "status": "interrupted"}))
    resumed = resume(record.run_id, runs_dir=tmp_path / "runs", progress=False)
    assert resumed.config == record.config and resumed.config_hash == record.config_hash
    assert resumed.status == "budget_exhausted"
    assert [p.step for p in resumed.curve] == [p.step for p in record.curve] == [8, 16, 24, 32]
    # On the command line, --set cannot change a resumed run.
    (run_dir / "record.json").write_text(json.dumps({**record.to_dict(), "status": "interrupted"}))
    code = main(
        ["train", "--resume", record.run_id, "--set", "optim.lr=1", "--runs-dir", str(tmp_path / "runs")]
    )
    assert code == 2 and "cannot change it" in capsys.readouterr().err


def _curves(record: RunRecord):
    return [p.val_loss for p in record.curve], [loss for _, loss in record.train_curve]


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(data_cache, tmp_path):
    single = run_debug(tmp_path, "train.micro_batch_size=2")  # 4 micro-batches accumulated
    proc = cli(
        "train",
        "debug",
        "--devices",
        "2",
        "--set",
        "train.strategy=ddp",
        "--set",
        "train.accelerator=cpu",
        "--runs-dir",
        str(tmp_path / "ddp"),
        "--no-progress",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    (record_path,) = (tmp_path / "ddp").glob("*/record.json")
    ddp = RunRecord.load(record_path)
    assert ddp.world_size == 2 and ddp.config_hash == single.config_hash
    val_a, train_a = _curves(single)
    val_b, train_b = _curves(ddp)
    assert len(train_a) == len(train_b) == 64
    assert train_b == pytest.approx(train_a, rel=1e-4, abs=1e-5)
    assert val_b == pytest.approx(val_a, rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_record(data_cache, tmp_path):
    args = ["train", "debug", "--set", "train.max_tokens=65536", "--no-progress"]
    straight = run_debug(tmp_path, "train.max_tokens=65536")

    runs = tmp_path / "killed"
    proc = cli(*args, "--runs-dir", str(runs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    ckpt = None
    while time.time() < deadline and proc.poll() is None:
        found = list(runs.glob("*/checkpoints/last.ckpt"))
        if found:
            ckpt = found[0]
            break
        time.sleep(0.02)
    assert ckpt is not None, "the run ended before its first checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    record_path = ckpt.parent.parent / "record.json"
    killed = RunRecord.load(record_path)
    assert killed.status == "interrupted"  # killed part-way: its process is gone ...
    assert "killed" in killed.error
    assert killed.curve and killed.curve[0].step == 16  # ... but its curve up to the last evaluation

    resumed = cli(
        *args,
        "--runs-dir",
        str(runs),
        "--resume",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    record = RunRecord.load(record_path)
    assert record.status == straight.status == "budget_exhausted"
    assert [p.step for p in record.curve] == [p.step for p in straight.curve]
    val_a, train_a = _curves(straight)
    val_b, train_b = _curves(record)
    assert val_b == pytest.approx(val_a, rel=1e-5, abs=1e-6)
    assert train_b == pytest.approx(train_a, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_ctrl_c_leaves_an_interrupted_record_and_a_usable_checkpoint(data_cache, tmp_path):
    runs = tmp_path / "interrupted"
    proc = cli(
        "train",
        "debug",
        "--set",
        "train.max_tokens=10000000",
        "--set",
        "optim.schedule.kind=constant",
        "--runs-dir",
        str(runs),
        "--no-progress",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs.glob("*/checkpoints/last.ckpt")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    (record_path,) = runs.glob("*/record.json")
    record = RunRecord.load(record_path)
    assert record.status == "interrupted" and record.curve, out
    assert f"--resume {record.run_id}" in out
    ckpt = torch.load(record_path.parent / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] > 0


@pytest.mark.slow
def test_ctrl_c_before_the_first_evaluation_does_not_suggest_resume(data_cache, tmp_path):
    runs = tmp_path / "early"
    # The first evaluation is 10M tokens away: there is no checkpoint whenever the interrupt lands.
    proc = cli(
        "train",
        "debug",
        "--set",
        "train.max_tokens=10000000",
        "--set",
        "train.eval_every_tokens=10000000",
        "--set",
        "optim.schedule.kind=constant",
        "--runs-dir",
        str(runs),
        "--no-progress",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs.glob("*/record.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    (record_path,) = runs.glob("*/record.json")
    record = RunRecord.load(record_path)
    assert record.status == "interrupted"
    assert not (record_path.parent / "checkpoints" / "last.ckpt").exists()
    assert f"--resume {record.run_id}" not in out and "no checkpoint" in out


def test_wandb_offline_run_logs_without_blocking(data_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    record = run_debug(tmp_path, "train.wandb.enabled=true")
    assert record.status == "budget_exhausted"
    run_dir = tmp_path / "runs" / record.run_id
    assert list((run_dir / "wandb").glob("offline-run-*")), "an offline W&B run directory is written"


def test_wandb_failure_is_a_warning_not_a_stopped_run(data_cache, tmp_path, monkeypatch):
    import wandb

    def broken_init(*args, **kwargs):
        raise RuntimeError("wandb is down")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(UserWarning, match="wandb is down"):
        record = run_debug(tmp_path, "train.wandb.enabled=true")
    assert record.status == "budget_exhausted"
