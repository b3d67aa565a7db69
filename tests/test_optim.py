"""Optimizers: the contract every registry entry meets, then tagged param groups, Muon + AdamW in
one optimizer, clipping.

The contract tests are parametrized over the 'optimizer' registry with each entry's ``example``
options, so a new optimizer is covered without editing this file: it fits a toy regression, its
state dict round-trips (continuing from a reload gives the same parameters), and its param groups
carry the roles (tags) with the learning rates and weight decay the section asks for.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_algos.config.optim import OptimConfig
from lit_algos.errors import ConfigError
from lit_algos.optim import Muon, build_optimizer, muon_scale, newton_schulz, parameter_tags
from lit_algos.registry import names, registry

OPTIMIZERS = names("optimizer")


def example(kind: str, **options) -> object:
    """The entry's options from its ``example`` values, then ``options``."""
    return OptimConfig(kind, **{**registry("optimizer").entry(kind).example, **options})


class TinyLM(nn.Module):
    """Embedding -> two hidden matrices with a norm and biases -> untied head, with parameter tags."""

    def __init__(self, vocab: int = 16, dim: int = 8, hidden: int = 24):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx)  # (B, T, C)
        x = x + self.proj(torch.relu(self.fc(self.norm(x))))
        return self.head(x)  # (B, T, V)

    def parameter_tags(self) -> dict[str, str]:
        tags = {"wte.weight": "embedding", "head.weight": "head"}
        for name, p in self.named_parameters():
            tags.setdefault(name, "matrix" if p.ndim == 2 else "vector")
        return tags


class Regressor(nn.Module):
    """No parameter_tags: the ndim fallback applies."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _group(opt: torch.optim.Optimizer, tag: str) -> dict:
    (group,) = [g for g in opt.param_groups if g["tag"] == tag]
    return group


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def test_registry_names():
    assert names("optimizer")[:4] == ["sgd", "adam", "adamw", "muon"]
    with pytest.raises(ConfigError, match="sgd, adam, adamw, muon"):
        OptimConfig("no-such-optimizer")


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_every_optimizer_fits_a_toy_regression(kind):
    torch.manual_seed(0)
    model = Regressor()
    x = torch.randn(128, 6)
    y = x @ torch.linspace(-1.0, 1.0, 6).unsqueeze(1) + 0.5  # (128, 1)
    opt = build_optimizer(model, example(kind, weight_decay=0.0))
    losses = []
    for _ in range(60):
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_every_optimizer_state_dict_round_trips(kind, tmp_path):
    cfg = example(kind)
    torch.manual_seed(0)
    model_a = TinyLM()
    opt_a = build_optimizer(model_a, cfg)
    _train_steps(model_a, opt_a, 3)
    path = tmp_path / "opt.pt"
    torch.save({"model": model_a.state_dict(), "opt": opt_a.state_dict()}, path)

    model_b = TinyLM()
    opt_b = build_optimizer(model_b, cfg)
    saved = torch.load(path, weights_only=True)  # as checkpoints load: plain data only
    model_b.load_state_dict(saved["model"])
    opt_b.load_state_dict(saved["opt"])
    assert [g["tag"] for g in opt_b.param_groups] == [g["tag"] for g in opt_a.param_groups]
    # Continuing both must give identical parameters: the optimizer state really came back.
    _train_steps(model_a, opt_a, 2, seed=7)
    _train_steps(model_b, opt_b, 2, seed=7)
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(pa, pb)


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_every_optimizer_groups_parameters_by_role(kind):
    """One group per tag present, every trainable parameter in exactly one; the embedding, head and
    vector groups take the section's own learning rates, and vectors are never decayed."""
    model = TinyLM()
    opt = build_optimizer(model, example(kind, embedding_lr=0.2, head_lr=4e-3, weight_decay=0.1))
    assert [g["tag"] for g in opt.param_groups] == ["matrix", "embedding", "head", "vector"]
    all_params = [p for g in opt.param_groups for p in g["params"]]
    assert len(all_params) == len(_ids(all_params)) == len(list(model.parameters()))
    assert _ids(_group(opt, "embedding")["params"]) == _ids([model.wte.weight])
    assert _ids(_group(opt, "head")["params"]) == _ids([model.head.weight])
    assert _ids(_group(opt, "matrix")["params"]) == _ids([model.fc.weight, model.proj.weight])
    lrs = {g["tag"]: g["initial_lr"] for g in opt.param_groups}
    assert (lrs["embedding"], lrs["head"]) == (0.2, 4e-3)
    assert _group(opt, "vector")["weight_decay"] == 0.0
    assert all(g["lr"] == g["initial_lr"] for g in opt.param_groups)  # the schedule scales from here


