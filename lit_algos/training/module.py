"""The LightningModule: a GPT with its optimizer, schedule, gradient clipping, clock and metrics.

``LitGPT`` runs in lit_algos's own Trainer (``lit_algos.train``) and in yours:

    import lightning as L
    import lit_algos as la
    cfg = la.load_config("debug")
    model, data = la.LitGPT(cfg), la.TokenDataModule.from_config(cfg)
    L.Trainer(max_steps=64, val_check_interval=16, logger=my_logger).fit(model, datamodule=data)

It owns what belongs to the model's training rule: the optimizer and LR schedule of
``cfg.optim`` (``configure_optimizers``), gradient clipping by norm at ``optim.grad_clip``
(``configure_gradient_clipping``; a ``Trainer(gradient_clip_val=...)`` overrides it; under FSDP
it clips through the FSDP root, which sees every shard), and the training clock (``TrainClock``,
added through ``configure_callbacks`` unless the Trainer has one).

Metrics (``self.log``, so every logger of the Trainer gets them). Each row carries its own
``step`` (the optimizer step; Lightning uses a logged ``step`` as the loggers' step), ``tokens``,
``flops`` and ``train_seconds``, so any curve can be drawn against any of the three costs:

- every ``log_every_n_steps`` optimizer steps (and at the last step): ``train/loss`` (the step's
  mean over micro-batches and ranks), ``train/grad_norm`` (before clipping), ``lr/<kind>``
  (``lit_algos.optim.lr_metrics``: ``lr/muon``, ``lr/adamw``, ...), ``train/tokens_per_second``
  and ``train/mfu`` over the steps since the previous row (MFU against ``peaks.device_peak``);
- after every evaluation: ``val/loss`` (the whole validation set) and ``val/bpb``.

Training and evaluation share one loss: ``GPT.loss`` (``lit_algos.loss.lm_loss``, chunked unless
``train.chunked_loss`` is false), the mean cross-entropy over the targets that are not
``IGNORE_INDEX`` (-100). ``validation_step`` weights each batch's mean by
its count of real targets in a torchmetrics ``MeanMetric``, which sums across ranks, so
``val/loss`` is the mean over every validation token whatever the device count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import lightning as L
import torch
from torchmetrics import MeanMetric

from lit_algos.config import Config
from lit_algos.config.recipes import load_config
from lit_algos.data import TokenDataModule
from lit_algos.errors import ConfigError, LitAlgosError
from lit_algos.flops import estimate_flops
from lit_algos.loss import IGNORE_INDEX
from lit_algos.model import build_model
from lit_algos.optim import build_optimizer, build_scheduler, lr_metrics, parameter_tags
from lit_algos.peaks import device_peak
from lit_algos.training.callbacks import RateWindow, TrainClock
from lit_algos.training.distributed import fsdp_root
from lit_algos.training.plan import plan_run


def as_config(config: Config | str | Mapping) -> Config:
    """A ``Config`` from a Config, a recipe name or YAML path, or a config dict (``Config.to_dict()``)."""
    if isinstance(config, Config):
        return config
    if isinstance(config, str):
        return load_config(config)
    if isinstance(config, Mapping):
        return Config.from_dict(dict(config))
    raise TypeError(f"LitGPT needs a Config, a recipe name or a config dict, not {type(config).__name__}")


def cost_axes(step: int, tokens_per_step: int, flops_per_token: float, train_seconds: float) -> dict:
    """The x-axes of a metric row at optimizer ``step``: the same numbers the run record's curve holds."""
    tokens = step * tokens_per_step
    return {"step": step, "tokens": tokens, "flops": tokens * flops_per_token, "train_seconds": train_seconds}


def bits_per_byte(loss: float, bytes_per_token: float) -> float:
    """Validation loss (nats per token) as bits per byte of the validation text."""
    return loss / (math.log(2) * bytes_per_token) if math.isfinite(loss) else math.nan


