"""``train(config) -> RunRecord``: plan, prepare data, build the Trainer, fit, return the record.

Layout of a run directory (``runs/<run_id>/``): ``record.json`` (the run record, rewritten
atomically at the start, after every evaluation and at the end), ``config.yaml`` (the resolved
config) and ``checkpoints/last.ckpt`` (written atomically after every evaluation).

    from lit_algos import load_config, train
    record = train(load_config("debug"), callbacks=[MyCallback()], loggers=[CSVLogger("logs")])
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from lit_algos.config import Config
from lit_algos.config.recipes import save_config
from lit_algos.data.hub import cache_root
from lit_algos.data.prepare import new_cache_paths, prepare_dataset
from lit_algos.errors import DataError, LitAlgosError, LitAlgosWarning, StorageError
from lit_algos.flops import record_flops
from lit_algos.model import param_counts
from lit_algos.peaks import device_peak, fingerprint_peaks
from lit_algos.precision import resolve_precision
from lit_algos.records import FINISHED_STATUSES, RESUMABLE_STATUSES, RunRecord, default_runs_dir
from lit_algos.sizing import check_fits
from lit_algos.training.distributed import (
    apply_slurm_threads,
    complete_srun_environment,
    inherited_run_id,
    is_rank_zero,
    publish_run_id,
)
from lit_algos.training.header import RunHeader
from lit_algos.training.plan import RunPlan, plan_run, plan_steps  # noqa: F401  (plan_steps: public)
from lit_algos.training.trainer import trainer_options
from lit_algos.utils.fingerprint import code_fingerprint, hardware_fingerprint, software_fingerprint
from lit_algos.utils.host_memory import keep_freed_memory
from lit_algos.utils.io import check_writable_dir, undone_on_error

if TYPE_CHECKING:
    import lightning as L


def quiet_lightning() -> None:
    """Keep the terminal for our own progress and summary: no Lightning banners or known-benign warnings."""

    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    # The validation set is split across ranks by the datamodule, and its size is fixed by design.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*has `shuffle=True`.*")
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    # A host with SLURM's srun, where a run is started without it (a login node, a plain shell).
    warnings.filterwarnings("ignore", message=".*The `srun` command is available.*")


def new_run_id(cfg: Config) -> str:
    """``<name>-s<seed>-<UTC time>-<random>``: a fresh run directory name."""
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
    # Lightning takes seconds to import: the recorder loads after the header is printed
    from lit_algos.training.recorder import now_iso

    t = cfg.train
    return RunRecord(
        run_id=run_id,
        recipe=cfg.name,
        config=cfg.to_dict(),
        config_hash=cfg.config_hash(),
        seed=t.seed,
        code=code_fingerprint(),
        hardware=hardware_fingerprint(
            plan.accelerator, t.devices, t.num_nodes, fingerprint_peaks(plan.accelerator)
        ),
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
    # here: only W&B runs need its logger (and Lightning, which it loads)
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
    progress: bool | str = True,
    run_id: str | None = None,
) -> RunRecord:
    """Train ``cfg`` to its target or budget and return the run record (also in ``runs_dir/<run_id>``).

    ``resume``: True for the newest unfinished run of this config and seed, or a run id / path.
    ``callbacks`` and ``loggers`` are added to lit_algos's own (Lightning objects).
    ``progress``: ``"bar"`` (rich, for a terminal), ``"lines"`` (plain lines for a log file, see
    ``training/progress.py``), True (the bar when ``console`` / stdout is a terminal, else lines)
    or False (nothing).
    ``run_id``: the id (directory name) of a new run instead of a fresh dated one; sweeps pass the
    spec id so a run is found again by its config and seed (lit_algos.sweeps).
    """
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    # Inside SLURM: `srun -n N` becomes a run Lightning accepts, and the run uses the CPUs SLURM gave it.
    complete_srun_environment()
    apply_slurm_threads()
    # Everything that can fail on bad input fails before data preparation or training.
    check_fits(cfg)  # a model that cannot fit is refused before it is built
    plan, options = plan_run(cfg), trainer_options(cfg)
    run = _open_run(cfg, plan, runs_dir, resume, run_id, progress, console)
    trainer = _assemble(run, options, list(callbacks), list(loggers))
    error: BaseException | None = None
    try:
        with publish_run_id(run.run_id), keep_freed_memory(cfg.train.keep_freed_memory):
            ckpt = str(run.ckpt_path) if run.resumed else None
            trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=ckpt, weights_only=True)
    except BaseException as err:  # noqa: BLE001  (the record says what happened, then the error goes on)
        error = err
    return _finish(run, trainer, error)


@dataclass
class _Run:
    """What ``train`` builds along the way, handed from one of its steps to the next."""

    cfg: Config
    plan: RunPlan
    run_id: str
    run_dir: Path
    resumed: bool
    record: RunRecord | None  # the resumed run's record; a new run's is made with the model
    precision: dict  # requested, ran, reason (lit_algos.precision)
    header: tuple | None  # (progress mode, RunHeader) or None: no progress display
    prepared: object  # the PreparedDataset
    console: object = None
    module: object = None  # the LitGPT
    datamodule: object = None
    recorder: object = None
    stopping: object = None
    budget: object = None
    moe: object = None
    loggers: list = field(default_factory=list)

    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.ckpt"


def _open_run(cfg: Config, plan: RunPlan, runs_dir: Path, resume, run_id, progress, console) -> _Run:
    """The run's id and folder (a new one, or the one to resume), its header, its prepared data.
    Refused data (or a model it does not fit) leaves no runs directory, cache or tokenizer behind."""
    files, trees = new_cache_paths(cfg.data)
    with undone_on_error(runs_dir, *files, trees=trees):
        check_writable_dir(runs_dir, "the runs directory (--runs-dir or $LIT_ALGOS_RUNS)")
        precision = _host_precision(cfg, plan.accelerator)
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
        # The run's id, folder and budget first, before Lightning's import (seconds), data and model.
        header = _show_header(progress, console, cfg, plan, run_id, run_dir, bool(resume))
        prepared = prepare_dataset(cfg.data, console=console)
        _check_data_fits(cfg, prepared)
    return _Run(cfg, plan, run_id, run_dir, bool(resume), record, precision, header, prepared, console)


def _assemble(run: _Run, options: dict, callbacks: list, loggers: list) -> L.Trainer:
    """The LightningModule, the datamodule, the record and its recorder, lit_algos's callbacks and
    the Trainer (``run`` is filled in); the resolved config is saved beside the record."""
    # Lightning takes seconds to import: these load after the header is printed
    import lightning as L

    from lit_algos.data import TokenDataModule
    from lit_algos.training.callbacks import BudgetStop, EvalCheckpoint, TargetStopping
    from lit_algos.training.module import LitGPT
    from lit_algos.training.moe_callbacks import MoEBalance
    from lit_algos.training.recorder import RunIdSync, RunRecorder
    from lit_algos.training.trainer import build_trainer

    cfg, plan, t = run.cfg, run.plan, run.cfg.train
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root(cfg.data.cache_dir) / "inductor"))
    quiet_lightning()
    L.seed_everything(t.seed, workers=True, verbose=False)
    module = run.module = LitGPT(cfg, total_steps=plan.max_steps or 1)
    shown = _progress_callback(run.header, run.console, module.clock, t.log_every)
    if t.compile:
        module.compile_model()
    run.datamodule = TokenDataModule.from_config(cfg, run.prepared)
    if run.record is None:
        run.record = _new_record(cfg, run.run_id, plan, run.prepared, module.model)
    record = run.record
    record.hardware["precision"] = run.precision  # what the recipe asked for and what ran
    record.hardware["peak_flops"] = _peak(record, run.precision["ran"], plan.accelerator)
    module.peak_flops = record.hardware["peak_flops"]["flops"]  # MFU in the logs and progress lines
    clock = module.clock  # LitGPT's training clock; passed first so it splits each step before the others
    run.recorder = RunRecorder(
        record, run.run_dir / "record.json", clock=clock, tokens_per_step=plan.tokens_per_step,
        flops_per_token=plan.flops_per_token, bytes_per_token=run.prepared.val_bytes / run.prepared.val_tokens,
        peak_flops=module.peak_flops,
    )  # fmt: skip
    # stop_at_target false: train the declared length in full (the speedrun rule)
    run.stopping = TargetStopping(t.target_loss if t.stop_at_target else None, t.divergence_factor)
    run.budget = BudgetStop(clock, plan.max_steps, plan.max_seconds)
    run.loggers = _wandb_loggers(cfg, run.run_id, run.run_dir) + loggers
    own = [clock, run.budget, run.stopping, run.recorder, RunIdSync(record)]
    # MoE: balancing-bias updates and load metrics once per optimizer step (training/moe_callbacks.py).
    if MoEBalance.applies_to(module.model):
        run.moe = MoEBalance(plan.eval_every_steps, log=_log_with_axes(module))
        own.append(run.moe)
    if shown is not None:
        own.append(shown)
    own.append(EvalCheckpoint(run.run_dir / "checkpoints", every_n_evals=plan.checkpoint_every_evals))
    trainer = build_trainer(
        cfg, plan, run.run_dir, callbacks=own + callbacks, loggers=run.loggers, options=options,
        precision=run.precision["ran"],
    )  # fmt: skip
    if trainer.is_global_zero:
        save_config(cfg, run.run_dir / "config.yaml")
    return trainer


def _finish(run: _Run, trainer: L.Trainer, error: BaseException | None) -> RunRecord:
    """Write the final record, close W&B, and return it or raise what stopped the run."""
    status = _status(error, run.stopping, run.budget)
    if run.moe is not None:
        run.recorder.record.component_metrics["moe"] = run.moe.summary()
    try:
        failure = f"{type(error).__name__}: {error}" if error is not None else None
        record = run.recorder.write(trainer, status, error=failure, finished=True)
    except StorageError:
        if error is None:
            raise
        record = None  # the run's own error is the one to report (below)
    if error is not None and disk_full(error, run.run_dir):
        raise _disk_full_error(error, run.run_id, run.run_dir, record) from None
    if trainer.is_global_zero:
        for logger in run.loggers:
            if type(logger).__module__.startswith("lit_algos.training.wandb"):
                # here: only W&B runs need its logger (and Lightning, which it loads)
                from lit_algos.training.wandb_logging import finish_wandb, log_summary

                log_summary(logger, record)
                finish_wandb(logger, 0 if record.status in ("reached", "budget_exhausted") else 1)
    if record is not None and record.run_id != run.run_id:  # a rank srun / another node started: rank 0's run
        run.run_id, run.run_dir = record.run_id, run.run_dir.parent / record.run_id
    if status == "interrupted":
        # Lightning ignores SIGINT after an interrupt and never restores it; give Ctrl-C back to the
        # user and stop whatever loop (seeds, sweeps) called us.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if run.ckpt_path.is_file():
            hint = f"continue it with: lit-algos train --resume {run.run_id}"
        else:
            hint = "it had no checkpoint yet (stopped before its first evaluation); start it again without --resume"
        raise KeyboardInterrupt(f"run {run.run_id} interrupted; {hint}") from error
    if error is not None:
        raise error
    return record


def _host_precision(cfg: Config, accelerator: str) -> dict:
    """The precision this host runs for the recipe's ``train.precision`` (warns when it differs)."""

    ran, reason = resolve_precision(cfg.train.precision, accelerator)
    if reason:
        warnings.warn(reason, LitAlgosWarning, stacklevel=3)
    return {"requested": cfg.train.precision, "ran": ran, "reason": reason}


