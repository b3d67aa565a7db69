"""describe's comparison: one model with every attention kind."""

from __future__ import annotations

from lit_algos.attention_kinds import compare_attention_kinds
from lit_algos.config.model import ModelConfig, component
from lit_algos.flops import estimate_flops
from lit_algos.registry import names


def test_every_kind_with_params_flops_and_cache():
    cfg = ModelConfig(
        n_layer=3, n_head=4, n_embd=64, block_size=64, vocab_size=100, position=component("position", "rope")
    )
    rows = {r["kind"]: r for r in compare_attention_kinds(cfg)}
    assert set(rows) == set(names("attention")) >= {"mha", "gqa", "mqa", "mla", "sliding", "sparse"}
    L, hs, nh = 3, 16, 4
    assert rows["mha"]["kv_cache_bytes_per_token"] == 2 * L * 2 * nh * hs  # bf16 keys + values, all layers
    assert rows["gqa"]["options"]["n_kv_head"] == 2
    assert rows["gqa"]["kv_cache_bytes_per_token"] == rows["mha"]["kv_cache_bytes_per_token"] // 2
    assert rows["mqa"]["kv_cache_bytes_per_token"] == rows["mha"]["kv_cache_bytes_per_token"] // nh
    mla = rows["mla"]["options"]
    assert rows["mla"]["kv_cache_bytes_per_token"] == 2 * L * (mla["kv_lora_rank"] + mla["rope_head_dim"])
    assert rows["sliding"]["options"]["window"] == 16 and "capped" in rows["sliding"]["note"]
    assert rows["sparse"]["options"]["block"] == 8  # sqrt(64)
    assert rows["sparse"]["ideal_flops_per_token_train"] < rows["sparse"]["flops_per_token_train"]
    assert rows["sparse"]["flops_per_token_train"] == rows["mha"]["flops_per_token_train"]  # executed = dense
    assert rows["mqa"]["params"] < rows["gqa"]["params"] < rows["mha"]["params"] == rows["sliding"]["params"]
    assert (
        rows["mha"]["flops_per_token_train"] == estimate_flops(cfg).per_token_train
    )  # the config's own kind


def test_lstm_has_no_attention_to_compare():
    cfg = ModelConfig(mixer="lstm", position=component("position", "none"))
    assert compare_attention_kinds(cfg) == []
