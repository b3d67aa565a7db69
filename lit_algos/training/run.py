"""``train(config) -> RunRecord``: prepare data, fit to the target, write the run record.

Layout of a run directory (``runs/<run_id>/``): ``record.json`` (the run record, rewritten
atomically at start and end), ``config.yaml`` (the resolved config) and
``checkpoints/last.ckpt`` (written atomically after every evaluation).
"""

from __future__ import annotations

import math
import os
import signal
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch

from lit_algos.config import Config
from lit_algos.config.recipes import save_config
from lit_algos.errors import ConfigError, LitAlgosError
from lit_algos.records import EvalPoint, RunRecord, default_runs_dir
from lit_algos.training.callbacks import BudgetProgress, TargetTracker, TrainClock
from lit_algos.utils.fingerprint import code_fingerprint, hardware_fingerprint, software_fingerprint

RUN_ID_ENV = "LIT_ALGOS_RUN_ID"  # shared with DDP worker processes that re-run the command


def quiet_lightning() -> None:
    """Keep the terminal for our own progress and summary: no Lightning banners or known-benign warnings."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*no `validation_step`.*")  # we evaluate in TargetTracker
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(cfg: Config) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{cfg.name.replace('/', '-')}-s{cfg.train.seed}-{stamp}-{uuid.uuid4().hex[:6]}"


def find_resumable(runs_dir: Path, cfg: Config, which: str | None = None) -> Path:
    """The run directory to resume: ``which`` (a run id or path) or the newest unfinished run of this config and seed."""
    if which:
        path = Path(which) if Path(which).is_dir() else runs_dir / which
        if not (path / "checkpoints" / "last.ckpt").is_file():
            raise LitAlgosError(
                f"Cannot resume {which!r}: no checkpoint at {path / 'checkpoints' / 'last.ckpt'}."
            )
        record = RunRecord.load(path / "record.json")
        if record.config_hash != cfg.config_hash() or record.seed != cfg.train.seed:
            raise LitAlgosError(
                f"Cannot resume {which!r} with this config: it was run with config {record.config_hash} and seed "
                f"{record.seed}, and this command gives config {cfg.config_hash()} and seed {cfg.train.seed}. "
                "Resume with the same recipe, --set overrides and --seed."
            )
        return path
    candidates = []
    for record_path in runs_dir.glob("*/record.json"):
        try:
            record = RunRecord.load(record_path)
        except LitAlgosError:
            continue
        same = record.config_hash == cfg.config_hash() and record.seed == cfg.train.seed
        unfinished = record.status in ("running", "failed")
        if same and unfinished and (record_path.parent / "checkpoints" / "last.ckpt").is_file():
            candidates.append((record.started_at, record_path.parent))
    if not candidates:
        raise LitAlgosError(
            f"Nothing to resume in {runs_dir}: no unfinished run of recipe {cfg.name!r} (config {cfg.config_hash()}, "
            f"seed {cfg.train.seed}) with a checkpoint. Start it without --resume, or pass --resume RUN_ID."
        )
    return max(candidates)[1]


def _check_same_layout(record: RunRecord, cfg: Config) -> None:
    """Gradient accumulation state in a checkpoint counts micro-batches: the split must not change."""
    old, new = record.config.get("train", {}), cfg.to_dict()["train"]
    for key in ("devices", "num_nodes", "micro_batch_size"):
        if old.get(key) != new[key]:
            raise LitAlgosError(
                f"Cannot resume run {record.run_id} with train.{key}={new[key]!r}: it was started with "
                f"{old.get(key)!r}, and its checkpoint counts micro-batches of that layout. Resume with the same value."
            )


def plan_steps(cfg: Config, flops_per_token: float) -> tuple[int, int | None]:
    """Tokens per optimizer step and the step budget implied by max_tokens / max_flops (None if unbounded)."""
    tokens_per_step = cfg.train.batch_size * cfg.model.block_size
    limits = []
    if cfg.train.max_tokens is not None:
        limits.append(math.ceil(cfg.train.max_tokens / tokens_per_step))
    if cfg.train.max_flops is not None:
        limits.append(math.ceil(cfg.train.max_flops / (flops_per_token * tokens_per_step)))
    return tokens_per_step, (min(limits) if limits else None)


def train(
    cfg: Config,
    *,
    runs_dir: Path | None = None,
    resume: bool | str = False,
    console=None,
    progress: bool = True,
) -> RunRecord:
    from lit_algos.data import TokenDataModule, batch_plan, prepare_dataset
    from lit_algos.data.hub import cache_root
    from lit_algos.flops import estimate_flops, measure_flops
    from lit_algos.model import param_counts
    from lit_algos.training.module import LitGPT

    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    t = cfg.train
    world_size = t.devices * t.num_nodes

    # Everything that can fail on bad input fails before data preparation or training.
    flops = estimate_flops(cfg.model)
    tokens_per_step, max_steps = plan_steps(cfg, flops.per_token_train)
    if max_steps is None and cfg.optim.schedule.kind not in ("constant", "inverse_sqrt"):
        raise ConfigError(
            "optim.schedule.kind",
            cfg.optim.schedule.kind,
            "A decaying schedule needs train.max_tokens or train.max_flops to know its length; set one, or use constant / inverse_sqrt.",
        )
    _, accum = batch_plan(t.batch_size, t.micro_batch_size, world_size)  # fails early on an impossible split
    eval_every_steps = max(1, round(t.eval_every_tokens / tokens_per_step))
    ckpt_every_steps = (
        max(1, round(t.checkpoint_every_tokens / tokens_per_step)) if t.checkpoint_every_tokens else None
    )

    prepared = prepare_dataset(cfg.data, console=console)
    if prepared.vocab_size > cfg.model.vocab_size:
        raise ConfigError(
            "model.vocab_size",
            cfg.model.vocab_size,
            f"The tokenizer {cfg.data.tokenizer!r} has {prepared.vocab_size} tokens; set model.vocab_size >= {prepared.vocab_size}.",
        )

    if resume:
        # DDP workers re-run the command: they must resume the run rank 0 picked, not search again.
        which = os.environ.get(RUN_ID_ENV) or (resume if isinstance(resume, str) else None)
        run_dir = find_resumable(runs_dir, cfg, which)
        record = RunRecord.load(run_dir / "record.json")
        run_id = record.run_id
        _check_same_layout(record, cfg)
    else:
        run_id = os.environ.get(RUN_ID_ENV) or new_run_id(cfg)
        run_dir = runs_dir / run_id
        record = None
    ckpt_path = run_dir / "checkpoints" / "last.ckpt"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root(cfg.data.cache_dir) / "inductor"))

    quiet_lightning()
    L.seed_everything(t.seed, workers=True, verbose=False)
    module = LitGPT(cfg.to_dict(), total_steps=max_steps or 1)
    if t.compile:
        module.compile_model()
    datamodule = TokenDataModule(
        prepared, cfg.model.block_size, t.batch_size, t.micro_batch_size, t.seed, cfg.data.num_workers
    )

    accelerator = "gpu" if t.accelerator == "cuda" else t.accelerator
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    hardware = hardware_fingerprint(accelerator, t.devices, t.num_nodes)
    counts = param_counts(module.model)
    if record is None:
        record = RunRecord(
            run_id=run_id,
            recipe=cfg.name,
            config=cfg.to_dict(),
            config_hash=cfg.config_hash(),
            seed=t.seed,
            code=code_fingerprint(),
            hardware=hardware,
            software=software_fingerprint(),
            world_size=world_size,
            data=prepared.record_dict(),
            params=counts,
            flops_per_token={"analytic": flops.per_token_train, "measured": measure_flops(cfg.model)},
            target_loss=t.target_loss,
            started_at=_now(),
        )

    clock = TrainClock()
    loggers = []
    if t.wandb.enabled:
        from lit_algos.training.wandb_logging import define_metrics, make_wandb_logger

        wandb_logger = make_wandb_logger(cfg, run_id, run_dir)
        if wandb_logger is not None:
            define_metrics(wandb_logger)
            loggers.append(wandb_logger)
    bar = BudgetProgress(clock, tokens_per_step, max_steps or 0, t.max_seconds) if progress else None

    def log_to_loggers(metrics: dict, step: int, trainer: L.Trainer) -> None:
        for logger in trainer.loggers:
            try:
                logger.log_metrics(metrics, step=step)
            except Exception as err:  # a logger failure is a warning, never a stopped run
                import warnings

                warnings.warn(f"logger {type(logger).__name__} failed: {err}", stacklevel=1)

    def on_eval(point: EvalPoint, trainer: L.Trainer) -> None:
        metrics = {
            "val/loss": point.val_loss,
            "val/bpb": point.val_bpb,
            "tokens": point.tokens,
            "flops": point.flops,
            "train_seconds": point.train_seconds,
        }
        log_to_loggers(metrics, point.step, trainer)
        if bar is not None:
            bar.on_eval(point, trainer)

    tracker = TargetTracker(
        clock=clock,
        val_loader_fn=datamodule.val_dataloader,
        tokens_per_step=tokens_per_step,
        flops_per_token=flops.per_token_train,
        eval_every_steps=eval_every_steps,
        target_loss=t.target_loss,
        max_seconds=t.max_seconds,
        divergence_factor=t.divergence_factor,
        bytes_per_token=prepared.val_bytes / prepared.val_tokens,
        checkpoint_path=ckpt_path,
        checkpoint_every_steps=ckpt_every_steps,
        on_eval=on_eval,
        stop_at_target=t.stop_at_target,
        on_step=(lambda metrics, step, trainer: log_to_loggers(metrics, step, trainer)) if loggers else None,
    )
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        max_steps=max_steps or -1,
        max_epochs=-1,
        accumulate_grad_batches=accum,
        gradient_clip_val=cfg.optim.grad_clip,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=loggers or False,
        callbacks=[clock, tracker] + ([bar] if bar else []),
        use_distributed_sampler=False,
        default_root_dir=str(run_dir),
        log_every_n_steps=max(1, eval_every_steps),
    )
    if trainer.is_global_zero:
        save_config(cfg, run_dir / "config.yaml")
        record.status = "running"
        record.save(run_dir / "record.json")

    os.environ[RUN_ID_ENV] = run_id  # DDP workers launched by fit re-run this command and must reuse the id
    error: BaseException | None = None
    try:
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=str(ckpt_path) if resume else None, weights_only=True
        )
    except (KeyboardInterrupt, SystemExit) as err:  # Lightning turns Ctrl-C into SystemExit(1)
        error = err
        tracker.status = "failed"
    except Exception as err:
        error = err
        tracker.status = "failed"
    finally:
        os.environ.pop(RUN_ID_ENV, None)

    record = _finish_record(
        record, tracker, clock, trainer, flops.per_token_train, hardware, t.precision, error
    )
    if trainer.is_global_zero:
        record.save(run_dir / "record.json")
        if loggers:
            from lit_algos.training.wandb_logging import finish_wandb, log_summary

            for logger in loggers:
                log_summary(logger, record)
                finish_wandb(logger, 0 if record.status in ("reached", "budget_exhausted") else 1)
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        # Lightning ignores SIGINT after an interrupt and never restores it; give Ctrl-C back to the
        # user and stop whatever loop (seeds, sweeps) called us.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt(f"run {run_id} interrupted; continue it with --resume {run_id}") from error
    if error is not None:
        raise error
    return record


def _finish_record(record, tracker, clock, trainer, flops_per_token, hardware, precision, error) -> RunRecord:
    from lit_algos.flops import peak_flops

    curve = [EvalPoint(**p) for p in tracker.curve]
    final = curve[-1] if curve else None
    tokens_per_second = None
    mfu = None
    if final is not None and final.train_seconds > 0:
        # Throughput over the timed steps only: the warm-up steps' tokens are not in train_seconds.
        timed = max(0.0, 1.0 - clock.excluded_steps / final.step) if final.step else 0.0
        tokens_per_second = final.tokens * timed / final.train_seconds
        peak = peak_flops(hardware["device_name"], precision)
        if peak:
            mfu = (
                final.flops
                * timed
                / final.train_seconds
                / (peak * hardware["n_devices"] * hardware["num_nodes"])
            )
    to_target = tracker.to_target()
    return replace(
        record,
        status=tracker.status,
        curve=curve,
        final=final,
        train_curve=tracker.train_curve,
        reached=tracker.status == "reached" or to_target is not None,
        to_target=to_target,
        tokens_per_second=tokens_per_second,
        mfu=mfu,
        eval_seconds=tracker.eval_seconds,
        warmup_seconds=clock.warmup_seconds,
        warmup_steps=clock.excluded_steps,
        finished_at=_now(),
        error=(f"{type(error).__name__}: {error}" if error is not None else None),
    )