def _status(error: BaseException | None, stopping, budget) -> str:
    from lightning.pytorch.utilities.exceptions import SIGTERMException  # Lightning: after the header

    if isinstance(error, (KeyboardInterrupt, SystemExit, SIGTERMException)):
        return "interrupted"  # Lightning turns Ctrl-C into SystemExit(1) and SIGTERM into SIGTERMException
    if error is not None:
        return "failed"
    if stopping.status is not None:
        return stopping.status
    return "budget_exhausted"


def _show_header(progress, console, cfg: Config, plan: RunPlan, run_id, run_dir, resumed):
    """Print the run's header line (rank 0) and return ``(mode, header)`` for the progress display,
    or None when ``progress`` is off. Needs no Lightning, so it comes before the slow imports."""

    if not progress or not is_rank_zero():
        return None
    if progress is True or progress == "auto":
        terminal = console.is_terminal if console is not None else sys.stdout.isatty()
        progress = "bar" if terminal else "lines"
    if progress not in ("bar", "lines"):
        raise ValueError(f"progress={progress!r}: allowed are True, False, 'auto', 'bar', 'lines'")
    header = RunHeader(
        run_id=run_id,
        run_dir=str(run_dir),
        recipe=cfg.name,
        config_hash=cfg.config_hash(),
        seed=cfg.train.seed,
        tokens_per_step=plan.tokens_per_step,
        max_steps=plan.max_steps,
        max_seconds=plan.max_seconds,
        target=cfg.train.target_loss if cfg.train.stop_at_target else None,
        eval_every_tokens=plan.eval_every_steps * plan.tokens_per_step,
        device=f"{plan.world_size}x {plan.accelerator}",
        resumed=resumed,
    )
    if progress == "lines":
        print(header.line(), flush=True)
    else:
        (console or Console()).print(escape(header.line()), highlight=False)
    return progress, header


