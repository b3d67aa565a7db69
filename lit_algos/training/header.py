"""The one line that says what a run is: printed first, before anything slow (Lightning's import
included), by ``lit_algos.train``'s progress display (``progress.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass


def duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class RunHeader:
    """What a run is, in one line: printed first, before anything slow."""

    run_id: str
    run_dir: str
    recipe: str
    config_hash: str
    seed: int
    tokens_per_step: int
    max_steps: int | None
    max_seconds: float | None
    target: float | None
    eval_every_tokens: int
    device: str
    resumed: bool = False

    def line(self) -> str:
        budget = []
        if self.max_steps:
            budget.append(f"{self.max_steps * self.tokens_per_step:,} tokens ({self.max_steps} steps)")
        if self.max_seconds:
            budget.append(f"{self.max_seconds:g} s of training")
        return " | ".join(
            [
                f"{'resume' if self.resumed else 'run'} {self.run_id}",
                f"folder {self.run_dir}",
                f"recipe {self.recipe} (config {self.config_hash}, seed {self.seed})",
                "budget " + (" or ".join(budget) if budget else "none (until the target)"),
                f"target {self.target if self.target is not None else '-'}",
                f"eval every {self.eval_every_tokens:,} tokens",
                self.device,
            ]
        )
