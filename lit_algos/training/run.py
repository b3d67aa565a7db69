"""``train(config) -> RunRecord``: plan, prepare data, build the Trainer, fit, return the record.

Layout of a run directory (``runs/<run_id>/``): ``record.json`` (the run record, rewritten
atomically at the start, after every evaluation and at the end), ``config.yaml`` (the resolved
config) and ``checkpoints/last.ckpt`` (written atomically after every evaluation).

    from lit_algos import load_config, train
    record = train(load_config("debug"), callbacks=[MyCallback()], loggers=[CSVLogger("logs")])
"""

from __future__ import annotations

import os
import signal
import uuid
from datetime import datetime, timezone
from pathlib import Path

import lightning as L

from lit_algos.config import Config
from lit_algos.config.recipes import save_config
from lit_algos.errors import ConfigError, LitAlgosError
from lit_algos.records import FINISHED_STATUSES, RESUMABLE_STATUSES, RunRecord, default_runs_dir
from lit_algos.training.distributed import (
    apply_slurm_threads,
    complete_srun_environment,
    inherited_run_id,
    publish_run_id,
)
from lit_algos.training.plan import RunPlan, plan_run, plan_steps  # noqa: F401  (plan_steps: public)
from lit_algos.utils.fingerprint import code_fingerprint, hardware_fingerprint, software_fingerprint


def quiet_lightning() -> None:
    """Keep the terminal for our own progress and summary: no Lightning banners or known-benign warnings."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    # The validation set is split across ranks by the datamodule, and its size is fixed by design.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*has `shuffle=True`.*")
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    # Lightning's hint to prefix the command with srun, printed wherever srun exists (a login node)
    warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system.*")


def new_run_id(cfg: Config) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{cfg.name.replace('/', '-')}-s{cfg.train.seed}-{stamp}-{uuid.uuid4().hex[:6]}"


def run_path(runs_dir: Path, which: str | Path) -> Path:
    """A run directory from a run id (under ``runs_dir``) or a path."""
    return Path(which) if Path(which).is_dir() else Path(runs_dir) / str(which)


def load_resumable(path: Path) -> RunRecord:
    """The record of a run that can be continued: unfinished and with a checkpoint."""
    record = RunRecord.load(path / "record.json")
    if record.status in FINISHED_STATUSES:
        raise LitAlgosError(
            f"Cannot resume run {record.run_id}: it is finished (status {record.status!r}). A finished run is "
            "never continued; start a new run (without --resume) to train longer or with another budget."
        )
    if not (path / "checkpoints" / "last.ckpt").is_file():
        raise LitAlgosError(
            f"Cannot resume run {record.run_id}: it has no checkpoint at {path / 'checkpoints' / 'last.ckpt'} "
            "(it stopped before its first evaluation). Start it again without --resume."
        )
    return record


def find_resumable(runs_dir: Path, cfg: Config, which: str | None = None) -> Path:
    """The run directory to resume: ``which`` (a run id or path) or the newest unfinished run of this config and seed."""
    if which:
        path = run_path(runs_dir, which)
        record = load_resumable(path)
        if record.config_hash != cfg.config_hash() or record.seed != cfg.train.seed:
            raise LitAlgosError(
                f"Cannot resume {which!r} with this config: it was run with config {record.config_hash} and seed "
                f"{record.seed}, and this command gives config {cfg.config_hash()} and seed {cfg.train.seed}. "
                f"Resume it by its id alone (lit-algos train --resume {record.run_id}): the record holds its config."
            )
        return path
    candidates = []
    for record_path in Path(runs_dir).glob("*/record.json"):
        try:
            record = RunRecord.load(record_path)
        except LitAlgosError:
            continue
        same = record.config_hash == cfg.config_hash() and record.seed == cfg.train.seed
        unfinished = record.status in RESUMABLE_STATUSES
        if same and unfinished and (record_path.parent / "checkpoints" / "last.ckpt").is_file():
            candidates.append((record.started_at, record_path.parent))
    if not candidates:
        raise LitAlgosError(
            f"Nothing to resume in {runs_dir}: no unfinished run of recipe {cfg.name!r} (config {cfg.config_hash()}, "
            f"seed {cfg.train.seed}) with a checkpoint. Start it without --resume, or pass --resume RUN_ID."
        )
    return max(candidates)[1]


def resume_config(which: str | Path, runs_dir: Path | None = None) -> Config:
    """The resolved config a run was started with, from its record (so ``--resume RUN`` needs no ``--set``)."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    record = load_resumable(run_path(runs_dir, which))
    return Config.from_dict(record.config)


