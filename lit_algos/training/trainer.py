"""Build the ``lightning.Trainer`` of a run from its config and plan.

lit_algos owns the arguments that define the measurement (devices, precision, the step budget,
accumulation, the evaluation cadence, checkpointing); any other Trainer argument passes through
from ``train.trainer`` (``--trainer.KEY=VALUE``), and extra callbacks and loggers from the
Python API are added to lit_algos's own.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lit_algos.config import Config
from lit_algos.config.train import TRAINER_OWNED
from lit_algos.errors import ConfigError
from lit_algos.training.plan import RunPlan

if TYPE_CHECKING:
    import lightning as L


def trainer_options(cfg: Config) -> dict[str, Any]:
    """``train.trainer`` checked against the Trainer's signature (owned keys are refused by the config)."""
    options = dict(cfg.train.trainer or {})
    if not options:
        return options
    import lightning as L  # only to read the Trainer's signature: the import takes seconds

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


def trainer_kwargs(cfg: Config, plan: RunPlan | None = None, precision: str | None = None) -> dict[str, Any]:
    """The ``lightning.Trainer`` arguments a recipe implies: devices, precision, the step budget,
    gradient accumulation, the evaluation cadence (every ``train.eval_every_tokens``), logging every
    ``train.log_every`` steps, no sanity evaluation, and the datamodule's own rank split.

    ``lit_algos.train`` builds its Trainer from these; pass them to your own Trainer to train a
    recipe as ``lit-algos train`` does: ``L.Trainer(**la.trainer_kwargs(cfg), logger=..., callbacks=...)``.
    (Gradient clipping is ``LitGPT.configure_gradient_clipping``; the budget's seconds and target
    stops are lit_algos callbacks, not Trainer arguments.)
    """
    from lit_algos.training.plan import plan_run

    plan = plan or plan_run(cfg)
    t = cfg.train
    return dict(
        accelerator=plan.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=precision or t.precision,
        max_steps=plan.max_steps or -1,
        max_epochs=-1,  # one endless epoch: the budget (BudgetStop) or the target ends the run
        accumulate_grad_batches=plan.accumulate,
        val_check_interval=plan.val_check_interval,
        check_val_every_n_epoch=None,  # count batches across epochs: evaluations at exact token counts
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every,
        use_distributed_sampler=False,  # the datamodule splits train and validation data itself
    )


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
    import lightning as L

    options = dict(options or {})
    options.setdefault("enable_model_summary", False)
    options.setdefault("enable_progress_bar", False)  # lit_algos's own bar shows the budget, not epochs
    return L.Trainer(
        **trainer_kwargs(cfg, plan, precision),
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        **options,
    )
