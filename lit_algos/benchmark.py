"""Throughput of the real training loop: a recipe trained for a few steps on the speedrun clock.

Used by ``lit-algos benchmark`` and by ``submit``'s same-machine reference, so both time the
same thing: ``steps`` timed optimizer steps after one warm-up step, one evaluation at the end
(excluded from the clock), no target and no other budget.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path


def benchmark_recipe(recipe: str, overrides: Sequence[str] = (), steps: int = 30):
    """Train ``recipe`` (with ``overrides``) for ``steps`` timed steps; returns (config, run record)."""
    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train

    cfg = load_config(recipe, list(overrides))
    tokens_per_step = cfg.train.batch_size * cfg.model.block_size
    budget = [
        f"train.max_tokens={(steps + 1) * tokens_per_step}",  # +1: the first step is warm-up
        "train.max_flops=null",
        "train.max_seconds=null",
        "train.target_loss=null",
        f"train.eval_every_tokens={10 * (steps + 1) * tokens_per_step}",
    ]
    cfg = load_config(recipe, [*overrides, *budget])
    with tempfile.TemporaryDirectory(prefix="lit-algos-bench-") as tmp:
        record = train(cfg, runs_dir=Path(tmp), progress=False)
    return cfg, record
