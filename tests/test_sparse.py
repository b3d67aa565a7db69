"""Sparse attention (Child et al. 2019): the mask is the patterns' definition, causal, and what
the model actually attends to; FlexAttention agrees with masked SDPA; both FLOP counts."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from lit_algos.components.sparse import SparseAttention, allowed_mask, flex_sparse_attention
from lit_algos.config import Config
from lit_algos.config.model import ModelConfig, component
from lit_algos.errors import ConfigError
from lit_algos.flops import estimate_flops
from lit_algos.model import build_model


def attended_set(i: int, pattern: str, period: int, summary: int) -> set[int]:
    """The paper's sets for query i, written out element by element (Child et al. 2019, sec. 4.2)."""
    out = set()
    for j in range(i + 1):  # causal: keys up to and including i
        if pattern == "strided":
            a1 = i - j < period  # the last l positions
            a2 = (i - j) % period == 0  # every l-th position back from i
        else:
            a1 = j // period == i // period  # i's own block
            a2 = j % period >= period - summary  # the last c positions of every block
        if a1 or a2:
            out.add(j)
    return out


CASES = [("strided", 3, 1), ("strided", 4, 1), ("fixed", 4, 1), ("fixed", 5, 2), ("fixed", 6, 2)]


@pytest.mark.parametrize("pattern,period,summary", CASES)
def test_every_query_attends_exactly_the_patterns_set(pattern, period, summary):
    T = 23
    mask = allowed_mask(T, pattern, period, summary)
    for i in range(T):
        got = set(torch.nonzero(mask[i]).flatten().tolist())
        assert got == attended_set(i, pattern, period, summary), i
    assert not mask.triu(1).any()  # causal: nothing above the diagonal
    assert mask.diagonal().all()  # every query sees itself (no empty softmax row)
    assert mask.sum() < torch.ones(T, T).tril().sum()  # and it is sparse


def test_known_rows():
    strided = allowed_mask(12, "strided", 4)
    assert torch.nonzero(strided[10]).flatten().tolist() == [2, 6, 7, 8, 9, 10]
    fixed = allowed_mask(12, "fixed", 4, summary=1)
    assert torch.nonzero(fixed[10]).flatten().tolist() == [3, 7, 8, 9, 10]


def tiny(pattern="fixed", backend="manual", n_layer=1, **opts) -> ModelConfig:
    opts = {"block": 4} if pattern == "fixed" and not opts else opts or {"stride": 3}
    return ModelConfig(
        n_layer=n_layer,
        n_head=4,
        n_embd=32,
        block_size=16,
        vocab_size=64,
        attention=component("attention", "sparse", pattern=pattern, backend=backend, **opts),
        position=component("position", "rope"),
    )


@pytest.mark.parametrize("backend", ("sdpa", "manual"))
@pytest.mark.parametrize("pattern", ("strided", "fixed"))
def test_one_layer_model_sees_exactly_the_attended_tokens(pattern, backend):
    """With one layer the output at i depends on token j iff j is in i's attended set."""
    torch.manual_seed(0)
    model = build_model(tiny(pattern, backend))
    model.eval()
    idx = torch.randint(0, 64, (1, 16), generator=torch.Generator().manual_seed(2))
    o = model.cfg.attention
    base = model(idx)[0][0]
    for j in (0, 3, 5, 8):
        changed = idx.clone()
        changed[0, j] = (changed[0, j] + 1) % 64
        moved = (model(changed)[0][0] - base).abs().amax(-1) > 1e-6  # (T,) which outputs changed
        expect = [i == j or j in attended_set(i, o.pattern, o.period, o.summary) for i in range(16)]
        assert moved.tolist() == expect, j


@pytest.mark.parametrize("pattern,period,summary", CASES)
def test_flex_attention_block_mask_equals_masked_sdpa(pattern, period, summary):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 20, 8, generator=g)
    k, v = torch.randn(2, 2, 20, 8, generator=g), torch.randn(2, 2, 20, 8, generator=g)  # 2 KV heads
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager flex_attention on CPU warns that it is unfused
        got = flex_sparse_attention(q, k, v, pattern, period, summary)
    mask = allowed_mask(20, pattern, period, summary)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_executed_and_ideal_flops():
    cfg = tiny("fixed", block=4)
    dense = estimate_flops(ModelConfig(**{**cfg.__dict__, "attention": component("attention", "mha")}))
    executed = SparseAttention.flops_per_token(cfg)
    ideal = SparseAttention.ideal_flops_per_token(cfg)
    assert executed["attn_scores"] == dense.breakdown["attn_scores"]  # the masked kernel's work
    pairs = sum(len(attended_set(i, "fixed", 4, 1)) for i in range(16))
    assert ideal["attn_scores"] == 2 * 2 * 4 * 8 * pairs / 16
    assert ideal["attn_qkv"] == executed["attn_qkv"] and ideal["attn_out"] == executed["attn_out"]


@pytest.mark.parametrize(
    "attention,field",
    [
        ({"pattern": "strided"}, "model.attention.stride"),
        ({"pattern": "fixed"}, "model.attention.block"),
        ({"pattern": "fixed", "block": 4, "summary": 5}, "model.attention.summary"),
        ({"pattern": "checkerboard", "block": 4}, "model.attention.pattern"),
        ({"pattern": "fixed", "block": 4, "window": 3}, "model.attention.window"),
    ],
)
def test_bad_options_name_the_field(attention, field):
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"model": {"attention": {"kind": "sparse", **attention}}})
    assert field in str(err.value)
