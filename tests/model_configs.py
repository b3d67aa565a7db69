"""Tiny model configs shared by the model-level tests (components, FLOPs)."""

from __future__ import annotations

from lit_algos.config.model import AttentionConfig, MLPConfig, ModelConfig, NormConfig, PositionConfig


def tiny_config(
    attention="mha",
    position="learned",
    mlp="gelu",
    norm="layernorm",
    backend="sdpa",
    n_kv_head=None,
    qk_norm=False,
    tie=True,
    bias=True,
    placement="pre",
    hidden=None,
    **kw,
) -> ModelConfig:
    """2 layers, 4 heads, 32 wide, T=16; gqa gets 2 KV heads and sliding a 4-token window."""
    if attention == "gqa" and n_kv_head is None:
        n_kv_head = 2
    base = dict(n_layer=2, n_head=4, n_embd=32, block_size=16, vocab_size=64)
    base.update(kw)
    return ModelConfig(
        attention=AttentionConfig(
            kind=attention,
            n_kv_head=n_kv_head,
            backend=backend,
            qk_norm=qk_norm,
            window=4 if attention == "sliding" else None,  # narrower than block_size, so it masks
        ),
        position=PositionConfig(kind=position),
        mlp=MLPConfig(kind=mlp, hidden=hidden),
        norm=NormConfig(kind=norm, placement=placement),
        tie_embeddings=tie,
        bias=bias,
        **base,
    )
