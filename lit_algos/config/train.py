"""Training config: batch, budget, target, evaluation cadence, systems switches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lit_algos.errors import ConfigError
from lit_algos.utils.typed import check_choice, check_positive


@dataclass
class WandbConfig:
    enabled: bool = False  # opt-in; `lit-algos train --wandb` sets it
    project: str = "lit_algos"
    entity: str | None = None
    group: str | None = None  # the experiment; defaults to the recipe name
    mode: str | None = None  # online | offline | disabled; null: $WANDB_MODE, else offline without an API key
    tags: list[str] = field(default_factory=list)  # added to the component tags (a study adds study:<name>)

    def __post_init__(self):
        if self.mode is not None:
            check_choice("mode", self.mode, ("online", "offline", "disabled"))


# Trainer arguments that lit_algos derives from the config, and where to change them instead.
TRAINER_OWNED = {
    "accelerator": "set train.accelerator",
    "devices": "set train.devices",
    "num_nodes": "set train.num_nodes",
    "strategy": "set train.strategy",
    "precision": "set train.precision",
    "max_steps": "set train.max_tokens or train.max_flops",
    "min_steps": "the budget decides when a run ends",
    "max_epochs": "the budget decides when a run ends",
    "min_epochs": "the budget decides when a run ends",
    "max_time": "set train.max_seconds (the training clock, evaluation excluded)",
    "accumulate_grad_batches": "set train.micro_batch_size; the global batch stays train.batch_size",
    "gradient_clip_val": "set optim.grad_clip (LitGPT.configure_gradient_clipping applies it)",
    "log_every_n_steps": "set train.log_every",
    "val_check_interval": "set train.eval_every_tokens",
    "check_val_every_n_epoch": "set train.eval_every_tokens",
    "limit_val_batches": "the whole validation set is evaluated",
    "limit_train_batches": "set a budget",
    "num_sanity_val_steps": "every evaluation is on the curve",
    "val_check_time_interval": "set train.eval_every_tokens",
    "enable_checkpointing": "checkpoints follow the evaluations (train.checkpoint_every_tokens)",
    "callbacks": "pass callbacks= to lit_algos.train()",
    "logger": "pass loggers= to lit_algos.train(), or --wandb",
    "default_root_dir": "the run directory is runs/<run_id>",
    "use_distributed_sampler": "the datamodule splits data across ranks",
    "reload_dataloaders_every_n_epochs": "the data order is a function of (seed, step)",
    "fast_dev_run": "use a small budget (train.max_tokens)",
    "overfit_batches": "use a small budget (train.max_tokens)",
    "barebones": "lit_algos needs callbacks and logging",
}


@dataclass
class TrainConfig:
    batch_size: int = 32  # global batch in sequences, the same whatever the device count
    micro_batch_size: int | None = None  # per device; null: batch_size / devices (no accumulation)
    target_loss: float | None = None  # stop as soon as the full validation loss is <= this
    # false: run the declared length (max_tokens/...) in full and only record the crossing; the
    # speedrun rule (speedrun, submit) needs full runs, so its t-test is on unbiased final losses
    stop_at_target: bool = True
    max_tokens: int | None = 2_000_000  # budget; any of the three may be set, the first spent stops the run
    max_flops: float | None = None
    max_seconds: float | None = None  # training-clock seconds (evaluation and compilation excluded)
    eval_every_tokens: int = 262_144
    # Step metrics (train loss, lr, grad norm, tokens/s, MFU) go to the loggers, and a plain progress
    # line to a log file, every this many optimizer steps (Lightning's log_every_n_steps).
    log_every: int = 5
    divergence_factor: float = 4.0  # diverged when loss is non-finite or > factor * the first eval loss
    precision: str = "32-true"  # 32-true | bf16-mixed | 16-mixed | bf16-true
    compile: bool = False
    # The loss's strategy (lit_algos.loss.lm_loss): chunked head + cross-entropy without the full
    # logits (true), or the full logits and F.cross_entropy (false; to measure the difference)
    chunked_loss: bool = True
    # Keep freed host memory in the process during the run (glibc mallopt; lit_algos.utils.host_memory)
    # instead of returning it to the OS and faulting it in again every step; false: malloc's defaults
    keep_freed_memory: bool = True
    devices: int = 1
    accelerator: str = "auto"  # auto | cpu | gpu
    strategy: str = "auto"  # auto | ddp | fsdp (ddp_spawn cannot return the curve to the launching process)
    num_nodes: int = 1
    checkpoint_every_tokens: int | None = None  # null: every evaluation; else ~N tokens apart
    seed: int = 0
    wandb: WandbConfig = field(default_factory=WandbConfig)
    # Extra lightning.Trainer arguments lit_algos does not own (profiler, detect_anomaly, ...);
    # `--trainer.KEY=VALUE` on the command line. Null: none.
    trainer: dict[str, Any] | None = None

    def __post_init__(self):
        check_positive("batch_size", self.batch_size)
        check_positive("target_loss", self.target_loss, allow_none=True)
        check_positive("micro_batch_size", self.micro_batch_size, allow_none=True)
        check_positive("max_tokens", self.max_tokens, allow_none=True)
        check_positive("max_flops", self.max_flops, allow_none=True)
        check_positive("max_seconds", self.max_seconds, allow_none=True)
        check_positive("eval_every_tokens", self.eval_every_tokens)
        check_positive("log_every", self.log_every)
        check_positive("divergence_factor", self.divergence_factor)
        check_positive("devices", self.devices)
        check_positive("num_nodes", self.num_nodes)
        check_positive("checkpoint_every_tokens", self.checkpoint_every_tokens, allow_none=True)
        check_choice("precision", self.precision, ("32-true", "bf16-mixed", "16-mixed", "bf16-true"))
        check_choice("accelerator", self.accelerator, ("auto", "cpu", "gpu", "cuda", "mps"))
        check_choice("strategy", self.strategy, ("auto", "ddp", "fsdp"))
        for key in self.trainer or {}:
            if key in TRAINER_OWNED:
                raise ConfigError(
                    f"trainer.{key}",
                    self.trainer[key],
                    f"lit_algos sets the Trainer's {key!r} itself ({TRAINER_OWNED[key]}); it cannot be passed through.",
                )
        if (
            self.max_tokens is None
            and self.max_flops is None
            and self.max_seconds is None
            and self.target_loss is None
        ):
            raise ConfigError(
                "max_tokens",
                None,
                "Set a target_loss or at least one budget (max_tokens, max_flops, max_seconds).",
            )
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ConfigError(
                "micro_batch_size", self.micro_batch_size, f"It must divide batch_size ({self.batch_size})."
            )