def check_vocab(cfg: Config, tokenizer_vocab: int) -> None:
    """The model's vocabulary must hold every token id of the data's tokenizer."""
    if tokenizer_vocab > cfg.model.vocab_size:
        raise ConfigError(
            "model.vocab_size",
            cfg.model.vocab_size,
            f"The tokenizer {cfg.data.tokenizer!r} has {tokenizer_vocab} tokens; set model.vocab_size >= {tokenizer_vocab}.",
        )


def check_layout(trainer: L.Trainer, datamodule) -> None:
    """A ``TokenDataModule`` gives each rank micro-batches: the Trainer must accumulate exactly as many per
    optimizer step as make the recipe's global batch, or the tokens axis and the data order are wrong."""

    if not isinstance(datamodule, TokenDataModule):
        return
    micro, accum = datamodule.plan()
    if trainer.accumulate_grad_batches != accum:
        raise LitAlgosError(
            f"TokenDataModule gives each of {trainer.world_size} rank(s) micro-batches of {micro} sequences, {accum} per "
            f"optimizer step for the global batch of {datamodule.batch_size}; the Trainer accumulates "
            f"{trainer.accumulate_grad_batches}. Create it with accumulate_grad_batches={accum} "
            "(lit_algos.trainer_kwargs(cfg) holds every Trainer argument the recipe implies)."
        )