def test_fallback_tags_without_parameter_tags():
    assert parameter_tags(Regressor()) == {
        "net.0.weight": "matrix", "net.0.bias": "vector", "net.2.weight": "matrix", "net.2.bias": "vector",
    }  # fmt: skip


def test_unknown_tag_is_rejected():
    model = TinyLM()
    model.parameter_tags = lambda: {"wte.weight": "embeddings"}
    with pytest.raises(ValueError, match="embeddings"):
        build_optimizer(model, OptimConfig())


def test_adamw_groups_and_weight_decay_only_on_matrices():
    model = TinyLM()
    opt = build_optimizer(model, OptimConfig("adamw", lr=1e-3, weight_decay=0.1))
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["tag"] for g in opt.param_groups] == ["matrix", "embedding", "head", "vector"]
    assert _ids(_group(opt, "matrix")["params"]) == _ids([model.fc.weight, model.proj.weight])
    assert _ids(_group(opt, "vector")["params"]) == _ids(
        [model.norm.weight, model.norm.bias, model.fc.bias, model.proj.bias]
    )
    decay = {g["tag"]: g["weight_decay"] for g in opt.param_groups}
    assert decay == {"matrix": 0.1, "embedding": 0.0, "head": 0.0, "vector": 0.0}
    # every trainable parameter is in exactly one group
    all_params = [p for g in opt.param_groups for p in g["params"]]
    assert len(all_params) == len(_ids(all_params)) == len(list(model.parameters()))


def test_decay_embeddings_and_per_tag_lrs():
    cfg = OptimConfig("adamw", lr=1e-3, embedding_lr=0.2, head_lr=4e-3, decay_embeddings=True)
    opt = build_optimizer(TinyLM(), cfg)
    decay = {g["tag"]: g["weight_decay"] for g in opt.param_groups}
    assert decay == {"matrix": 0.1, "embedding": 0.1, "head": 0.1, "vector": 0.0}
    lrs = {g["tag"]: (g["lr"], g["initial_lr"]) for g in opt.param_groups}
    assert lrs == {
        "matrix": (1e-3, 1e-3),
        "embedding": (0.2, 0.2),
        "head": (4e-3, 4e-3),
        "vector": (1e-3, 1e-3),
    }


def test_muon_groups_split_matrices_from_the_rest():
    model = TinyLM()
    cfg = OptimConfig("muon", lr=3e-3, muon_lr=0.02, weight_decay=0.1, muon_weight_decay=0.05)
    opt = build_optimizer(model, cfg)
    assert isinstance(opt, Muon)
    muon_groups = [g for g in opt.param_groups if g["use_muon"]]
    assert [g["tag"] for g in muon_groups] == ["matrix"]
    assert _ids(muon_groups[0]["params"]) == _ids([model.fc.weight, model.proj.weight])
    assert muon_groups[0]["lr"] == 0.02 and muon_groups[0]["weight_decay"] == 0.05
    adam_groups = {g["tag"]: g for g in opt.param_groups if not g["use_muon"]}
    assert set(adam_groups) == {"embedding", "head", "vector"}
    assert all(g["lr"] == 3e-3 and g["weight_decay"] == 0.0 for g in adam_groups.values())
    assert _ids(adam_groups["embedding"]["params"]) == _ids([model.wte.weight])


def test_muon_group_rejects_vectors():
    with pytest.raises(ValueError, match="AdamW group"):
        Muon([{"params": [nn.Parameter(torch.zeros(4))], "use_muon": True}])


@pytest.mark.parametrize("shape", [(32, 64), (64, 32), (48, 48)])
def test_newton_schulz_is_approximately_orthogonal(shape):
    torch.manual_seed(0)
    m, n = shape
    u, _ = torch.linalg.qr(torch.randn(m, min(m, n)))  # (m, k) orthonormal columns
    v, _ = torch.linalg.qr(torch.randn(n, min(m, n)))  # (n, k)
    g = 3.0 * u @ torch.diag(torch.logspace(0, 2, min(m, n))) @ v.T  # condition number 100
    out = newton_schulz(g, steps=5)
    assert out.shape == g.shape and out.dtype == g.dtype
    sv = torch.linalg.svdvals(out)
    # The quintic iteration converges to a band around 1, not to exactly 1.
    assert sv.min() > 0.6 and sv.max() < 1.25
    # Same singular vectors: close to the polar factor U V^T.
    cos = torch.nn.functional.cosine_similarity((u @ v.T).flatten(), out.flatten(), dim=0)
    assert cos > 0.95


def test_muon_scale():
    assert muon_scale(torch.Size([64, 16])) == 2.0  # tall: sqrt(fan_out / fan_in)
    assert muon_scale(torch.Size([16, 64])) == 1.0  # wide: no boost


