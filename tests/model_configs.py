"""Tiny model configs shared by the model-level tests (components, FLOPs).

Every component's options come from its registry entry: the entry's ``example`` values (e.g. gqa's
2 KV heads, sliding's 4-token window) under any explicit keyword, so a new entry needs no edit here.
"""

from __future__ import annotations

import dataclasses

from lit_algos.config.model import ModelConfig, component
from lit_algos.registry import load_all, registry

AXES = ("attention", "norm", "position", "mlp", "mixer")


def entry_names(axis: str) -> list[str]:
    load_all()
    return registry(axis).names()


def axis_entries(*axes: str) -> list[tuple[str, str]]:
    """(axis, name) for every registered entry of ``axes`` (default: every model axis)."""
    return [(axis, name) for axis in (axes or AXES) for name in entry_names(axis)]


def has_option(axis: str, name: str, option: str) -> bool:
    options = registry(axis).entry(name).options
    return option in {f.name for f in dataclasses.fields(options)}


def options_for(axis: str, name: str, **explicit) -> object:
    """The entry's example options, then every explicit keyword the entry has (others are skipped)."""
    values = dict(registry(axis).entry(name).example)
    values.update({k: v for k, v in explicit.items() if v is not None and has_option(axis, name, k)})
    return component(axis, name, **values)


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
    mlp_options: dict | None = None,
    mixer="transformer",
    **kw,
) -> ModelConfig:
    """2 layers, 4 heads, 32 wide, T=16; gqa gets 2 KV heads and sliding a 4-token window. A mixer
    without attention (lstm) keeps the attention section at its defaults, which it requires."""
    base = dict(n_layer=2, n_head=4, n_embd=32, block_size=16, vocab_size=64)
    base.update(kw)
    attention_options = dict(n_kv_head=n_kv_head, backend=backend, qk_norm=qk_norm)
    if not registry("mixer").get(mixer).has_attention:
        attention_options = {}
    return ModelConfig(
        mixer=options_for("mixer", mixer),
        attention=options_for("attention", attention, **attention_options),
        position=options_for("position", position),
        mlp=options_for("mlp", mlp, hidden=hidden, **(mlp_options or {})),
        norm=options_for("norm", norm, placement=placement),
        tie_embeddings=tie,
        bias=bias,
        **base,
    )