def _progress_callback(shown, console, clock, every: int):
    """The bar or the plain lines for a header from ``_show_header`` (None: no progress)."""
    if shown is None:
        return None
    # Lightning takes seconds to import: the progress callbacks load after the header is printed
    from lit_algos.training.progress import BudgetProgress, ProgressLines

    mode, header = shown
    if mode == "bar":
        return BudgetProgress(clock, header, console=console)
    return ProgressLines(clock, header, every=every)


def _peak(record: RunRecord, precision: str, accelerator: str) -> dict:
    """The per-device peak FLOP/s MFU is computed against, and its source (``peaks.device_peak``)."""

    flops, source = device_peak(record.hardware.get("device_name", ""), precision, accelerator)
    return {"flops": flops, "source": source}


def _log_with_axes(module):
    """A ``MoEBalance`` log function: the metrics with their step's tokens, FLOPs and seconds."""
    from lit_algos.training.recorder import RunRecorder  # Lightning: after the header

    def log(metrics: dict, step: int, trainer) -> None:
        axes = {
            k: v for k, v in module.axes(step).items() if k != "step"
        }  # the step goes as the logger's step
        RunRecorder.send_to_loggers(trainer, {**metrics, **axes}, step)

    return log


def _check_data_fits(cfg: Config, prepared) -> None:
    """The prepared data must hold what the model reads, before any run folder exists."""
    from lit_algos.training.module import check_vocab  # Lightning: after the header

    check_vocab(cfg, prepared.vocab_size)
    if (prepared.train_tokens - 1) // cfg.model.block_size < 1:
        raise DataError(
            f"The train split of {prepared.root} has {prepared.train_tokens} tokens, fewer than one sequence of "
            f"{cfg.model.block_size + 1} (model.block_size + 1). Use more training data or a smaller model.block_size."
        )


def disk_full(error: BaseException, run_dir: Path) -> bool:
    """Whether ``error`` is the disk (or quota) running out: an OSError saying so, or torch's
    writer failing while the run's file system has (almost) no space left."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, StorageError):
        return "full" in str(error)
    if isinstance(error, RuntimeError) and "writ" in str(error):
        try:
            return shutil.disk_usage(run_dir).free < (1 << 20)
        except OSError:
            return False
    return False


def _disk_full_error(error: BaseException, run_id: str, run_dir: Path, record) -> StorageError:
    """What a disk that filled up during training left: the message says exactly that."""
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    kept = (
        f"its last checkpoint ({ckpt}) is intact, so it can be continued with `lit-algos train --resume {run_id}`"
        if ckpt.is_file()
        else "it had no checkpoint yet, so start it again"
    )
    state = (
        f"its record ({run_dir / 'record.json'}) says 'failed'"
        if record is not None
        else f"its record ({run_dir / 'record.json'}) could not be updated and reads 'interrupted' once this process ends"
    )
    return StorageError(
        f"Run {run_id} stopped: the disk (or your quota) under {run_dir} is full ({type(error).__name__}: {error}). "
        f"No partial checkpoint was left; {state}; {kept} once space is freed."
    )
