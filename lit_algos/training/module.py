"""The LightningModule: a GPT, its optimizer and schedule, and Lightning's validation loop.

Training and evaluation share one loss: the model's forward, mean cross-entropy over the
targets that are not ``IGNORE_INDEX`` (-100, PyTorch's convention). ``validation_step`` runs
over the whole fixed validation set in a fixed order (the datamodule pads every rank to the
same number of windows with all-ignored ones); each batch's mean is weighted by its count of
real targets in a torchmetrics ``MeanMetric``, which sums across ranks when Lightning computes
it, so the logged ``val/loss`` is the mean over every validation token whatever the device count.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import grad_norm
from torchmetrics import MeanMetric

from lit_algos.config import Config
from lit_algos.model import IGNORE_INDEX, build_model
from lit_algos.optim import build_optimizer, build_scheduler, parameter_tags
from lit_algos.training.distributed import fsdp_root


class LitGPT(L.LightningModule):
    def __init__(self, config: dict, total_steps: int):
        super().__init__()
        self.save_hyperparameters()  # the resolved config travels inside every checkpoint
        self.cfg = Config.from_dict(config)
        self.total_steps = total_steps
        self.model = build_model(self.cfg.model)
        # Optimizer groups follow these tags; under FSDP the parameters are flat shards by the time
        # configure_optimizers runs, so they are taken now, before the blocks are wrapped.
        self._param_tags = parameter_tags(self.model)
        self._compiled = None  # torch.compile'd forward, kept out of the module tree and the state dict
        # A NaN loss must stay non-finite so that divergence is seen, not averaged away: NaN -> +inf.
        # (Not nan_strategy="disable": torchmetrics 1.9 then drops the weights, giving a mean of batch means.)
        self.val_loss = MeanMetric(nan_strategy=float("inf"))
        self.val_loss.set_dtype(
            torch.float64
        )  # sums over ~1e7 tokens: keep float32 rounding out of the curve
        self.step_losses: list[torch.Tensor] = []  # micro-batch losses of the current optimizer step
        self.step_aux_losses: list[torch.Tensor] = []  # their auxiliary losses (popped by moe_callbacks)

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
        model = self._compiled if self._compiled is not None else self.model
        # aux: the blocks' auxiliary losses (MoE load balancing); a constant 0 for dense models.
        _, loss, aux = model(x, y, return_aux=True, loss_only=True)  # no full logits
        self.step_losses.append(loss.detach())  # the language-model loss alone: curves and targets use it
        if aux.requires_grad:  # only a real auxiliary loss is kept (MoEBalance pops and logs it per step)
            self.step_aux_losses.append(aux.detach())
        return loss + aux

    def validation_step(self, batch, batch_idx):
        x, y = batch  # (B, T), (B, T); rows of IGNORE_INDEX pad the last window and even out ranks
        model = self._compiled if self._compiled is not None else self.model
        _, loss = model(x, y, loss_only=True)
        count = (y != IGNORE_INDEX).sum()
        # An all-padding batch has a NaN mean and weight 0; it must add nothing (NaN * 0 is NaN).
        self.val_loss.update(torch.where(count > 0, loss, torch.zeros_like(loss)), weight=count)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=False)

    def on_before_optimizer_step(self, optimizer) -> None:
        # The gradient norm before clipping (what clipping sees), logged with the other step metrics.
        if not self.trainer.loggers:
            return
        if fsdp_root(self.trainer) is not None:  # each rank holds a shard of every gradient
            local = sum((p.grad.float().pow(2).sum() for p in self.model.parameters() if p.grad is not None),
                        torch.zeros((), device=self.device))  # fmt: skip
            norm = self.trainer.strategy.reduce(local, reduce_op="sum").sqrt()
        else:
            norm = grad_norm(self.model, norm_type=2)["grad_2.0_norm_total"]
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        root = fsdp_root(self.trainer)
        if root is None:
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        if gradient_clip_val:  # Lightning cannot clip by norm under FSDP; the FSDP root can (all shards)
            root.clip_grad_norm_(gradient_clip_val)
        return None

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.cfg.optim, tags=self._param_tags)
        scheduler = build_scheduler(optimizer, self.cfg.optim.schedule, self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def pop_step_loss(self) -> float:
        """Mean training loss of the optimizer step just taken, averaged over micro-batches and ranks."""
        if not self.step_losses:
            return float("nan")
        local = torch.stack(self.step_losses).float().mean()
        self.step_losses.clear()
        return float(self.trainer.strategy.reduce(local, reduce_op="mean"))
