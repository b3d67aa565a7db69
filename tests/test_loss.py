"""The chunked LM-head + cross-entropy equals the plain path: loss and gradients, ignore index, soft-cap."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lit_algos.loss import IGNORE_INDEX, chunked_linear_cross_entropy, plain_linear_cross_entropy
from lit_algos.model import build_model
from tests.model_configs import tiny_config


def _inputs(n=300, c=16, v=50, seed=0, ignore=0.2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float32)
    w = torch.randn(v, c, generator=g, dtype=torch.float32) * 0.5
    t = torch.randint(0, v, (n,), generator=g)
    t[torch.rand(n, generator=g) < ignore] = IGNORE_INDEX
    return x, w, t


@pytest.mark.parametrize("softcap", [None, 3.0])
def test_chunked_loss_and_gradients_equal_the_plain_path(monkeypatch, softcap):
    monkeypatch.setattr("lit_algos.loss.CHUNK_ELEMENTS", 64 * 50)  # 64 rows a chunk: 300 rows -> 5 chunks
    results = []
    for fn in (plain_linear_cross_entropy, chunked_linear_cross_entropy):
        x, w, t = _inputs()
        x.requires_grad_(True)
        w.requires_grad_(True)
        loss = fn(x, w, t, softcap)
        (2.5 * loss).backward()  # a non-unit upstream gradient is passed through
        results.append((loss.detach(), x.grad, w.grad))
    (l0, gx0, gw0), (l1, gx1, gw1) = results
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx1, gx0, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gw1, gw0, rtol=1e-5, atol=1e-7)


def test_chunked_without_grad_and_all_ignored():
    x, w, t = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            chunked_linear_cross_entropy(x, w, t), plain_linear_cross_entropy(x, w, t).float()
        )
    assert math.isnan(chunked_linear_cross_entropy(x, w, torch.full_like(t, IGNORE_INDEX)).item())


@pytest.mark.parametrize(
    "extra",
    [{}, {"mixer": "lstm", "position": "none", "final_norm": False}],  # the LSTM's output is not contiguous
    ids=["transformer", "lstm"],
)
def test_the_model_loss_is_one_function_with_two_strategies(extra):
    """GPT.loss chunked, GPT.loss plain and the loss the forward returns beside its logits agree,
    in value and in every gradient."""
    cfg = tiny_config(vocab_size=97, logit_softcap=10.0, **extra)
    results = []
    for how in ("forward", "plain", "chunked"):
        torch.manual_seed(0)
        model = build_model(cfg)
        idx = torch.randint(
            0, cfg.vocab_size, (2, cfg.block_size), generator=torch.Generator().manual_seed(1)
        )
        if how == "forward":
            logits, loss = model(idx, idx)
            assert logits.shape == (2, cfg.block_size, cfg.vocab_size)
            assert logits.abs().max() < 10.0  # soft-capped
        else:
            loss, aux = model.loss(idx, idx, chunked=how == "chunked")
            assert aux.item() == 0.0
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (l0, g0), *others = results
    for l1, g1 in others:
        torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-6)
        for name in g0:
            torch.testing.assert_close(g1[name], g0[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("softcap", [None, 3.0])
def test_the_fused_form_used_under_compile_equals_the_plain_path(monkeypatch, softcap):
    # Under torch.compile the gradient of a chunk is one pointwise expression (no in-place scatter);
    # check its maths in eager by making the loss believe it is being compiled.
    monkeypatch.setattr("lit_algos.loss.CHUNK_ELEMENTS", 64 * 50)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    results = []
    for fn in (plain_linear_cross_entropy, chunked_linear_cross_entropy):
        x, w, t = _inputs(seed=2)
        x.requires_grad_(True)
        w.requires_grad_(True)
        loss = fn(x, w, t, softcap)
        loss.backward()
        results.append((loss.detach(), x.grad, w.grad))
    (l0, gx0, gw0), (l1, gx1, gw1) = results
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx1, gx0, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gw1, gw0, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("softcap", [None, 3.0])
def test_the_form_used_under_compile_takes_one_exponential_per_logit(monkeypatch, softcap):
    # The exps were the head's slowest part of a compiled bf16 step: the graph inductor sees must
    # compute exp(z - max) once a logit and reuse it for the log-sum-exp and the gradient.
    from torch.fx.experimental.proxy_tensor import make_fx

    from lit_algos.loss import _chunk

    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    x, w, t = _inputs()
    graph = make_fx(lambda x, w, t: _chunk(x, w, t, softcap, True))(x, w, t).graph
    ops = [str(n.target) for n in graph.nodes if n.op == "call_function"]
    assert ops.count("aten.exp.default") == 1 and not any("logsumexp" in op for op in ops), ops


class _MatmulDtypes(TorchDispatchMode):
    """Records the dtype every matmul kernel ran in (below autocast, so after its casts)."""

    def __init__(self):
        super().__init__()
        self.dtypes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        aten = torch.ops.aten
        if func.overloadpacket in (aten.mm, aten.addmm, aten.addmm_, aten.bmm, aten.baddbmm):
            self.dtypes.append(args[-1].dtype)
        return func(*args, **(kwargs or {}))


def test_under_bf16_autocast_every_head_matmul_runs_in_bf16_and_matches_the_plain_path(monkeypatch):
    # The plain path's backward computes the head's gradients in bf16 under bf16 autocast; the
    # chunked path must too (an fp32 weight-gradient matmul was the slowest kernel of a bf16 step),
    # while still summing its chunks in fp32.
    monkeypatch.setattr("lit_algos.loss.CHUNK_ELEMENTS", 64 * 50)
    grads = []
    for fn in (plain_linear_cross_entropy, chunked_linear_cross_entropy):
        x, w, t = _inputs(seed=3)
        x.requires_grad_(True)
        w.requires_grad_(True)
        with _MatmulDtypes() as seen:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = fn(x, w, t)
            loss.backward()
        assert seen.dtypes and set(seen.dtypes) == {torch.bfloat16}, (fn.__name__, seen.dtypes)
        assert w.grad.dtype == torch.float32 and x.grad.dtype == torch.float32
        grads.append((loss.detach(), x.grad, w.grad))
    (l0, gx0, gw0), (l1, gx1, gw1) = grads
    torch.testing.assert_close(l1, l0, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(gx1, gx0, rtol=2e-2, atol=2e-3)
    torch.testing.assert_close(gw1, gw0, rtol=2e-2, atol=2e-3)
