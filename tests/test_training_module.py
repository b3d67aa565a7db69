"""LitGPT: one loss convention (-100) in training and in Lightning's validation loop."""

from __future__ import annotations

import lightning as L
import pytest
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


def test_a_users_own_trainer_trains_litgpt_and_logs_the_cost_axes(data_cache, tmp_path):
    """The README's Lightning path: LitGPT(cfg or recipe name), TokenDataModule.from_config, the user's
    Trainer with their callbacks and logger; the module logs its loss and the tokens/FLOPs axes itself."""
    import csv

    from lightning.pytorch.loggers import CSVLogger

    import lit_algos as la

    cfg = la.load_config("debug", ["model.n_embd=16"])
    seen = []

    class EveryEval(L.Callback):
        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                seen.append((trainer.global_step, float(trainer.callback_metrics["val/loss"])))

    model, data = la.LitGPT(cfg), la.TokenDataModule.from_config(cfg)
    trainer = L.Trainer(
        max_steps=12, val_check_interval=6, log_every_n_steps=3, accelerator="cpu", callbacks=[EveryEval()],
        logger=CSVLogger(tmp_path, name="mine"), enable_progress_bar=False, enable_checkpointing=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    assert [s for s, _ in seen] == [6, 12]
    (path,) = tmp_path.rglob("metrics.csv")
    rows = list(csv.DictReader(path.open()))
    train_rows = [r for r in rows if r.get("train/loss")]
    assert [int(r["step"]) for r in train_rows] == [3, 6, 9, 12]
    tokens_per_step = cfg.train.batch_size * cfg.model.block_size
    for r in rows:  # every row: its own step's tokens and FLOPs
        assert float(r["tokens"]) == int(r["step"]) * tokens_per_step
        assert float(r["flops"]) == pytest.approx(float(r["tokens"]) * model.flops_per_token)
        assert float(r["train_seconds"]) >= 0
    assert {"lr/adamw", "train/grad_norm"} <= set(train_rows[0])
    assert [float(r["val/loss"]) for r in rows if r.get("val/loss")] == pytest.approx([v for _, v in seen])
    assert la.LitGPT("debug").cfg.name == "debug"  # a recipe name works too


def test_litgpt_owns_gradient_clipping_and_the_trainer_can_override_it():
    module = tiny_module(vocab_size=64)
    module.cfg.optim.grad_clip = 0.5
    calls = []
    module.clip_gradients = lambda opt, val, algo: calls.append((val, algo))
    module.configure_gradient_clipping(None)  # the Trainer sets nothing: optim.grad_clip by norm
    module.configure_gradient_clipping(None, gradient_clip_val=2.0, gradient_clip_algorithm="value")
    module.cfg.optim.grad_clip = None
    module.configure_gradient_clipping(None)  # no clipping asked for
    assert calls == [(0.5, "norm"), (2.0, "value")]


def test_clipping_reuses_the_norm_taken_for_the_metrics_row_and_clips_as_torch_does():
    """With the step's gradient norm already taken (on_before_optimizer_step, for the metrics row),
    clipping by norm scales the gradients with it: bitwise what clip_grad_norm_ gives, one pass fewer."""
    from lit_algos.training.module import _total_norm

    module = tiny_module(vocab_size=64)
    module.cfg.optim.grad_clip = 0.5
    x, y = torch.randint(0, 64, (2, 8)), torch.randint(0, 64, (2, 8))
    module.model(x, y)[1].backward()
    params = [p for p in module.model.parameters() if p.grad is not None]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for c, p in zip(copies, params, strict=True):
        c.grad = p.grad.clone()
    torch.nn.utils.clip_grad_norm_(copies, 0.5)  # the reference: clips the copies' gradients in place
    expected = [c.grad for c in copies]
    assert any(p.grad.ne(g).any() for g, p in zip(expected, params, strict=True))  # the norm was over 0.5
    module._grad_norm = _total_norm([p.grad for p in params])
    module.clip_gradients = lambda *a: pytest.fail("the norm is known: no second pass through Lightning")
    module.configure_gradient_clipping(None)
    for g, p in zip(expected, params, strict=True):
        assert torch.equal(p.grad, g)


def test_under_fsdp_litgpt_clips_the_norm_through_the_fsdp_root(monkeypatch):
    """Lightning cannot clip by norm under FSDP (each rank holds shards); the FSDP root takes the
    norm over all of them. Clipping by value stays Lightning's (element-wise, shards are fine)."""
    import lit_algos.training.module as module_file

    class Root:
        def clip_grad_norm_(self, value):
            calls.append(("root", value))

    module = tiny_module(vocab_size=64)
    module.cfg.optim.grad_clip = 0.5
    calls = []
    module.clip_gradients = lambda opt, val, algo: calls.append((val, algo))
    monkeypatch.setattr(module_file, "fsdp_root", lambda trainer: Root())
    module.configure_gradient_clipping(None)  # optim.grad_clip, by norm: the root
    module.configure_gradient_clipping(None, gradient_clip_val=2.0, gradient_clip_algorithm="norm")
    module.configure_gradient_clipping(None, gradient_clip_val=3.0, gradient_clip_algorithm="value")
    assert calls == [("root", 0.5), ("root", 2.0), (3.0, "value")]


def test_a_trainer_that_does_not_accumulate_as_the_recipe_says_is_refused(tmp_path):
    from lit_algos.errors import LitAlgosError
    from lit_algos.training.module import check_layout

    prepared = make_prepared(tmp_path / "ds")
    dm = TokenDataModule(prepared, seq_len=8, batch_size=8, micro_batch_size=2, seed=0)
    trainer = L.Trainer(accelerator="cpu", logger=False, accumulate_grad_batches=1)
    with pytest.raises(LitAlgosError, match="accumulate_grad_batches=4"):
        check_layout(trainer, dm)
    check_layout(L.Trainer(accelerator="cpu", logger=False, accumulate_grad_batches=4), dm)


def test_the_public_api_has_docstrings():
    import inspect

    import lit_algos as la

    missing = []
    for name in la.__all__:
        obj = getattr(la, name) if name != "__version__" else None
        if obj is None:
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        for attr, member in vars(obj).items() if inspect.isclass(obj) else ():
            fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if not attr.startswith("_") and callable(fn) and not inspect.getdoc(fn):
                missing.append(f"{name}.{attr}")
    assert missing == []


def test_the_readme_own_trainer_example_runs_as_written(data_cache, tmp_path, monkeypatch):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("**Your own Trainer.**") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    seen = []

    class EveryEval(L.Callback):  # the README's callback, defined in the block above this one
        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                seen.append(trainer.global_step)

    monkeypatch.chdir(tmp_path)
    scope = {"EveryEval": EveryEval}
    exec(code, scope)
    assert seen == [16, 32, 48, 64] and scope["trainer"].global_step == 64
    (metrics,) = tmp_path.glob("logs/**/metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    assert {"train/loss", "val/loss", "tokens", "flops", "train_seconds", "lr/adamw"} <= set(header)
