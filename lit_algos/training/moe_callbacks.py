"""The training-side half of MoE: balancing-bias updates, load statistics and the aux loss.

``MoEBalance`` runs once per optimizer step (``on_before_optimizer_step``: after the last
micro-batch's backward, before the weights change). It calls
``lit_algos.components.moe.update_balance`` with an all-reduce through the Lightning strategy,
so every DDP rank applies the same update to the aux-free biases, outside autograd. At each
step boundary it also logs the mean auxiliary loss (apart from the LM loss) and, every
``log_every_steps``, per-layer load metrics; ``summary()`` gives the numbers that go into the
run record (``RunRecord.component_metrics["moe"]``) and the W&B summary.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import lightning as L
import torch

from lit_algos.components.moe import moe_layers, update_balance
from lit_algos.training.recorder import RunRecorder


class MoEBalance(L.Callback):
    def __init__(
        self,
        log_every_steps: int = 1,
        log: Callable[[dict, int, L.Trainer], None] | None = None,
        window_steps: int = 50,
    ):
        self.log_every_steps = max(1, log_every_steps)
        self.log_fn = log  # callable(metrics, step, trainer); default: every logger of the trainer
        self.window: deque[list[dict]] = deque(maxlen=window_steps)  # per-step layer stats, latest last
        self.aux_losses: list[float] = []  # mean auxiliary loss per optimizer step
        self._pending: list[dict] = []
        self._last_step_seen = 0

    @staticmethod
    def applies_to(model: torch.nn.Module) -> bool:
        return bool(moe_layers(model))

    def on_train_start(self, trainer, pl_module):
        self._last_step_seen = trainer.global_step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        stats = update_balance(pl_module.model, lambda t: trainer.strategy.reduce(t, reduce_op="sum"))
        if stats:
            self.window.append(stats)
            self._pending = stats

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step == self._last_step_seen:  # inside gradient accumulation
            return
        self._last_step_seen = step
        aux = pl_module.step_aux_losses
        local = torch.stack(aux).float().mean() if aux else torch.zeros(())
        aux.clear()
        aux_loss = float(trainer.strategy.reduce(local.to(pl_module.device), reduce_op="mean"))
        self.aux_losses.append(aux_loss)
        if step % self.log_every_steps == 0:
            metrics = {"train/aux_loss": aux_loss, **flat_metrics(self._pending)}
            if self.log_fn is not None:
                self.log_fn(metrics, step, trainer)
            elif trainer.loggers:
                RunRecorder.send_to_loggers(trainer, metrics, step)

    def summary(self) -> dict:
        """Load over the last ``window_steps`` optimizer steps, per layer, and the aux loss."""
        layers = []
        if self.window:
            for i, last in enumerate(self.window[-1]):
                counts = torch.tensor([step[i]["counts"] for step in self.window]).sum(0)  # (E,)
                mean = counts.mean()
                layers.append(
                    {
                        "layer": last["layer"],
                        "fraction": (counts / counts.sum()).tolist(),
                        "max_over_mean": float(counts.max() / mean) if mean > 0 else math.nan,
                        "entropy": sum(step[i]["entropy"] for step in self.window) / len(self.window),
                        "bias": last["bias"],
                    }
                )
        tail = self.aux_losses[-len(self.window) or None :] if self.aux_losses else []
        return {
            "window_steps": len(self.window),
            "aux_loss": sum(tail) / len(tail) if tail else None,
            "max_over_mean": max((layer["max_over_mean"] for layer in layers), default=None),
            "layers": layers,
        }


def flat_metrics(stats: list[dict], prefix: str = "moe") -> dict[str, float]:
    """Per-layer statistics as flat logger keys: moe/layer{i}/{max_over_mean,entropy,fraction/e,bias/e}."""
    out: dict[str, float] = {}
    for layer in stats:
        base = f"{prefix}/layer{layer['layer']}"
        out[f"{base}/max_over_mean"] = layer["max_over_mean"]
        out[f"{base}/entropy"] = layer["entropy"]
        for e, (frac, bias) in enumerate(zip(layer["fraction"], layer["bias"], strict=True)):
            out[f"{base}/fraction/{e}"] = frac
            out[f"{base}/bias/{e}"] = bias
    return out