def test_muon_adamw_part_matches_torch_adamw():
    # Several shapes in one group, and a parameter that misses a step (no gradient): its step count
    # and bias corrections fall behind the others', as in torch's AdamW.
    torch.manual_seed(0)
    shapes = [(10,), (3, 4), (5,)]
    ours_p = [nn.Parameter(torch.randn(s)) for s in shapes]
    ref_p = [nn.Parameter(p.detach().clone()) for p in ours_p]
    kw = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    ours = Muon([{"params": ours_p, "use_muon": False}], **kw)
    ref = torch.optim.AdamW(ref_p, **kw)
    for i in range(5):
        gen = torch.Generator().manual_seed(i)
        for j, (a, b) in enumerate(zip(ours_p, ref_p, strict=True)):
            grad = None if (i == 2 and j == 1) else torch.randn(a.shape, generator=gen)
            a.grad, b.grad = (None, None) if grad is None else (grad.clone(), grad.clone())
        ours.step()
        ref.step()
    for a, b in zip(ours_p, ref_p, strict=True):
        torch.testing.assert_close(a, b)


def test_muon_matrix_step_matches_a_per_matrix_reference():
    # Momentum, Nesterov look-ahead, decoupled weight decay and the shape scale, written out plainly.
    torch.manual_seed(0)
    shapes = [(16, 24), (16, 24), (24, 8)]
    ours_p = [nn.Parameter(torch.randn(s)) for s in shapes]
    ref_p = [p.detach().clone() for p in ours_p]
    lr, mom, wd = 0.05, 0.9, 0.1
    # fp32 Newton-Schulz on every CPU, as the reference (ns_dtype: Muon's option muon_ns_dtype)
    group = {"params": ours_p, "use_muon": True, "lr": lr, "momentum": mom, "weight_decay": wd}
    opt = Muon([group], ns_dtype="float32")
    bufs = [torch.zeros(s) for s in shapes]
    for step in range(3):
        grads = [torch.sin(p * (i + 1) + step) for i, p in enumerate(ref_p)]
        for p, g in zip(ours_p, grads, strict=True):
            p.grad = g.clone()
        opt.step()
        for i, (p, g) in enumerate(zip(ref_p, grads, strict=True)):
            bufs[i] = mom * bufs[i] + g
            update = newton_schulz(g + mom * bufs[i], steps=5, dtype=torch.float32)
            ref_p[i] = p * (1 - lr * wd) - lr * muon_scale(p.shape) * update
    for a, b in zip(ours_p, ref_p, strict=True):
        torch.testing.assert_close(a.detach(), b, rtol=1e-4, atol=1e-5)


def test_newton_schulz_in_bf16_stays_close_to_the_exact_iteration():
    # Each iteration's scalings and sums are folded into its matmuls (one bf16 rounding each, not
    # four): the largest error against the float64 iteration was 0.0105 with separate ops, 0.004 now.
    g = torch.randn(4, 341, 128, generator=torch.Generator().manual_seed(0))
    exact = newton_schulz(g.double(), steps=5, dtype=torch.float64).float()
    assert (newton_schulz(g, steps=5, dtype=torch.bfloat16) - exact).abs().max() < 0.006


def _train_steps(
    model: nn.Module, opt: torch.optim.Optimizer, n: int, seed: int = 1, clip: float | None = None
):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        idx = torch.randint(0, 16, (4, 5), generator=gen)
        logits = model(idx)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), idx.flatten())
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return loss.item()


def test_muon_reduces_lm_loss_with_gradient_clipping():
    torch.manual_seed(0)
    model = TinyLM()
    opt = build_optimizer(model, OptimConfig("muon", lr=1e-2, muon_lr=0.05))
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 16, (8, 6), generator=gen)
    before = nn.functional.cross_entropy(model(idx).flatten(0, 1), idx.flatten()).item()
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(idx).flatten(0, 1), idx.flatten())
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        assert torch.isfinite(norm)
        total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
        assert total <= 0.5 + 1e-4  # the clipped gradients are what the combined optimizer sees
        opt.step()
    assert loss.item() < 0.5 * before


def test_lightning_clipping_accumulation_and_scheduler_with_muon():
    import lightning as L

    from lit_algos.config.optim import ScheduleConfig
    from lit_algos.optim import build_scheduler, lr_multiplier

    sched_cfg = ScheduleConfig(kind="linear", warmup_steps=2, min_lr_ratio=0.0)

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = TinyLM()
            self.lrs: list[float] = []

        def training_step(self, batch, batch_idx):
            (idx,) = batch
            return nn.functional.cross_entropy(self.model(idx).flatten(0, 1), idx.flatten())

        def on_train_batch_start(self, batch, batch_idx):
            if batch_idx % 2 == 0:  # first micro-batch of each optimizer step
                self.lrs.append(self.optimizers().param_groups[0]["lr"])

        def configure_optimizers(self):
            opt = build_optimizer(self.model, OptimConfig("muon", muon_lr=0.02))
            sched = build_scheduler(opt, sched_cfg, 6)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    torch.manual_seed(0)
    module = Module()
    data = torch.utils.data.TensorDataset(torch.randint(0, 16, (96, 6)))
    trainer = L.Trainer(
        max_steps=6, accumulate_grad_batches=2, gradient_clip_val=0.5, accelerator="cpu", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=8))
    assert trainer.global_step == 6  # optimizer steps, not micro-batches
    # The schedule advanced once per optimizer step (the matrix group is the first group).
    assert module.lrs == pytest.approx([0.02 * lr_multiplier(sched_cfg, s, 6) for s in range(6)])


