"""W&B logging: offline runs in a tmp dir, the three-axis scheme, and failures as warnings."""

from __future__ import annotations

import copy
import warnings

import pytest

wandb = pytest.importorskip("wandb")

from lit_algos.records import EvalPoint, RunRecord, ToTarget  # noqa: E402
from lit_algos.training import wandb_logging as wl  # noqa: E402

# The dict form of a resolved Config (what Config.to_dict() and RunRecord.config hold).
CONFIG = {
    "name": "modern",
    "description": "",
    "model": {
        "n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": 16, "vocab_size": 64,
        "attention": {"kind": "gqa", "n_kv_head": 2, "backend": "sdpa", "qk_norm": True},
        "norm": {"kind": "rmsnorm", "placement": "pre", "eps": 1e-5},
        "position": {"kind": "rope", "rope_base": 10000.0},
        "mlp": {"kind": "swiglu", "hidden": None, "multiple": 4.0, "match_gelu_params": False},
        "final_norm": True, "tie_embeddings": False, "bias": False, "dropout": 0.0, "logit_softcap": None,
        "init_std": 0.02,
    },
    "optim": {"name": "muon", "lr": 3e-3, "betas": [0.9, 0.95], "schedule": {"kind": "wsd", "warmup_steps": 0}},
    "data": {},
    "train": {
        "precision": "32-true", "compile": False, "max_tokens": 1000,
        "wandb": {"enabled": True, "project": "lit_algos_test", "entity": None, "group": None, "mode": None},
    },
}  # fmt: skip


def config(**wandb_overrides) -> dict:
    cfg = copy.deepcopy(CONFIG)
    cfg["train"]["wandb"].update(wandb_overrides)
    return cfg


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """No key, no network, quiet, everything under tmp_path."""
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DISABLED", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.setattr(wl, "is_reachable", lambda host, port, timeout=2.0: False)
    yield tmp_path
    if wandb.run is not None:
        wandb.finish()


def record(reached: bool = True) -> RunRecord:
    curve = [EvalPoint(10, 1000, 1e9, 1.0, 4.0, 2.0), EvalPoint(20, 2000, 2e9, 2.0, 3.0, 1.5)]
    return RunRecord(
        run_id="run-1", recipe="modern", config=CONFIG, config_hash="abc", seed=0,
        status="reached" if reached else "budget_exhausted", target_loss=3.2, reached=reached,
        to_target=ToTarget(18.0, 1800.0, 1.8e9, 1.8) if reached else None, curve=curve, final=curve[-1],
        mfu=0.31, params={"total": 1000, "non_embedding": 800},
    )  # fmt: skip


def test_flatten_config():
    flat = wl.flatten_config({"a": {"b": 1, "c": {"d": (1, 2)}, "e": {}}, "f": None})
    assert flat == {"a.b": 1, "a.c.d": [1, 2], "a.e": {}, "f": None}
    assert wl.flatten_config(CONFIG)["model.attention.kind"] == "gqa"


def test_component_tags():
    tags = wl.component_tags(CONFIG)
    for tag in ("attention:gqa", "qk_norm", "norm:rmsnorm", "norm_placement:pre", "position:rope", "mlp:swiglu",
                "untied", "no_bias", "optim:muon", "schedule:wsd", "precision:32-true"):  # fmt: skip
        assert tag in tags
    assert "compile" not in tags and "dropout" not in tags
    retro = copy.deepcopy(CONFIG)
    retro["model"].update(tie_embeddings=True, bias=True, norm={"kind": "none", "placement": "pre"})
    retro["optim"] = {"name": "adamw", "schedule": {"kind": "cosine"}}
    tags = wl.component_tags(retro)
    assert {"tied", "bias", "norm:none", "optim:adamw", "schedule:cosine"} <= set(tags)
    assert not any(t.startswith("norm_placement") for t in tags)


def test_component_tags_of_a_real_config():
    from lit_algos.config import Config
    from lit_algos.errors import ConfigError

    try:
        cfg = Config()
    except ConfigError:
        pytest.skip("model components are not registered yet")
    tags = wl.component_tags(cfg)
    assert f"attention:{cfg.model.attention.kind}" in tags and f"optim:{cfg.optim.kind}" in tags


