"""Model config: the model-wide fields plus one options object per component axis.

The component sections (``attention``, ``norm``, ``position``, ``mlp``, ``mixer``) are not fixed
classes: each holds the options dataclass of the registry entry its ``kind`` names, built by that
entry (``lit_algos.registry.Registry.build_options``) and checked against the whole model by the
entry's ``validate``. This file therefore names no component kind; adding an entry never
touches it (see ``lit_algos.components``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lit_algos.errors import ConfigError
from lit_algos.registry import ComponentOptions, component_field, registry, validate_sections
from lit_algos.sizing import check_buildable
from lit_algos.utils.typed import check_positive, check_range

COMPONENT_AXES = ("attention", "norm", "position", "mlp", "mixer")  # the registry sections of the model


def component(axis: str, kind: str, **options: Any) -> ComponentOptions:
    """Options of registry entry ``kind`` on ``axis``, e.g. ``component("attention", "gqa", n_kv_head=2)``."""
    return registry(axis).options(kind, **options)


# Keyword constructors kept for Python callers of the first config layout (tests, notebooks).
def AttentionConfig(kind: str = "mha", **options: Any) -> ComponentOptions:  # noqa: N802
    return component("attention", kind, **options)


def NormConfig(kind: str = "layernorm", **options: Any) -> ComponentOptions:  # noqa: N802
    return component("norm", kind, **options)


def PositionConfig(kind: str = "learned", **options: Any) -> ComponentOptions:  # noqa: N802
    return component("position", kind, **options)


def MLPConfig(kind: str = "gelu", **options: Any) -> ComponentOptions:  # noqa: N802
    return component("mlp", kind, **options)


@dataclass
class ModelConfig:
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128  # context length T
    vocab_size: int = 4096  # must be >= the tokenizer's vocabulary (padding is fine)
    attention: ComponentOptions = component_field("attention", "mha")  # registry 'attention'
    norm: ComponentOptions = component_field("norm", "layernorm")  # registry 'norm'
    position: ComponentOptions = component_field("position", "learned")  # registry 'position'
    mlp: ComponentOptions = component_field("mlp", "gelu")  # registry 'mlp'
    final_norm: bool = True  # a norm before the LM head (ignored when norm.kind == none)
    tie_embeddings: bool = True
    bias: bool = True  # biases in linear layers and norms
    dropout: float = 0.0
    logit_softcap: float | None = None  # cap * tanh(logits / cap) when set
    init_std: float = 0.02
    # registry 'mixer': what runs between embedding and head (transformer blocks, an LSTM); `mixer: lstm`
    # is short for {kind: lstm}
    mixer: ComponentOptions = component_field("mixer", "transformer")

    def __post_init__(self):
        for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
            check_positive(name, getattr(self, name))
        check_range("dropout", self.dropout, 0.0, 1.0)
        check_positive("logit_softcap", self.logit_softcap, allow_none=True)
        check_positive("init_std", self.init_std)
        if self.n_embd % self.n_head:
            raise ConfigError(
                "n_embd",
                self.n_embd,
                f"It must be divisible by n_head ({self.n_head}); head size = n_embd / n_head.",
            )
        validate_sections(self)  # in field order: the mixer last, as its checks read the other sections
        check_buildable(self)  # before anything builds it: n_layer=1e9 must not hang

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_kv_head(self) -> int:
        """Key/value heads of the attention entry (entries without the notion have n_head)."""
        return getattr(self.attention, "n_kv_head", None) or self.n_head

    @property
    def mlp_hidden(self) -> int | None:
        """Hidden width of the feed-forward entry, if it has one (``options.hidden_width(model)``)."""
        width = getattr(self.mlp, "hidden_width", None)
        return width(self) if width is not None else None
