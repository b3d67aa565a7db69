"""LitGPT: one loss convention (-100) in training and in Lightning's validation loop."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from lit_algos.config.recipes import load_config
from lit_algos.data import IGNORE_INDEX, TokenDataModule
from lit_algos.training.module import LitGPT

from .test_data_datamodule import make_prepared


def tiny_module(vocab_size: int = 6000) -> LitGPT:
    cfg = load_config(
        None,
        [
            "model.n_layer=1",
            "model.n_head=2",
            "model.n_embd=16",
            "model.block_size=8",
            f"model.vocab_size={vocab_size}",
        ],
    )
    torch.manual_seed(0)
    return LitGPT(cfg.to_dict(), total_steps=10)


def test_the_model_loss_ignores_minus_100_targets():
    module = tiny_module(vocab_size=64)
    x = torch.randint(0, 64, (2, 8))
    y = torch.randint(0, 64, (2, 8))
    y_masked = y.clone()
    y_masked[1, 3:] = IGNORE_INDEX
    logits, loss = module.model(x, y_masked)  # (2, 8, V)
    keep = y_masked != IGNORE_INDEX
    reference = F.cross_entropy(logits[keep].float(), y[keep])
    assert torch.allclose(loss, reference)
    assert IGNORE_INDEX == -100  # PyTorch's default ignore_index


def reference_val_loss(module: LitGPT, dm: TokenDataModule) -> tuple[float, int]:
    """Sum of cross-entropy over every validation target / their count, computed directly."""
    total, count = 0.0, 0
    with torch.no_grad():
        windows = dm.val_windows(rank=0, world_size=1)
        for x, y in (windows[i] for i in range(len(windows))):
            logits, _ = module.model(x[None])  # (1, T, V)
            keep = y != IGNORE_INDEX
            total += float(F.cross_entropy(logits[0][keep].double(), y[keep], reduction="sum"))
            count += int(keep.sum())
    return total / count, count


def test_lightning_validation_loop_is_the_mean_over_every_validation_token(tmp_path):
    # 100 validation targets in windows of 8: the last window is short and batches of 3 leave a padded tail.
    prepared = make_prepared(tmp_path / "ds", val_tokens=100)
    dm = TokenDataModule(prepared, seq_len=8, batch_size=3, micro_batch_size=None, seed=0)
    module = tiny_module()
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    (metrics,) = trainer.validate(module, datamodule=dm, verbose=False)
    expected, count = reference_val_loss(module, dm)
    assert count == 100
    assert abs(metrics["val/loss"] - expected) < 1e-5