def test_resolve_mode(wandb_env, monkeypatch):
    assert wl.resolve_mode(None) == "offline"  # no key anywhere
    (wandb_env / "netrc").write_text("machine api.wandb.ai login user password abc123\n")
    assert wl.has_api_key()
    assert wl.resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert wl.resolve_mode(None) == "offline"
    assert wl.resolve_mode("online") == "online"  # the config wins over the environment
    monkeypatch.setenv("WANDB_MODE", "sideways")
    with pytest.warns(wl.WandbWarning, match="sideways"):
        assert wl.resolve_mode(None) == "offline"
    monkeypatch.setenv("WANDB_DISABLED", "true")
    assert wl.resolve_mode(None) == "disabled"


def test_is_reachable_is_bounded():
    assert wl.is_reachable("127.0.0.1", 9, timeout=0.5) is False  # discard port: nothing listens


def test_not_enabled_or_disabled_gives_none(wandb_env):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wl.make_wandb_logger(config(enabled=False), "run-1", wandb_env) is None
        assert wl.make_wandb_logger(config(mode="disabled"), "run-1", wandb_env) is None
    assert wandb.run is None


def test_offline_run_logs_metrics_axes_and_summary(wandb_env, monkeypatch):
    logger = wl.make_wandb_logger(config(), "run-1", wandb_env / "logs")
    assert isinstance(logger, wl.LitAlgosWandbLogger)
    exp = logger.experiment
    assert exp.settings.mode == "offline"
    assert exp.group == "modern"  # the recipe name, as no group was set
    assert {"attention:gqa", "optim:muon", "untied"} <= set(exp.tags)
    assert exp.config["model.attention.kind"] == "gqa" and exp.config["run_id"] == "run-1"

    logged, defined = [], {}
    real_log, real_define = exp.log, exp.define_metric
    monkeypatch.setattr(exp, "log", lambda row, *a, **k: (logged.append(dict(row)), real_log(row, *a, **k)))
    monkeypatch.setattr(
        exp, "define_metric",
        lambda name, **k: (defined.__setitem__(name, k.get("step_metric")), real_define(name, **k))[1],
    )  # fmt: skip
    logger.log_metrics({"tokens": 1000, "flops": 1e9, "train_seconds": 1.5, "train/loss": 4.0}, step=1)
    logger.log_metrics({"tokens": 2000, "flops": 2e9, "train_seconds": 2.5, "val/loss": 3.5}, step=2)

    # Rows go out as they came (plus Lightning's trainer/global_step): no remembered axes, no copies.
    assert logged[0] == {
        "tokens": 1000,
        "flops": 1e9,
        "train_seconds": 1.5,
        "train/loss": 4.0,
        "trainer/global_step": 1,
    }
    assert logged[1]["tokens"] == 2000 and logged[1]["train_seconds"] == 2.5
    assert defined["val/loss"] == "tokens" and defined["train/loss"] == "tokens"
    assert exp.summary["val/loss"] == 3.5
    wl.log_summary(logger, record())
    assert exp.summary["reached"] is True and exp.summary["status"] == "reached"
    assert exp.summary["to_target/flops"] == 1.8e9 and exp.summary["final/val_loss"] == 3.0
    assert exp.summary["best/val_bpb"] == 1.5 and exp.summary["mfu"] == 0.31
    wl.finish_wandb(logger)
    assert wandb.run is None
    run_dirs = list((wandb_env / "logs" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1
    (run_file,) = run_dirs[0].glob("run-*.wandb")
    assert run_file.stat().st_size > 0


def test_summary_of_unreached_run_has_no_to_target():
    summary = wl.summary_of(record(reached=False))
    assert summary["reached"] is False and not any(k.startswith("to_target/") for k in summary)
    assert "tokens_per_second" not in summary  # None values are left out


def test_online_without_network_falls_back_to_offline(wandb_env):
    with pytest.warns(wl.WandbWarning, match="not reachable"):
        logger = wl.make_wandb_logger(config(mode="online"), "run-2", wandb_env)
    assert logger is not None and logger.experiment.settings.mode == "offline"
    wl.finish_wandb(logger)


def test_init_failure_is_a_warning_and_none(wandb_env, monkeypatch):
    def broken_init(*args, **kwargs):
        raise RuntimeError("wandb is down")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(wl.WandbWarning, match="wandb is down"):
        assert wl.make_wandb_logger(config(), "run-3", wandb_env) is None


def test_logging_failure_mid_run_is_a_warning(wandb_env, monkeypatch):
    logger = wl.make_wandb_logger(config(), "run-4", wandb_env)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(logger.experiment, "log", broken)
    monkeypatch.setattr(type(logger.experiment.summary), "update", broken)
    with pytest.warns(wl.WandbWarning, match="disk full"):
        logger.log_metrics({"val/loss": 3.0}, step=1)
    logger.log_metrics({"val/loss": 2.0}, step=2)  # now silent: logging is off, the run goes on
    with pytest.warns(wl.WandbWarning, match="summary"):
        wl.log_summary(logger, record())
    monkeypatch.undo()
    wl.finish_wandb(logger)


def _wandb_file(runs_dir, pattern: str = "*/wandb/offline-run-*/run-*.wandb", timeout: float = 120.0):
    """The run's .wandb file once W&B's background service has written all of it."""
    import time

    from lit_algos.training.wandb_file import is_complete

    (path,) = runs_dir.glob(pattern)
    deadline = time.monotonic() + timeout
    while not is_complete(path) and time.monotonic() < deadline:
        time.sleep(0.5)
    return path


def test_a_debug_run_in_wandb_tells_the_truth(data_cache, wandb_env):
    """Train with W&B offline, read the run back from its .wandb file, compare with the record."""
    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train
    from lit_algos.training.wandb_file import read_config, read_history, read_metric_axes

    overrides = ["train.wandb.enabled=true", "optim.name=muon", "optim.muon_lr=0.02", "train.log_every=4"]
    rec = train(load_config("debug", overrides), runs_dir=wandb_env / "runs", progress=False)
    path = _wandb_file(wandb_env / "runs")
    rows = read_history(path)
    val = [r for r in rows if "val/loss" in r]
    # val/loss at the evaluation's own step, tokens, FLOPs and seconds: exactly the record's curve.
    assert [(r["trainer/global_step"], r["tokens"], r["flops"], r["train_seconds"]) for r in val] == [
        (p.step, p.tokens, p.flops, p.train_seconds) for p in rec.curve
    ]
    assert [r["val/loss"] for r in val] == pytest.approx([p.val_loss for p in rec.curve], rel=1e-12)
    assert [r["val/bpb"] for r in val] == pytest.approx([p.val_bpb for p in rec.curve], rel=1e-12)
    # Step metrics every train.log_every steps (and at the last step), each at its own step and cost.
    steps = [r for r in rows if "train/loss" in r]
    assert [r["trainer/global_step"] for r in steps] == list(range(4, 65, 4))
    train_loss = dict(rec.train_curve)
    for r in steps:
        assert (
            r["tokens"] == r["trainer/global_step"] * 256
            and r["flops"] == r["tokens"] * rec.flops_per_token["analytic"]
        )
        assert r["train/loss"] == pytest.approx(train_loss[r["trainer/global_step"]])
        assert {"lr/muon", "lr/adamw", "train/grad_norm"} <= set(r)
    timed = [r for r in steps if "train/tokens_per_second" in r]
    assert len(timed) >= len(steps) - 1 and all(r["train/mfu"] > 0 for r in timed)  # CPU: the measured peak
    assert rec.mfu is not None and rec.hardware["peak_flops"]["source"].startswith("measured sustained fp32")
    assert [r["train_seconds"] for r in steps] == sorted(r["train_seconds"] for r in steps)
    # One name per quantity: no copies under other sections, no Lightning duplicates.
    keys = {k for r in rows for k in r if not k.startswith("_")}
    assert keys == {
        "trainer/global_step", "tokens", "flops", "train_seconds", "train/loss", "train/grad_norm",
        "train/tokens_per_second", "train/mfu", "lr/muon", "lr/adamw", "val/loss", "val/bpb",
    }  # fmt: skip
    axes = read_metric_axes(path)
    assert axes["val/loss"] == axes["train/loss"] == axes["lr/muon"] == "tokens"
    config = read_config(path)  # the config once, flattened (LitGPT's hyperparameters add no nested copy)
    assert config["model.n_layer"] == 1 and config["total_steps"] == 64
    assert "config" not in config


def test_summary_of_carries_moe_load_statistics():
    rec = record()
    rec.component_metrics["moe"] = {
        "window_steps": 50,
        "aux_loss": 0.0,
        "max_over_mean": 1.25,
        "layers": [
            {"layer": 0, "fraction": [0.6, 0.4], "max_over_mean": 1.2, "entropy": 0.5, "bias": [-0.1, 0.1]}
        ],
    }
    summary = wl.summary_of(rec)
    assert summary["moe/max_over_mean"] == 1.25
    assert summary["moe/layer0/fraction/1"] == 0.4 and summary["moe/layer0/bias/0"] == -0.1
    assert summary["moe/layer0/entropy"] == 0.5
    assert not any(k.startswith("moe/") for k in wl.summary_of(record()))  # dense runs: none
