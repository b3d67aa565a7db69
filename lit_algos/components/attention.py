"""Causal self-attention (registry axis ``attention``): mha | gqa | mqa | sliding.

The names are one module class. They differ only in the number of key/value heads, which each
entry's options resolve in ``validate`` (mha: n_head, mqa: 1, gqa: a divisor of n_head); each
KV head is shared by ``n_head / n_kv_head`` query heads.

``sliding`` is the same class with a local causal mask: each query sees itself and the
``window - 1`` tokens before it (Child et al. / Longformer-style local attention). The masked
scores are still computed over the full T x T square, so its FLOPs equal mha's.

Two backends compute the same function: ``sdpa`` calls ``F.scaled_dot_product_attention`` (the
flash kernel on GPU when there is no score bias) and ``manual`` writes out the masked softmax.
Tests check they agree for every position kind and KV-head count.

``mla`` (mla.py) and ``sparse`` (sparse.py) subclass this module and reuse its mask and backends.
Each attention class also says how many numbers a KV cache holds per token and layer
(``kv_cache_per_token``), which ``describe`` compares across kinds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from lit_algos.components.norm import RMSNorm
from lit_algos.components.position import PositionEncoding
from lit_algos.errors import ConfigError
from lit_algos.registry import ComponentOptions, registry
from lit_algos.utils.typed import check_choice, check_positive

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig

attentions = registry("attention")

# F.scaled_dot_product_attention learned enable_gqa= in torch 2.5; before that we expand KV heads.
_SDPA_HAS_GQA = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 5)

_USES = ("n_head", "bias", "dropout")


@dataclass
class AttentionOptions(ComponentOptions):
    """mha: ``n_kv_head`` null or n_head (resolved to n_head)."""

    n_kv_head: int | None = None
    backend: str = "sdpa"  # sdpa (flash kernel when available) | manual (explicit masked softmax)
    qk_norm: bool = False  # RMS-normalise queries and keys per head before the dot product

    def __post_init__(self):
        check_choice("backend", self.backend, ("sdpa", "manual"))
        check_positive("n_kv_head", self.n_kv_head, allow_none=True)

    def validate(self, model: ModelConfig) -> None:
        if self.n_kv_head not in (None, model.n_head):
            raise ConfigError(
                "n_kv_head",
                self.n_kv_head,
                f"With attention.kind={self.kind} it must be null or n_head ({model.n_head}); use kind=gqa for fewer KV heads.",
            )
        self.n_kv_head = model.n_head


@dataclass
class GQAOptions(AttentionOptions):
    """gqa: ``n_kv_head`` required, a divisor of n_head."""

    def validate(self, model: ModelConfig) -> None:
        if self.n_kv_head is None:
            raise ConfigError(
                "n_kv_head", None, f"With attention.kind=gqa set it to a divisor of n_head ({model.n_head})."
            )
        _check_divides(self.n_kv_head, model.n_head)


@dataclass
class MQAOptions(AttentionOptions):
    """mqa: one KV head (``n_kv_head`` null or 1)."""

    def validate(self, model: ModelConfig) -> None:
        if self.n_kv_head not in (None, 1):
            raise ConfigError("n_kv_head", self.n_kv_head, "With attention.kind=mqa it must be null or 1.")
        self.n_kv_head = 1


@dataclass
class SlidingOptions(AttentionOptions):
    """sliding: a ``window`` (required); ``n_kv_head`` defaults to n_head and may be a divisor."""

    window: int | None = None  # each query sees itself and the window - 1 tokens before it

    def __post_init__(self):
        super().__post_init__()
        check_positive("window", self.window, allow_none=True)

    def validate(self, model: ModelConfig) -> None:
        if self.window is None:
            raise ConfigError(
                "window", None, "attention.kind=sliding needs a window (a positive number of tokens)."
            )
        if self.n_kv_head is None:
            self.n_kv_head = model.n_head
        _check_divides(self.n_kv_head, model.n_head)


def _check_divides(n_kv_head: int, n_head: int) -> None:
    if n_head % n_kv_head:
        divisors = [d for d in range(1, n_head + 1) if n_head % d == 0]
        raise ConfigError(
            "n_kv_head",
            n_kv_head,
            f"It must divide n_head ({n_head}); allowed: {', '.join(map(str, divisors))}.",
        )


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int = 0):
        super().__init__()
        self.n_head = cfg.n_head
        self.n_kv_head = cfg.n_kv_head
        self.head_size = cfg.head_size
        self.backend = cfg.attention.backend
        self.dropout = cfg.dropout
        self.window = getattr(cfg.attention, "window", None)  # None: plain causal
        C, hs = cfg.n_embd, cfg.head_size
        # Separate q/k/v projections (not one fused c_attn) so that each is its own matrix for
        # Muon and the k/v width follows n_kv_head.
        self.c_q = nn.Linear(C, self.n_head * hs, bias=cfg.bias)
        self.c_k = nn.Linear(C, self.n_kv_head * hs, bias=cfg.bias)
        self.c_v = nn.Linear(C, self.n_kv_head * hs, bias=cfg.bias)
        self.c_proj = nn.Linear(self.n_head * hs, C, bias=cfg.bias)  # residual projection (scaled init)
        # QK-norm: RMS-normalise each head's query and key, with a learned gain so the model can
        # still set the softmax temperature (a parameter-free norm would pin the logit scale).
        self.q_norm = RMSNorm(hs, eps=cfg.norm.eps) if cfg.attention.qk_norm else None
        self.k_norm = RMSNorm(hs, eps=cfg.norm.eps) if cfg.attention.qk_norm else None
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pos: PositionEncoding) -> torch.Tensor:
        B, T, C = x.size()
        hs = self.head_size
        q = self.c_q(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.c_k(x).view(B, T, self.n_kv_head, hs).transpose(1, 2)  # (B, n_kv, T, hs)
        v = self.c_v(x).view(B, T, self.n_kv_head, hs).transpose(1, 2)  # (B, n_kv, T, hs)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # normalise before rotating, as in OLMo 2 / Qwen 3
        q, k = pos.rotate(q, k)
        bias = pos.score_bias(T, x.device, q.dtype)  # (nh, T, T) or None
        allowed = self._allowed(T, x.device)  # (T, T) bool, True = may attend
        if self.backend == "sdpa":
            y = self._sdpa(q, k, v, bias, allowed)
        else:
            y = self._manual(q, k, v, bias, allowed)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_head * hs)  # (B, T, nh*hs): heads side by side
        return self.resid_dropout(self.c_proj(y))

    @property
    def plain_causal(self) -> bool:
        """True when the mask is the plain causal triangle (SDPA's is_causal fast path)."""
        return self.window is None

    def _expand_kv(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n_kv, T, hs) -> (B, nh, T, hs): query head h reads KV head h // (nh / n_kv)."""
        group = self.n_head // self.n_kv_head
        if group == 1:
            return k, v
        return k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)

    def _allowed(self, T: int, device: torch.device) -> torch.Tensor:
        """(T, T) bool: query i may attend key j when j <= i (and i - j < window for sliding)."""
        i = torch.arange(T, device=device)[:, None]
        j = torch.arange(T, device=device)[None, :]
        allowed = j <= i
        if self.window is not None:
            allowed = allowed & (i - j < self.window)
        return allowed

    def _sdpa(self, q, k, v, bias: torch.Tensor | None, allowed: torch.Tensor) -> torch.Tensor:
        dropout_p = self.dropout if self.training else 0.0
        kwargs = {}
        if self.n_kv_head != self.n_head:
            if _SDPA_HAS_GQA:
                kwargs["enable_gqa"] = True  # the kernel broadcasts KV heads without copying them
            else:
                k, v = self._expand_kv(k, v)
        if bias is None and self.plain_causal:
            # is_causal lets PyTorch pick the flash kernel; a mask tensor would rule it out.
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True, **kwargs)
        if bias is None:
            mask = allowed  # (T, T) bool
        else:
            mask = bias.masked_fill(~allowed, float("-inf"))  # (nh, T, T) float mask: bias + causal
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, **kwargs)

    def _manual(self, q, k, v, bias: torch.Tensor | None, allowed: torch.Tensor) -> torch.Tensor:
        k, v = self._expand_kv(k, v)  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_size))  # (B, nh, T, T)
        if bias is not None:
            att = att + bias  # (B, nh, T, T) + (nh, T, T)
        att = att.masked_fill(~allowed, float("-inf"))
        att = F.softmax(att, dim=-1)
        att = F.dropout(att, p=self.dropout, training=self.training)
        return att @ v  # (B, nh, T, T) @ (B, nh, T, hs) -> (B, nh, T, hs)

    @staticmethod
    def flops_per_token(cfg: ModelConfig, layer_idx: int = 0) -> dict[str, float]:
        """Forward matmul FLOPs per token of one layer (2*m*n*k; scores over the full T, see flops.py)."""
        C, hs, T = cfg.n_embd, cfg.head_size, cfg.block_size
        return {
            "attn_qkv": 2 * C * (cfg.n_head + 2 * cfg.n_kv_head) * hs,
            "attn_scores": 2 * 2 * cfg.n_head * hs * T,  # q.k over T keys, then att.v over T values
            "attn_out": 2 * cfg.n_head * hs * C,
        }

    @staticmethod
    def kv_cache_per_token(cfg: ModelConfig, layer_idx: int = 0) -> int:
        """Numbers a KV cache holds per token and layer: a key and a value per KV head."""
        return 2 * cfg.n_kv_head * cfg.head_size


attentions.register(
    "mha",
    help="Multi-head attention: one key/value head per query head.",
    options=AttentionOptions,
    uses=_USES,
)(CausalSelfAttention)
attentions.register(
    "gqa",
    help="Grouped-query attention: n_kv_head key/value heads, each shared by a group of query heads.",
    options=GQAOptions,
    uses=_USES,
    example={"n_kv_head": 2},
)(CausalSelfAttention)
attentions.register(
    "mqa",
    help="Multi-query attention: a single key/value head shared by all query heads.",
    options=MQAOptions,
    uses=_USES,
)(CausalSelfAttention)
attentions.register(
    "sliding",
    help="Sliding-window causal attention: each query sees the last `window` tokens (itself included).",
    options=SlidingOptions,
    uses=_USES,
    example={"window": 4},
)(CausalSelfAttention)
