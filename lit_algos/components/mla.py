"""Multi-head latent attention (registry entry ``mla``; DeepSeek-V2, kept in V3).

The last step of the MHA -> MQA -> GQA line: instead of sharing KV heads, every token's keys and
values are compressed jointly into one latent vector of ``kv_lora_rank`` features, which is all
a KV cache would hold (plus one shared rotary key of ``rope_head_dim`` features). Per head they
are expanded back by an up-projection:

    c_kv = norm(W_dkv x)               (kv_lora_rank,)          the cached latent
    k_h  = [W_uk,h c_kv ; rope(W_kr x)]  (qk_nope + rope_head_dim)  rope key shared by all heads
    v_h  = W_uv,h c_kv                  (v_head_dim,)
    q_h  = [W_uq,h c_q ; rope(W_qr,h c_q)], c_q = norm(W_dq x) with ``q_lora_rank``, else x

RoPE cannot act on the compressed keys (a position-dependent rotation between W_uk and the query
would stop W_uk being absorbed into W_uq at inference), so it runs on separate, *decoupled*
features: the trailing ``rope_head_dim`` of each query/key head rotate and the ``qk_nope_head_dim``
before them do not (partial rotary, ``position.rotary_width``). Without rope those features are
not needed and ``rope_head_dim`` is 0.

Defaults follow DeepSeek-V2's proportions with the model's head size hs = n_embd / n_head:
qk_nope_head_dim = v_head_dim = hs, kv_lora_rank = 4 hs (512 = 4 x 128 in V2/V3), rope_head_dim
= hs / 2 with rope (64 = 128 / 2), else 0. Scores are scaled by 1/sqrt(qk_nope + rope_head_dim).

``latent_norm: false`` drops the RMSNorm on the latents; then MLA is exactly multi-head
attention whose key, value (and query) weights are products of two factors of rank
``kv_lora_rank`` (``q_lora_rank``), which a test checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from lit_algos.components.attention import CausalSelfAttention
from lit_algos.components.norm import RMSNorm
from lit_algos.components.position import PositionEncoding
from lit_algos.errors import ConfigError
from lit_algos.registry import ComponentOptions, registry
from lit_algos.utils.typed import check_choice, check_positive

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig


@dataclass
class MLAOptions(ComponentOptions):
    """mla: latent ranks and head widths; null widths resolve from the head size (see module doc)."""

    kv_lora_rank: int | None = None  # width of the joint key/value latent (the KV cache per token)
    q_lora_rank: int | None = None  # null: queries straight from x; else through a latent this wide
    rope_head_dim: int | None = None  # decoupled rotary features per head (null: hs/2 with rope, else 0)
    qk_nope_head_dim: int | None = None  # unrotated query/key features per head (null: hs)
    v_head_dim: int | None = None  # value features per head (null: hs)
    latent_norm: bool = True  # RMSNorm on the kv (and q) latents, as in DeepSeek-V2
    backend: str = "sdpa"  # sdpa | manual
    qk_norm: bool = False  # RMS-normalise each query and key head before rotating

    def __post_init__(self):
        check_choice("backend", self.backend, ("sdpa", "manual"))
        for name in ("kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "v_head_dim"):
            check_positive(name, getattr(self, name), allow_none=True)
        check_positive("rope_head_dim", self.rope_head_dim, allow_zero=True, allow_none=True)

    def validate(self, model: ModelConfig) -> None:
        hs = model.head_size
        rope = model.position.kind == "rope"
        if self.rope_head_dim is None:
            self.rope_head_dim = 2 * max(1, hs // 4) if rope else 0
        if rope and (self.rope_head_dim == 0 or self.rope_head_dim % 2):
            raise ConfigError(
                "rope_head_dim", self.rope_head_dim, "With position.kind=rope it must be even and > 0."
            )
        if not rope and self.rope_head_dim:
            raise ConfigError(
                "rope_head_dim",
                self.rope_head_dim,
                f"Decoupled rotary features need position.kind=rope (it is {model.position.kind}); set 0 or null.",
            )
        self.qk_nope_head_dim = self.qk_nope_head_dim or hs
        self.v_head_dim = self.v_head_dim or hs
        self.kv_lora_rank = self.kv_lora_rank or 4 * hs

    def rotary_width(self, model: ModelConfig) -> int:
        return self.rope_head_dim


class MultiHeadLatentAttention(CausalSelfAttention):
    """Reuses CausalSelfAttention's mask and both backends (every head its own expanded KV head);
    only the projections differ, so its __init__ replaces the parent's instead of extending it."""

    def __init__(self, cfg: ModelConfig, layer_idx: int = 0):
        nn.Module.__init__(self)
        o = cfg.attention
        self.n_head, self.dropout, self.backend = cfg.n_head, cfg.dropout, o.backend
        self.n_kv_head, self.window = cfg.n_head, None  # keys/values are expanded per head
        self.head_size = o.qk_nope_head_dim + o.rope_head_dim  # the score scale is 1/sqrt(dn+dr)
        self.d_nope, self.d_rope, self.d_v, self.r_kv = (
            o.qk_nope_head_dim,
            o.rope_head_dim,
            o.v_head_dim,
            o.kv_lora_rank,
        )
        C, nh, d_qk = cfg.n_embd, cfg.n_head, o.qk_nope_head_dim + o.rope_head_dim
        eps = cfg.norm.eps
        if o.q_lora_rank is None:
            self.c_q = nn.Linear(C, nh * d_qk, bias=cfg.bias)
        else:
            self.c_q_down = nn.Linear(C, o.q_lora_rank, bias=cfg.bias)
            self.q_latent_norm = RMSNorm(o.q_lora_rank, eps=eps) if o.latent_norm else nn.Identity()
            self.c_q_up = nn.Linear(o.q_lora_rank, nh * d_qk, bias=cfg.bias)
        # One down-projection gives the latent and the shared rotary key side by side.
        self.c_kv_down = nn.Linear(C, o.kv_lora_rank + o.rope_head_dim, bias=cfg.bias)
        self.kv_latent_norm = RMSNorm(o.kv_lora_rank, eps=eps) if o.latent_norm else nn.Identity()
        self.c_kv_up = nn.Linear(o.kv_lora_rank, nh * (o.qk_nope_head_dim + o.v_head_dim), bias=cfg.bias)
        self.c_proj = nn.Linear(nh * o.v_head_dim, C, bias=cfg.bias)  # residual projection (scaled init)
        self.q_norm = RMSNorm(d_qk, eps=eps) if o.qk_norm else None
        self.k_norm = RMSNorm(d_qk, eps=eps) if o.qk_norm else None
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pos: PositionEncoding) -> torch.Tensor:
        B, T, C = x.size()
        nh = self.n_head
        if hasattr(self, "c_q"):
            q = self.c_q(x)
        else:
            q = self.c_q_up(self.q_latent_norm(self.c_q_down(x)))
        q = q.view(B, T, nh, self.d_nope + self.d_rope).transpose(1, 2)  # (B, nh, T, dn+dr)
        latent, k_rope = self.c_kv_down(x).split((self.r_kv, self.d_rope), dim=-1)  # (B, T, r), (B, T, dr)
        kv = self.c_kv_up(self.kv_latent_norm(latent))  # (B, T, nh*(dn+dv))
        kv = kv.view(B, T, nh, self.d_nope + self.d_v).transpose(1, 2)  # (B, nh, T, dn+dv)
        k_nope, v = kv.split((self.d_nope, self.d_v), dim=-1)  # (B, nh, T, dn), (B, nh, T, dv)
        k_rope = k_rope[:, None].expand(B, nh, T, self.d_rope)  # one rotary key for every head
        k = torch.cat((k_nope, k_rope), dim=-1)  # (B, nh, T, dn+dr)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = pos.rotate(q, k)  # rope turns the trailing dr features only (partial rotary)
        bias = pos.score_bias(T, x.device, q.dtype)
        allowed = self._allowed(T, x.device)
        if self.backend == "sdpa":
            y = self._sdpa(q, k, v, bias, allowed)
        else:
            y = self._manual(q, k, v, bias, allowed)
        y = y.transpose(1, 2).contiguous().view(B, T, nh * self.d_v)  # (B, T, nh*dv)
        return self.resid_dropout(self.c_proj(y))

    @staticmethod
    def flops_per_token(cfg: ModelConfig, layer_idx: int = 0) -> dict[str, float]:
        o, C, nh, T = cfg.attention, cfg.n_embd, cfg.n_head, cfg.block_size
        d_qk = o.qk_nope_head_dim + o.rope_head_dim
        if o.q_lora_rank is None:
            q = 2 * C * nh * d_qk
        else:
            q = 2 * C * o.q_lora_rank + 2 * o.q_lora_rank * nh * d_qk
        kv = 2 * C * (o.kv_lora_rank + o.rope_head_dim) + 2 * o.kv_lora_rank * nh * (
            o.qk_nope_head_dim + o.v_head_dim
        )
        return {
            "attn_qkv": q + kv,
            "attn_scores": 2 * nh * d_qk * T + 2 * nh * o.v_head_dim * T,  # q.k and att.v over T keys
            "attn_out": 2 * nh * o.v_head_dim * C,
        }

    @staticmethod
    def kv_cache_per_token(cfg: ModelConfig, layer_idx: int = 0) -> int:
        """Cached numbers per token and layer: the latent and the shared rotary key."""
        return cfg.attention.kv_lora_rank + cfg.attention.rope_head_dim


registry("attention").register(
    "mla",
    help="Multi-head latent attention (DeepSeek-V2): keys/values from a cached low-rank latent, decoupled RoPE.",
    options=MLAOptions,
    uses=("n_head", "bias", "dropout"),
    example={"kv_lora_rank": 12, "q_lora_rank": 16},
)(MultiHeadLatentAttention)
