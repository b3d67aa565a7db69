"""Build the ``lightning.Trainer`` of a run from its config and plan.

lit_algos owns the arguments that define the measurement (devices, precision, the step budget,
accumulation, the evaluation cadence, checkpointing); any other Trainer argument passes through
from ``train.trainer`` (``--trainer.KEY=VALUE``), and extra callbacks and loggers from the
Python API are added to lit_algos's own.
"""

from __future__ import annotations

import collections.abc
import inspect
import logging
import math
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lit_algos.config import Config
from lit_algos.config.train import TRAINER_OWNED
from lit_algos.errors import ConfigError
from lit_algos.training.distributed import build_strategy
from lit_algos.training.plan import RunPlan, plan_run

if TYPE_CHECKING:
    import lightning as L


def trainer_options(cfg: Config) -> dict[str, Any]:
    """``train.trainer`` checked against the Trainer's signature, names and value types (owned
    keys are refused by the config), before anything is prepared or written."""
    options = dict(cfg.train.trainer or {})
    if not options:
        return options
    import lightning as L  # only to read the Trainer's signature: the import takes seconds

    params = inspect.signature(L.Trainer.__init__).parameters
    accepted = set(params) - {"self"}
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
        annotation = params[key].annotation
        if not accepts(value, annotation):
            raise ConfigError(
                f"train.trainer.{key}", value, f"lightning.Trainer's {key!r} takes {describe(annotation)}."
            )
    _try_trainer(options)
    return options


def _try_trainer(options: dict[str, Any]) -> None:
    """Let Lightning judge the values too (e.g. an unknown profiler name), before any data or
    run folder exists: a Trainer is built and dropped (it writes nothing until it fits)."""

    # Lightning takes seconds to import: a run's header prints before it loads
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.WARNING)  # no "GPU available" banner for a check
    try:
        L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False, **options)  # fmt: skip
    except (MisconfigurationException, ValueError, TypeError) as err:
        raise refused(err, options) from None
    finally:
        log.setLevel(level)


# What a value from a recipe or the command line (YAML: null, bool, int, float, str, list, mapping)
# can be for each kind of annotation in lightning.Trainer's signature.
_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}


def accepts(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation``; an object type (a Profiler, a timedelta) fits no YAML value."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (inspect.Parameter.empty, Any):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(accepts(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation in (str, Path):
        return isinstance(value, str)
    if origin in (list, collections.abc.Iterable):
        return isinstance(value, list) and all(accepts(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict) and all(accepts(v, args[1]) for v in value.values())
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # a typing construct not used by the Trainer today: Lightning judges it


def describe(annotation: Any) -> str:
    """'an integer or null', "one of 'value', 'norm'"... for the error message."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        # Sorted, null last: typing caches equal Unions, so Union[int, float] may come back as an
        # earlier Union[float, int] and the written order is not reliable.
        parts = sorted({describe(a) for a in args} - {""}, key=lambda p: (p == "null", p))
        return " or ".join(parts)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, collections.abc.Iterable):
        return f"a list of {describe(args[0])}" if args else "a list"
    if origin is dict:
        return f"a mapping to {describe(args[1])}"
    if annotation in _NAMES:
        return _NAMES[annotation]
    if annotation is Path:
        return "a path"
    return ""  # an object type: nothing a recipe can write


def refused(err: Exception, options: dict[str, Any]) -> ConfigError:
    """Lightning's own refusal of a passed-through argument as a ConfigError naming it."""
    key = next((k for k in options if k in str(err)), None)
    field = f"train.trainer.{key}" if key else "train.trainer"
    return ConfigError(field, options.get(key, options), f"lightning.Trainer refused it: {err}")


def trainer_kwargs(cfg: Config, plan: RunPlan | None = None, precision: str | None = None) -> dict[str, Any]:
    """The ``lightning.Trainer`` arguments a recipe implies: devices, precision, the step budget,
    gradient accumulation, the evaluation cadence (every ``train.eval_every_tokens``), logging every
    ``train.log_every`` steps, no sanity evaluation, and the datamodule's own rank split.

    ``lit_algos.train`` builds its Trainer from these; pass them to your own Trainer to train a
    recipe as ``lit-algos train`` does: ``L.Trainer(**la.trainer_kwargs(cfg), logger=..., callbacks=...)``.
    (Gradient clipping is ``LitGPT.configure_gradient_clipping``; the budget's seconds and target
    stops are lit_algos callbacks, not Trainer arguments.)
    """

    plan = plan or plan_run(cfg)
    t = cfg.train
    return dict(
        accelerator=plan.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=build_strategy(t.strategy, plan.accelerator),  # fsdp: lit_algos.training.fsdp
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
    # Lightning takes seconds to import: a run's header prints before it loads
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    options = dict(options or {})
    options.setdefault("enable_model_summary", False)
    options.setdefault("enable_progress_bar", False)  # lit_algos's own bar shows the budget, not epochs
    try:
        return L.Trainer(
            **trainer_kwargs(cfg, plan, precision),
            logger=loggers or False,
            callbacks=callbacks,
            default_root_dir=str(run_dir),
            **options,
        )
    except (MisconfigurationException, ValueError, TypeError) as err:
        passed = dict(cfg.train.trainer or {})
        if not passed:
            raise
        raise refused(err, passed) from None
