"""The Trainer builder and the Python API: pass-through options, extra callbacks and loggers."""

from __future__ import annotations

import csv
import json

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger

from lit_algos.cli import main
from lit_algos.config.recipes import load_config
from lit_algos.errors import ConfigError
from lit_algos.training.plan import plan_run
from lit_algos.training.trainer import trainer_options


@pytest.mark.parametrize("key", ["precision", "max_steps", "devices", "accumulate_grad_batches", "callbacks"])
def test_trainer_options_lit_algos_owns_are_refused(key):
    with pytest.raises(ConfigError, match=f"train.trainer.{key}") as err:
        load_config("debug", [f"train.trainer.{key}=2"])
    assert "itself" in str(err.value)


def test_unknown_trainer_options_are_refused_with_the_list():
    cfg = load_config("debug", ["train.trainer.profilr=simple"])
    with pytest.raises(ConfigError, match="train.trainer.profilr") as err:
        trainer_options(cfg)
    assert "profiler" in str(err.value) and "precision" not in str(err.value).split("through:")[1]


def test_cli_trainer_flag_conflict_exits_2_before_any_work(tmp_path, capsys):
    code = main(["train", "debug", "--trainer.precision=16-mixed", "--runs-dir", str(tmp_path / "runs")])
    assert code == 2
    assert "train.trainer.precision" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_plan_is_pure_and_counts_micro_batches_for_lightning():
    plan = plan_run(load_config("debug", ["train.micro_batch_size=2"]))
    assert (plan.tokens_per_step, plan.max_steps, plan.accumulate) == (256, 64, 4)
    assert plan.eval_every_steps == 16 and plan.val_check_interval == 64  # micro-batches per rank


class RecordOnDisk(L.Callback):
    """Reads record.json after each evaluation (lit_algos's recorder runs before user callbacks)."""

    def __init__(self, path_of):
        self.path_of, self.seen = path_of, []

    def on_validation_end(self, trainer, pl_module):
        record = json.loads(self.path_of(trainer).read_text())
        self.seen.append((record["status"], len(record["curve"]), trainer.global_step))


def test_train_with_extra_callbacks_loggers_and_trainer_options(data_cache, tmp_path):
    from lit_algos import train

    cfg = load_config("debug", ["train.log_every=4", "train.trainer.detect_anomaly=false"])
    watcher = RecordOnDisk(
        lambda trainer: __import__("pathlib").Path(trainer.default_root_dir) / "record.json"
    )
    logger = CSVLogger(tmp_path / "csv", name="debug")
    record = train(cfg, runs_dir=tmp_path / "runs", progress=False, callbacks=[watcher], loggers=[logger])
    assert record.status == "budget_exhausted"
    # Crash-safe progress: the record on disk holds every evaluation as soon as it is made.
    assert watcher.seen == [("running", 1, 16), ("running", 2, 32), ("running", 3, 48), ("running", 4, 64)]
    (metrics_csv,) = (tmp_path / "csv").rglob("metrics.csv")
    rows = list(csv.DictReader(metrics_csv.open()))
    columns = set(rows[0])
    step_metrics = {"train/loss", "train/grad_norm", "lr/adamw", "train/tokens_per_second", "train/mfu"}
    assert {"val/loss", "val/bpb", "tokens", "flops", "train_seconds"} | step_metrics <= columns
    assert not any(c.startswith(("lr-", "train/device/", "epoch")) for c in columns)  # no duplicate families
    # Every row has its own step and costs: steps 4, 8, ..., 64 (train.log_every=4) and the 4 evaluations.
    train_rows = [r for r in rows if r.get("train/loss")]
    assert [int(r["step"]) for r in train_rows] == list(range(4, 65, 4))
    assert all(float(r["tokens"]) == int(r["step"]) * 256 for r in rows)  # debug: 256 tokens per step
    by_step = dict(record.train_curve)
    assert all(float(r["train/loss"]) == pytest.approx(by_step[int(r["step"])]) for r in train_rows)
    val = [
        (int(r["step"]), float(r["train_seconds"]), float(r["val/loss"])) for r in rows if r.get("val/loss")
    ]
    assert val == [(p.step, p.train_seconds, pytest.approx(p.val_loss)) for p in record.curve]


def test_log_every_n_steps_is_train_log_every():
    with pytest.raises(ConfigError, match="train.log_every"):
        load_config("debug", ["train.trainer.log_every_n_steps=4"])