class LitGPT(L.LightningModule):
    """The GPT of ``config`` (a ``Config``, a recipe name or a config dict) as a LightningModule.

    ``total_steps``: the length of the LR schedule in optimizer steps; default the recipe's step
    budget (``plan_run(cfg).max_steps``). See the module docstring for what it logs.
    """

    def __init__(self, config: Config | str | Mapping, total_steps: int | None = None):
        super().__init__()
        self.cfg = as_config(config)
        if total_steps is None:
            total_steps = plan_run(self.cfg).max_steps or 1
        self.total_steps = total_steps
        # Plain data in the checkpoint (it loads with weights_only=True): the resolved config and the schedule.
        self.save_hyperparameters({"config": self.cfg.to_dict(), "total_steps": total_steps})
        self.model = build_model(self.cfg.model)
        # Optimizer groups follow these tags; under FSDP the parameters are flat shards by the time
        # configure_optimizers runs, so they are taken now, before the blocks are wrapped.
        self._param_tags = parameter_tags(self.model)
        self._compiled = None  # torch.compile'd GPT.loss, kept out of the module tree and the state dict
        # A NaN loss must stay non-finite so that divergence is seen, not averaged away: NaN -> +inf.
        # (Not nan_strategy="disable": torchmetrics 1.9 then drops the weights, giving a mean of batch means.)
        self.val_loss = MeanMetric(nan_strategy=float("inf"))
        self.val_loss.set_dtype(
            torch.float64
        )  # sums over ~1e7 tokens: keep float32 rounding out of the curve
        self.step_losses: list[torch.Tensor] = []  # micro-batch losses of the current optimizer step
        self.step_aux_losses: list[torch.Tensor] = []  # their auxiliary losses (popped by moe_callbacks)
        self.step_loss = math.nan  # mean training loss of the last optimizer step (micro-batches and ranks)
        self.clock = TrainClock()  # replaced by the Trainer's own TrainClock when it has one
        self.tokens_per_step = self.cfg.train.batch_size * self.cfg.model.block_size

        self.flops_per_token = estimate_flops(self.cfg.model).per_token_train
        self.peak_flops: float | None = None  # per device, for MFU; found at fit start when not set
        self.peak_source = ""
        self._grad_norm: torch.Tensor | None = None
        self._stepped = False
        self._step_lrs: dict[str, float] = {}
        self._window = RateWindow()  # throughput since the previous metrics row

    # ---- model -----------------------------------------------------------------------------------
    def compile_model(self) -> None:
        """Compile the loss path that training and evaluation run (applied from outside the model
        file, torchtitan-style)."""
        # object.__setattr__: a compiled callable is kept out of the module tree and the state dict.
        object.__setattr__(self, "_compiled", torch.compile(self.model.loss))

    def lm_loss(self, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the mean LM loss, the auxiliary losses' sum) of a batch: ``GPT.loss``, compiled when asked."""
        loss = self._compiled if self._compiled is not None else self.model.loss
        return loss(idx, targets, chunked=self.cfg.train.chunked_loss)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits (B, T, V) and, with ``targets``, the mean cross-entropy (the GPT's own forward)."""
        return self.model(idx, targets)

    def configure_optimizers(self):
        """The optimizer of ``optim.kind`` and its schedule, stepped every optimizer step."""
        optimizer = build_optimizer(self.model, self.cfg.optim, tags=self._param_tags)
        scheduler = build_scheduler(optimizer, self.cfg.optim.schedule, self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip the gradient norm at ``optim.grad_clip`` (null or 0: no clipping); the Trainer's
        ``gradient_clip_val`` / ``gradient_clip_algorithm``, when given, take precedence."""
        if gradient_clip_val is None:
            gradient_clip_val, gradient_clip_algorithm = self.cfg.optim.grad_clip, "norm"
        if not gradient_clip_val:
            return
        root = fsdp_root(self._trainer)  # _trainer: None when called outside a fit
        if root is not None and gradient_clip_algorithm in (None, "norm"):
            # Lightning cannot clip by norm under FSDP (each rank holds a shard of every gradient);
            # the FSDP root can: it takes the norm over all shards.
            root.clip_grad_norm_(gradient_clip_val)
            return
        if gradient_clip_algorithm in (None, "norm") and self._grad_norm is not None and root is None:
            # The norm of these gradients was taken for the metrics row a moment ago (the hook
            # before this one); clip with it instead of a second pass over every gradient.
            # clip_grads_with_norm_ is the second half of clip_grad_norm_: the same scaling.
            grads = [p for p in self.model.parameters() if p.grad is not None]
            torch.nn.utils.clip_grads_with_norm_(grads, gradient_clip_val, self._grad_norm)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_callbacks(self):
        """The training clock, unless the Trainer already has a ``TrainClock``."""
        if any(isinstance(c, TrainClock) for c in self.trainer.callbacks):
            return []
        return [self.clock]

    # ---- steps -----------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        """One micro-batch: the LM loss (kept for the step's mean) plus any auxiliary loss."""
        x, y = batch  # (B, T), (B, T)
        # aux: the blocks' auxiliary losses (MoE load balancing); a constant 0 for dense models.
        loss, aux = self.lm_loss(x, y)
        self.step_losses.append(loss.detach())  # the language-model loss alone: curves and targets use it
        if aux.requires_grad:  # only a real auxiliary loss is kept (MoEBalance pops and logs it per step)
            self.step_aux_losses.append(aux.detach())
        return loss + aux

    def validation_step(self, batch, batch_idx):
        """Accumulate the token-weighted validation loss of one batch."""
        x, y = batch  # (B, T), (B, T); rows of IGNORE_INDEX pad the last window and even out ranks
        loss, _ = self.lm_loss(x, y)
        count = (y != IGNORE_INDEX).sum()
        # An all-padding batch has a NaN mean and weight 0; it must add nothing (NaN * 0 is NaN).
        self.val_loss.update(torch.where(count > 0, loss, torch.zeros_like(loss)), weight=count)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=False)

    # ---- hooks: step loss, gradient norm, metrics ------------------------------------------------
    def on_fit_start(self) -> None:
        self.clock = next((c for c in self.trainer.callbacks if isinstance(c, TrainClock)), self.clock)
        datamodule = self.trainer.datamodule
        check_layout(self.trainer, datamodule)
        if hasattr(datamodule, "prepared"):  # a TokenDataModule
            check_vocab(self.cfg, datamodule.prepared.vocab_size)
        if self.peak_flops is None and self.trainer.loggers:
            name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
            accelerator = "cpu" if self.device.type == "cpu" else "gpu"
            self.peak_flops, self.peak_source = device_peak(name, str(self.trainer.precision), accelerator)

    def on_train_start(self) -> None:
        self._window.restart(self.trainer.global_step, self.clock)

    def on_before_optimizer_step(self, optimizer) -> None:
        # All micro-batches of the step have run their backward; clipping comes after this hook.
        local = torch.stack(self.step_losses).float().mean() if self.step_losses else None
        self.step_losses.clear()
        if local is not None:  # a collective in DDP: every rank takes every optimizer step
            self.step_loss = float(self.trainer.strategy.reduce(local, reduce_op="mean"))
        self._step_lrs = lr_metrics(optimizer)  # the rates this step uses (the schedule moves on after it)
        self._grad_norm = self._gradient_norm()
        self._stepped = True

    def _gradient_norm(self) -> torch.Tensor | None:
        """The 2-norm of all gradients before clipping (what clipping sees), for the metrics row."""
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if fsdp_root(self.trainer) is not None:
            # Each rank holds a shard of every gradient: sum the squares over ranks. A collective,
            # so every rank takes it at every step, loggers or not.
            local = _total_norm(grads).square() if grads else torch.zeros((), device=self.device)
            return self.trainer.strategy.reduce(local, reduce_op="sum").sqrt()
        return _total_norm(grads) if grads and self.trainer.loggers else None

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if not self._stepped:  # a micro-batch inside gradient accumulation
            return
        self._stepped = False
        trainer = self.trainer
        every = trainer.log_every_n_steps
        # Lightning writes step metrics to the loggers at exactly these steps (and at the last one,
        # when should_stop is set); logging only then keeps every written row fresh.
        if trainer.loggers and every and (trainer.global_step % every == 0 or trainer.should_stop):
            metrics = self._exact(self.step_metrics())
            self.log("train/loss", metrics.pop("train/loss"), on_step=True, on_epoch=False, prog_bar=True)
            self.log_dict(metrics, on_step=True, on_epoch=False)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        metrics = self.axes()
        bytes_per_token = getattr(self.trainer.datamodule, "bytes_per_token", None)
        if bytes_per_token:
            metrics["val/bpb"] = bits_per_byte(float(self.val_loss.compute()), bytes_per_token)
        self.log_dict(self._exact(metrics), on_step=False, on_epoch=True, batch_size=1)

    # ---- metric values ---------------------------------------------------------------------------
    def _exact(self, metrics: dict) -> dict:
        """Values as float64 tensors (Lightning keeps float64 as it is, so the axes reach the loggers
        exactly); float32 on MPS, which has no float64."""
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        return {
            k: v.detach().to(self.device, dtype)
            if isinstance(v, torch.Tensor)
            else torch.tensor(float(v), dtype=dtype, device=self.device)
            for k, v in metrics.items()
        }

    def axes(self, step: int | None = None) -> dict:
        """``step``, ``tokens``, ``flops`` and ``train_seconds`` now (or at ``step``)."""
        step = self.trainer.global_step if step is None else step
        return cost_axes(step, self.tokens_per_step, self.flops_per_token, self.clock.train_seconds)

    def lr_metrics(self) -> dict[str, float]:
        """The learning rates of the last optimizer step by kind (``lr/muon``, ``lr/adamw``, ...)."""
        return dict(self._step_lrs)

    def throughput(self) -> tuple[float | None, float | None]:
        """(tokens/s, MFU) over the timed steps since the previous metrics row; starts a new window."""
        return self._window.read(
            self.trainer.global_step, self.clock, self.tokens_per_step, self.flops_per_token,
            self.peak_flops, self.trainer.world_size,
        )  # fmt: skip

    def step_metrics(self) -> dict:
        """The row logged every ``log_every_n_steps`` steps (see the module docstring)."""
        metrics = {"train/loss": self.step_loss, **self.lr_metrics(), **self.axes()}
        if self._grad_norm is not None:
            metrics["train/grad_norm"] = self._grad_norm
        tokens_per_second, mfu = self.throughput()
        if tokens_per_second is not None:
            metrics["train/tokens_per_second"] = tokens_per_second
        if mfu is not None:
            metrics["train/mfu"] = mfu
        return metrics


def _total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``tensors`` together (as clipping computes it)."""
    norms = torch._foreach_norm(tensors) if hasattr(torch, "_foreach_norm") else [t.norm() for t in tensors]
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))
