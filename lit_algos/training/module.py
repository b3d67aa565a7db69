"""The LightningModule: a GPT, its optimizer and schedule, and a full-validation-set evaluator.

Evaluation is not Lightning's validation loop: the target tracker calls ``evaluate`` at exact
token counts (between optimizer steps), so each evaluation sees the whole fixed validation set
in a fixed order and checkpoints taken right after it hold a consistent curve.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import SumMetric

from lit_algos.config import Config
from lit_algos.data.datamodule import IGNORE_INDEX
from lit_algos.model import build_model
from lit_algos.optim import build_optimizer, build_scheduler


class LitGPT(L.LightningModule):
    def __init__(self, config: dict, total_steps: int):
        super().__init__()
        self.save_hyperparameters()  # the resolved config travels inside every checkpoint
        self.cfg = Config.from_dict(config)
        self.total_steps = total_steps
        self.model = build_model(self.cfg.model)
        self._compiled = None  # torch.compile'd forward, kept out of the module tree and the state dict
        # Metric objects sum across DDP ranks when computed: each rank evaluates its own slice.
        self.val_loss_sum = SumMetric(nan_strategy="disable")  # a NaN loss must stay NaN (divergence)
        self.val_token_count = SumMetric()
        self.step_losses: list[torch.Tensor] = []  # micro-batch losses of the current optimizer step

    def compile_model(self) -> None:
        """Compile the training forward (applied from outside the model file, torchtitan-style)."""
        # object.__setattr__: an OptimizedModule is an nn.Module and would otherwise be registered as a
        # child, doubling the state dict under '_compiled._orig_mod.*'.
        object.__setattr__(self, "_compiled", torch.compile(self.model))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        model = self._compiled if self._compiled is not None else self.model
        return model(idx, targets)

    def training_step(self, batch, batch_idx):
        x, y = batch  # (B, T), (B, T)
        _, loss = self(x, y)
        self.step_losses.append(loss.detach())
        self.log("train/loss", loss, prog_bar=False, logger=False)
        return loss

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.cfg.optim)
        scheduler = build_scheduler(optimizer, self.cfg.optim.schedule, self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def pop_step_loss(self) -> float:
        """Mean training loss of the optimizer step just taken, averaged over micro-batches and ranks."""
        if not self.step_losses:
            return float("nan")
        local = torch.stack(self.step_losses).float().mean()
        self.step_losses.clear()
        return float(self.trainer.strategy.reduce(local, reduce_op="mean"))

    @torch.no_grad()
    def evaluate(self, loader) -> tuple[float, int]:
        """Mean cross-entropy (nats/token) over every sequence of ``loader`` on all ranks, and the token count."""
        was_training = self.model.training
        self.model.eval()
        self.val_loss_sum.reset()
        self.val_token_count.reset()
        context = self.trainer.precision_plugin.forward_context() if self._trainer else torch.no_grad()
        with context:
            for x, y in loader:
                x, y = x.to(self.device), y.to(self.device)
                logits, _ = self.model(x)  # (B, T, V)
                # Padding targets (IGNORE_INDEX) fill the last window and even out ranks; they count for nothing.
                loss = F.cross_entropy(
                    logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
                )
                self.val_loss_sum.update(loss)
                self.val_token_count.update((y != IGNORE_INDEX).sum().float())
        total = float(self.val_loss_sum.compute())
        count = int(self.val_token_count.compute())
        self.model.train(was_training)
        return (total / count if count else math.nan), count
