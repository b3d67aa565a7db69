"""Build the ``lightning.Trainer`` of a run from its config and plan.

lit_algos owns the arguments that define the measurement (devices, precision, the step budget,
accumulation, the evaluation cadence, checkpointing); any other Trainer argument passes through
from ``train.trainer`` (``--trainer.KEY=VALUE``), and extra callbacks and loggers from the
Python API are added to lit_algos's own.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import lightning as L

from lit_algos.config import Config
from lit_algos.config.train import TRAINER_OWNED
from lit_algos.errors import ConfigError
from lit_algos.training.distributed import build_strategy
from lit_algos.training.plan import RunPlan


def trainer_options(cfg: Config) -> dict[str, Any]:
    """``train.trainer`` checked against the Trainer's signature (owned keys are refused by the config)."""
    options = dict(cfg.train.trainer or {})
    accepted = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    for key, value in options.items():
        if key in TRAINER_OWNED:  # also checked by TrainConfig; kept for dicts built in Python
            raise ConfigError(
                f"train.trainer.{key}", value, f"lit_algos sets {key!r} itself: {TRAINER_OWNED[key]}."
            )
        if key not in accepted:
            passable = sorted(accepted - set(TRAINER_OWNED))
            raise ConfigError(
                f"train.trainer.{key}",
                value,
                f"lightning.Trainer has no argument {key!r}. Arguments that pass through: {', '.join(passable)}.",
            )
    return options


def build_trainer(
    cfg: Config,
    plan: RunPlan,
    run_dir: Path,
    *,
    callbacks: list[L.Callback],
    loggers: list,
    options: dict[str, Any] | None = None,
    precision: str | None = None,
) -> L.Trainer:
    """``precision``: what runs (``lit_algos.precision.resolve_precision``); default the recipe's."""
    t = cfg.train
    options = dict(options or {})
    options.setdefault("log_every_n_steps", max(1, min(50, plan.eval_every_steps)))
    options.setdefault("enable_model_summary", False)
    options.setdefault("enable_progress_bar", False)  # BudgetProgress shows the budget, not epochs
    return L.Trainer(
        accelerator=plan.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=build_strategy(t.strategy, plan.accelerator),
        precision=precision or t.precision,
        max_steps=plan.max_steps or -1,
        max_epochs=-1,  # one endless epoch: the budget (BudgetStop) or the target ends the run
        accumulate_grad_batches=plan.accumulate,
        gradient_clip_val=cfg.optim.grad_clip,
        val_check_interval=plan.val_check_interval,
        check_val_every_n_epoch=None,  # count batches across epochs: evaluations at exact token counts
        num_sanity_val_steps=0,
        logger=loggers or False,
        callbacks=callbacks,
        use_distributed_sampler=False,  # the datamodule splits train and validation data itself
        default_root_dir=str(run_dir),
        **options,
    )


class RunIdSync(L.Callback):
    """Ranks that rank 0 did not start itself (srun, torchrun, the other nodes of a multi-node
    launch) could not inherit its run id; they take it from rank 0 once the process group is up,
    so every rank's record names the same run. Only rank 0 writes the record and the config."""

    def __init__(self, record):
        self.record = record

    def setup(self, trainer, pl_module, stage):
        self.record.run_id = trainer.strategy.broadcast(self.record.run_id, src=0)