def resume(which: str | Path, *, runs_dir: Path | None = None, **kwargs) -> RunRecord:
    """Continue an unfinished run from its last checkpoint, with the config stored in its record."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    return train(resume_config(which, runs_dir), runs_dir=runs_dir, resume=str(which), **kwargs)


def _check_same_layout(record: RunRecord, cfg: Config) -> None:
    """Gradient accumulation state in a checkpoint counts micro-batches: the split must not change."""
    old, new = record.config.get("train", {}), cfg.to_dict()["train"]
    for key in ("devices", "num_nodes", "micro_batch_size"):
        if old.get(key) != new[key]:
            raise LitAlgosError(
                f"Cannot resume run {record.run_id} with train.{key}={new[key]!r}: it was started with "
                f"{old.get(key)!r}, and its checkpoint counts micro-batches of that layout. Resume with the same value."
            )


def _new_record(cfg: Config, run_id: str, plan: RunPlan, prepared, model) -> RunRecord:
    from lit_algos.flops import record_flops
    from lit_algos.model import param_counts
    from lit_algos.training.recorder import now_iso

    t = cfg.train
    return RunRecord(
        run_id=run_id,
        recipe=cfg.name,
        config=cfg.to_dict(),
        config_hash=cfg.config_hash(),
        seed=t.seed,
        code=code_fingerprint(),
        hardware=hardware_fingerprint(plan.accelerator, t.devices, t.num_nodes),
        software=software_fingerprint(),
        world_size=plan.world_size,
        # root: where the shards and (for a trained BPE) tokenizer.json are, for `sample` and `export`.
        data={**prepared.record_dict(), "root": str(Path(prepared.root).resolve())},
        params=param_counts(model),
        flops_per_token=record_flops(cfg.model),  # CEG uses "analytic" (executed), see flops.py
        target_loss=t.target_loss,
        started_at=now_iso(),
    )


def _wandb_loggers(cfg: Config, run_id: str, run_dir: Path) -> list:
    if not cfg.train.wandb.enabled:
        return []
    from lit_algos.training.wandb_logging import define_metrics, make_wandb_logger

    logger = make_wandb_logger(cfg, run_id, run_dir)
    if logger is None:
        return []
    define_metrics(logger)
    return [logger]


def train(
    cfg: Config,
    *,
    runs_dir: Path | None = None,
    resume: bool | str = False,
    callbacks: list[L.Callback] | tuple = (),
    loggers: list | tuple = (),
    console=None,
    progress: bool = True,
    run_id: str | None = None,
) -> RunRecord:
    """Train ``cfg`` to its target or budget and return the run record (also in ``runs_dir/<run_id>``).

    ``resume``: True for the newest unfinished run of this config and seed, or a run id / path.
    ``callbacks`` and ``loggers`` are added to lit_algos's own (Lightning objects).
    ``run_id``: the id (directory name) of a new run instead of a fresh dated one; sweeps pass the
    spec id so a run is found again by its config and seed (lit_algos.sweeps).
    """
    from lightning.pytorch.callbacks import LearningRateMonitor

    from lit_algos.data import TokenDataModule, prepare_dataset
    from lit_algos.data.hub import cache_root
    from lit_algos.training.callbacks import (
        BudgetProgress,
        BudgetStop,
        EvalCheckpoint,
        TargetStopping,
        TrainClock,
    )
    from lit_algos.training.module import LitGPT
    from lit_algos.training.recorder import RunRecorder
    from lit_algos.training.trainer import RunIdSync, build_trainer, trainer_options

    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    t = cfg.train
    # Inside SLURM: `srun -n N` becomes a run Lightning accepts, and the run uses the CPUs SLURM gave it.
    complete_srun_environment()
    apply_slurm_threads()

    # Everything that can fail on bad input fails before data preparation or training.
    from lit_algos.sizing import check_fits
    from lit_algos.utils.io import check_writable_dir

    check_fits(cfg)  # a model that cannot fit is refused before it is built
    check_writable_dir(runs_dir, "the runs directory (--runs-dir or $LIT_ALGOS_RUNS)")
    plan = plan_run(cfg)
    options = trainer_options(cfg)
    precision = _host_precision(cfg, plan.accelerator)
    prepared = prepare_dataset(cfg.data, console=console)
    if prepared.vocab_size > cfg.model.vocab_size:
        raise ConfigError(
            "model.vocab_size",
            cfg.model.vocab_size,
            f"The tokenizer {cfg.data.tokenizer!r} has {prepared.vocab_size} tokens; set model.vocab_size >= {prepared.vocab_size}.",
        )

    record = None
    if resume:
        # DDP workers re-run the command: they must resume the run rank 0 picked, not search again.
        which = inherited_run_id() or (resume if isinstance(resume, str) else None)
        run_dir = find_resumable(runs_dir, cfg, which)
        record = RunRecord.load(run_dir / "record.json")
        _check_same_layout(record, cfg)
        run_id = record.run_id
    else:
        run_id = inherited_run_id() or run_id or new_run_id(cfg)
        run_dir = runs_dir / run_id
    ckpt_path = run_dir / "checkpoints" / "last.ckpt"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root(cfg.data.cache_dir) / "inductor"))

    quiet_lightning()
    L.seed_everything(t.seed, workers=True, verbose=False)
    module = LitGPT(cfg.to_dict(), total_steps=plan.max_steps or 1)
    if t.compile:
        module.compile_model()
    datamodule = TokenDataModule(
        prepared, cfg.model.block_size, t.batch_size, t.micro_batch_size, t.seed, cfg.data.num_workers
    )
    if record is None:
        record = _new_record(cfg, run_id, plan, prepared, module.model)
    record.hardware["precision"] = precision  # what the recipe asked for and what ran (lit_algos.precision)

    clock = TrainClock()
    recorder = RunRecorder(
        record,
        run_dir / "record.json",
        clock=clock,
        tokens_per_step=plan.tokens_per_step,
        flops_per_token=plan.flops_per_token,
        bytes_per_token=prepared.val_bytes / prepared.val_tokens,
    )
    stop_at_target = t.stop_at_target  # False: train the declared length in full (the speedrun rule)
    stopping = TargetStopping(t.target_loss if stop_at_target else None, t.divergence_factor)
    budget = BudgetStop(clock, plan.max_steps, plan.max_seconds)
    all_loggers = _wandb_loggers(cfg, run_id, run_dir) + list(loggers)
    own = [clock, budget, stopping, recorder, RunIdSync(record)]
    # MoE: balancing-bias updates and load metrics once per optimizer step (training/moe_callbacks.py).
    from lit_algos.training.moe_callbacks import MoEBalance

    moe = MoEBalance(plan.eval_every_steps) if MoEBalance.applies_to(module.model) else None
    if moe is not None:
        own.append(moe)
    if all_loggers:
        from lightning.pytorch.callbacks import ThroughputMonitor

        own.append(LearningRateMonitor(logging_interval="step"))
        # Per-step throughput (and MFU where Lightning knows the device's peak) from the analytic FLOPs.
        module.flops_per_batch = plan.flops_per_token * plan.micro_batch_size * cfg.model.block_size
        window = max(2, min(50, plan.val_check_interval))  # micro-batches; evaluations are excluded
        own.append(
            ThroughputMonitor(
                batch_size_fn=lambda batch: batch[0].size(0),
                length_fn=lambda batch: batch[0].numel(),
                window_size=window,
            )
        )
    if progress:
        own.append(BudgetProgress(clock, plan.tokens_per_step, plan.max_steps or 0, plan.max_seconds))
    own.append(EvalCheckpoint(run_dir / "checkpoints", every_n_evals=plan.checkpoint_every_evals))
    trainer = build_trainer(
        cfg,
        plan,
        run_dir,
        callbacks=own + list(callbacks),
        loggers=all_loggers,
        options=options,
        precision=precision["ran"],
    )
    if trainer.is_global_zero:
        save_config(cfg, run_dir / "config.yaml")

    error: BaseException | None = None
    try:
        with publish_run_id(run_id):
            trainer.fit(
                module, datamodule=datamodule, ckpt_path=str(ckpt_path) if resume else None, weights_only=True
            )
    except BaseException as err:  # noqa: BLE001  (the record says what happened, then the error goes on)
        error = err
    status = _status(error, stopping, budget)
    if moe is not None:
        recorder.record.component_metrics["moe"] = moe.summary()
    record = recorder.write(
        trainer,
        status,
        error=(f"{type(error).__name__}: {error}" if error is not None else None),
        finished=True,
    )
    if trainer.is_global_zero:
        for logger in all_loggers:
            if type(logger).__module__.startswith("lit_algos.training.wandb"):
                from lit_algos.training.wandb_logging import finish_wandb, log_summary

                log_summary(logger, record)
                finish_wandb(logger, 0 if record.status in ("reached", "budget_exhausted") else 1)
    if record.run_id != run_id:  # a rank started by srun / on another node: rank 0's run (RunIdSync)
        run_id, ckpt_path = record.run_id, runs_dir / record.run_id / "checkpoints" / "last.ckpt"
    if status == "interrupted":
        # Lightning ignores SIGINT after an interrupt and never restores it; give Ctrl-C back to the
        # user and stop whatever loop (seeds, sweeps) called us.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if ckpt_path.is_file():
            hint = f"continue it with: lit-algos train --resume {run_id}"
        else:
            hint = "it had no checkpoint yet (stopped before its first evaluation); start it again without --resume"
        raise KeyboardInterrupt(f"run {run_id} interrupted; {hint}") from error
    if error is not None:
        raise error
    return record


def _host_precision(cfg: Config, accelerator: str) -> dict:
    """The precision this host runs for the recipe's ``train.precision`` (warns when it differs)."""
    import warnings

    from lit_algos.errors import LitAlgosWarning
    from lit_algos.precision import resolve_precision

    ran, reason = resolve_precision(cfg.train.precision, accelerator)
    if reason:
        warnings.warn(reason, LitAlgosWarning, stacklevel=3)
    return {"requested": cfg.train.precision, "ran": ran, "reason": reason}


def _status(error: BaseException | None, stopping, budget) -> str:
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if isinstance(error, (KeyboardInterrupt, SystemExit, SIGTERMException)):
        return "interrupted"  # Lightning turns Ctrl-C into SystemExit(1) and SIGTERM into SIGTERMException
    if error is not None:
        return "failed"
    if stopping.status is not None:
        return stopping.status
    return "budget_exhausted"
