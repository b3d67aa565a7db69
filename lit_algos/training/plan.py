"""The plan of a run: a pure function of the config (no data, no model, no Trainer).

Everything that can be wrong with the budget, the batch layout or the evaluation cadence fails
here, before any data is prepared. ``describe`` and the tests use it as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lit_algos.config import Config
from lit_algos.data import batch_plan
from lit_algos.errors import ConfigError
from lit_algos.flops import estimate_flops


@dataclass(frozen=True)
class RunPlan:
    tokens_per_step: int  # global batch x block size: the same on every device count
    max_steps: int | None  # from max_tokens / max_flops (None: only the seconds budget or the target stops)
    max_seconds: float | None  # training-clock seconds
    world_size: int
    micro_batch_size: int  # per rank
    accumulate: int  # micro-batches per rank per optimizer step
    eval_every_steps: int
    checkpoint_every_evals: int
    flops_per_token: float  # analytic training FLOPs (forward + backward) per token
    accelerator: str  # the Lightning accelerator name ("cpu", "gpu", "mps")

    @property
    def val_check_interval(self) -> int:
        """Lightning counts training batches (micro-batches per rank), not optimizer steps."""
        return self.eval_every_steps * self.accumulate


def resolve_accelerator(name: str) -> str:
    accelerator = "gpu" if name == "cuda" else name
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    return accelerator


def plan_steps(cfg: Config, flops_per_token: float) -> tuple[int, int | None]:
    """Tokens per optimizer step and the step budget implied by max_tokens / max_flops (None if unbounded)."""
    tokens_per_step = cfg.train.batch_size * cfg.model.block_size
    limits = []
    if cfg.train.max_tokens is not None:
        limits.append(math.ceil(cfg.train.max_tokens / tokens_per_step))
    if cfg.train.max_flops is not None:
        limits.append(math.ceil(cfg.train.max_flops / (flops_per_token * tokens_per_step)))
    return tokens_per_step, (min(limits) if limits else None)


def plan_run(cfg: Config) -> RunPlan:
    """The run's plan from its config alone (budget in steps, batch layout, cadence, FLOPs); bad values fail here."""

    t = cfg.train
    flops = estimate_flops(cfg.model)
    tokens_per_step, max_steps = plan_steps(cfg, flops.per_token_train)
    if max_steps is None and cfg.optim.schedule.kind not in ("constant", "inverse_sqrt"):
        raise ConfigError(
            "optim.schedule.kind",
            cfg.optim.schedule.kind,
            "A decaying schedule needs train.max_tokens or train.max_flops to know its length; set one, or use constant / inverse_sqrt.",
        )
    world_size = t.devices * t.num_nodes
    micro, accum = batch_plan(
        t.batch_size, t.micro_batch_size, world_size
    )  # fails early on an impossible split
    eval_every_steps = max(1, round(t.eval_every_tokens / tokens_per_step))
    every_evals = 1
    if t.checkpoint_every_tokens:
        # Checkpoints are taken right after evaluations (the curve in them is then complete).
        every_evals = max(1, round(t.checkpoint_every_tokens / (eval_every_steps * tokens_per_step)))
    return RunPlan(
        tokens_per_step=tokens_per_step,
        max_steps=max_steps,
        max_seconds=t.max_seconds,
        world_size=world_size,
        micro_batch_size=micro,
        accumulate=accum,
        eval_every_steps=eval_every_steps,
        checkpoint_every_evals=every_evals,
        flops_per_token=flops.per_token_train,
        accelerator=resolve_accelerator(t.accelerator),
    )
