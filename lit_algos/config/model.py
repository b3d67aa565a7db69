"""Model config: one typed tree whose string selectors are checked against the registries."""

from __future__ import annotations

from dataclasses import dataclass, field

from lit_algos.config.base import check_choice, check_positive, check_range, check_registry
from lit_algos.errors import ConfigError


@dataclass
class AttentionConfig:
    kind: str = "mha"  # registry 'attention': mha | gqa | mqa (one class driven by n_kv_head) | sliding
    n_kv_head: int | None = None  # mha: = n_head, mqa: 1, gqa: required and must divide n_head
    backend: str = "sdpa"  # sdpa (flash kernel when available) | manual (explicit masked softmax)
    qk_norm: bool = False  # RMS-normalise queries and keys per head before the dot product
    window: int | None = None  # sliding: each query sees itself and the window - 1 tokens before it

    def __post_init__(self):
        check_registry("kind", self.kind, "attention")
        check_choice("backend", self.backend, ("sdpa", "manual"))
        check_positive("n_kv_head", self.n_kv_head, allow_none=True)
        check_positive("window", self.window, allow_none=True)
        if self.kind == "sliding" and self.window is None:
            raise ConfigError(
                "window", None, "attention.kind=sliding needs a window (a positive number of tokens)."
            )
        if self.kind != "sliding" and self.window is not None:
            raise ConfigError(
                "window", self.window, "Only attention.kind=sliding uses a window; set it to null."
            )


@dataclass
class NormConfig:
    kind: str = "layernorm"  # registry 'norm': none | layernorm | rmsnorm
    placement: str = "pre"  # pre: x + f(norm(x)); post: norm(x + f(x))
    eps: float = 1e-5

    def __post_init__(self):
        check_registry("kind", self.kind, "norm")
        check_choice("placement", self.placement, ("pre", "post"))
        check_positive("eps", self.eps)


@dataclass
class PositionConfig:
    kind: str = "learned"  # registry 'position': learned | sinusoidal | rope | alibi | none
    rope_base: float = 10000.0

    def __post_init__(self):
        check_registry("kind", self.kind, "position")
        check_positive("rope_base", self.rope_base)


@dataclass
class MLPConfig:
    kind: str = "gelu"  # registry 'mlp': gelu | relu | relu2 | swiglu
    hidden: int | None = None  # explicit hidden width; overrides `multiple`
    multiple: float = 4.0  # hidden = multiple * n_embd when `hidden` is null
    match_gelu_params: bool = False  # gated MLPs: shrink hidden to 2/3 so params match a GELU MLP

    def __post_init__(self):
        check_registry("kind", self.kind, "mlp")
        check_positive("hidden", self.hidden, allow_none=True)
        check_positive("multiple", self.multiple)


@dataclass
class ModelConfig:
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128  # context length T
    vocab_size: int = 4096  # must be >= the tokenizer's vocabulary (padding is fine)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    norm: NormConfig = field(default_factory=NormConfig)
    position: PositionConfig = field(default_factory=PositionConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    final_norm: bool = True  # a norm before the LM head (ignored when norm.kind == none)
    tie_embeddings: bool = True
    bias: bool = True  # biases in linear layers and norms
    dropout: float = 0.0
    logit_softcap: float | None = None  # cap * tanh(logits / cap) when set
    init_std: float = 0.02

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
        if self.position.kind == "rope" and self.head_size % 2:
            raise ConfigError(
                "n_embd", self.n_embd, f"RoPE needs an even head size; n_embd / n_head = {self.head_size}."
            )
        self._resolve_kv_heads()

    def _resolve_kv_heads(self) -> None:
        att = self.attention
        if att.kind == "mha":
            if att.n_kv_head not in (None, self.n_head):
                raise ConfigError(
                    "attention.n_kv_head",
                    att.n_kv_head,
                    f"With attention.kind=mha it must be null or n_head ({self.n_head}); use kind=gqa for fewer KV heads.",
                )
            att.n_kv_head = self.n_head
        elif att.kind == "mqa":
            if att.n_kv_head not in (None, 1):
                raise ConfigError(
                    "attention.n_kv_head", att.n_kv_head, "With attention.kind=mqa it must be null or 1."
                )
            att.n_kv_head = 1
        elif att.kind == "gqa":
            if att.n_kv_head is None:
                raise ConfigError(
                    "attention.n_kv_head",
                    None,
                    f"With attention.kind=gqa set it to a divisor of n_head ({self.n_head}).",
                )
            if self.n_head % att.n_kv_head:
                divisors = [d for d in range(1, self.n_head + 1) if self.n_head % d == 0]
                raise ConfigError(
                    "attention.n_kv_head",
                    att.n_kv_head,
                    f"It must divide n_head ({self.n_head}); allowed: {', '.join(map(str, divisors))}.",
                )
        elif att.n_kv_head is None:  # sliding: full heads unless n_kv_head says otherwise
            att.n_kv_head = self.n_head
        elif self.n_head % att.n_kv_head:
            raise ConfigError("attention.n_kv_head", att.n_kv_head, f"It must divide n_head ({self.n_head}).")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_kv_head(self) -> int:
        return self.attention.n_kv_head or self.n_head

    @property
    def mlp_hidden(self) -> int:
        """Hidden width of the MLP after applying `hidden`, `multiple` and `match_gelu_params`."""
        if self.mlp.hidden is not None:
            return self.mlp.hidden
        hidden = int(self.mlp.multiple * self.n_embd)
        if self.mlp.match_gelu_params and self.mlp.kind == "swiglu":
            # A gated MLP has three matrices instead of two: 2/3 of the width keeps parameters equal.
            hidden = int(2 * hidden / 3)
        return max(1, hidden)