def test_batched_newton_schulz_equals_per_matrix():
    g = torch.randn(3, 24, 40, generator=torch.Generator().manual_seed(0))
    batched = newton_schulz(g, steps=5)
    for i in range(3):
        torch.testing.assert_close(batched[i], newton_schulz(g[i], steps=5), rtol=1e-5, atol=1e-5)
    tall = torch.randn(2, 40, 24, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(newton_schulz(tall)[1], newton_schulz(tall[1]), rtol=1e-5, atol=1e-5)


def test_muon_step_over_same_shape_matrices_equals_one_optimizer_per_matrix():
    """Matrices of one shape are orthogonalised in one batched Newton-Schulz: the result is that of
    orthogonalising each alone (here: each in an optimizer of its own)."""

    def params():
        torch.manual_seed(0)
        return [nn.Parameter(torch.randn(16, 24)) for _ in range(3)] + [nn.Parameter(torch.randn(24, 8))]

    together, alone = params(), params()
    opts = [Muon([{"params": together, "use_muon": True, "lr": 0.05}])]
    opts += [Muon([{"params": [p], "use_muon": True, "lr": 0.05}]) for p in alone]
    for step in range(3):
        for ps in (together, alone):
            for i, p in enumerate(ps):
                p.grad = torch.sin(p.detach() * (i + 1) + step)
        for opt in opts:
            opt.step()
    for a, b in zip(together, alone, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("native, name, expected", [(True, None, torch.bfloat16), (False, None, torch.float32),
                                                    (True, "float32", torch.float32)])  # fmt: skip
def test_newton_schulz_works_in_bf16_only_where_the_cpu_runs_it_natively(monkeypatch, native, name, expected):
    """muon_ns_dtype null: bf16 where native, else float32; muon_ns_dtype float32 forces float32."""
    from lit_algos.optim import muon

    monkeypatch.setattr(muon, "native_bf16", lambda accelerator="cpu", flags=None: native)
    muon._cpu_has_native_bf16.cache_clear()
    try:
        assert muon.ns_dtype(torch.device("cpu"), name) == expected
        seen = []
        real_matmul = torch.Tensor.__matmul__
        monkeypatch.setattr(
            torch.Tensor, "__matmul__", lambda a, b: seen.append(a.dtype) or real_matmul(a, b)
        )
        p = nn.Parameter(torch.randn(8, 16))
        p.grad = torch.randn(8, 16)
        opt = build_optimizer(_Tagged(), OptimConfig("muon", muon_ns_dtype=name))
        Muon([{"params": [p], "use_muon": True}], ns_dtype=opt.defaults["ns_dtype"]).step()
        assert p.dtype == torch.float32 and set(seen) == {expected}  # the iteration ran in that dtype
    finally:
        muon._cpu_has_native_bf16.cache_clear()


class _Tagged(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(8, 4)
        self.lin = nn.Linear(4, 4, bias=True)

    def parameter_tags(self):
        return {"emb.weight": "embedding", "lin.weight": "matrix", "lin.bias": "vector"}


def test_lr_metrics_are_named_by_the_rule_each_group_follows():
    from lit_algos.optim import lr_metrics

    muon = build_optimizer(_Tagged(), OptimConfig("muon", lr=3e-3, muon_lr=0.02))
    assert lr_metrics(muon) == {"lr/muon": 0.02, "lr/adamw": 3e-3}
    adamw = build_optimizer(_Tagged(), OptimConfig("adamw", lr=1e-3))
    assert lr_metrics(adamw) == {"lr/adamw": 1e-3}
    # A group with its own peak LR is told apart by its tag; the schedule's scaling shows in the values.
    own = build_optimizer(_Tagged(), OptimConfig("adamw", lr=1e-3, embedding_lr=5e-3))
    for g in own.param_groups:
        g["lr"] = g["initial_lr"] / 2
    assert lr_metrics(own) == {"lr/adamw/matrix": 5e-4, "lr/adamw/embedding": 2.5e-3, "lr/adamw/vector": 5e-4}
    assert lr_metrics(build_optimizer(_Tagged(), OptimConfig("sgd", lr=0.1))) == {"lr/sgd": 0.1}
