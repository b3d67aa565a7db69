"""Feed-forward blocks (registry axis ``mlp``): gelu | relu | relu2 | swiglu.

The hidden width is ``MLPOptions.hidden_width(cfg)``: ``mlp.hidden`` when given, else
``mlp.multiple * n_embd``; with ``mlp.match_gelu_params`` a gated MLP takes 2/3 of that so its
three matrices hold as many parameters as a two-matrix GELU MLP. The output projection is named ``c_proj`` everywhere so the
weight init can find the residual projections by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from lit_algos.registry import ComponentOptions, registry
from lit_algos.utils.typed import check_positive

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig

mlps = registry("mlp")

_USES = ("n_embd", "bias", "dropout")


@dataclass
class MLPOptions(ComponentOptions):
    """The dense feed-forward width. Shared by every dense entry (``match_gelu_params`` matters to
    gated ones only, but every entry keeps it so existing config hashes stay the same)."""

    hidden: int | None = None  # explicit hidden width; overrides `multiple`
    multiple: float = 4.0  # hidden = multiple * n_embd when `hidden` is null
    match_gelu_params: bool = False  # gated MLPs: shrink hidden to 2/3 so params match a GELU MLP

    gated = False  # a class constant, not an option: three matrices instead of two

    def __post_init__(self):
        check_positive("hidden", self.hidden, allow_none=True)
        check_positive("multiple", self.multiple)

    def hidden_width(self, model: ModelConfig) -> int:
        if self.hidden is not None:
            return self.hidden
        hidden = int(self.multiple * model.n_embd)
        if self.match_gelu_params and self.gated:
            # A gated MLP has three matrices instead of two: 2/3 of the width keeps parameters equal.
            hidden = int(2 * hidden / 3)
        return max(1, hidden)


@dataclass
class GatedMLPOptions(MLPOptions):
    gated = True


class MLP(nn.Module):
    """Two matrices with an elementwise activation between them: c_proj(act(c_fc(x)))."""

    def __init__(self, cfg: ModelConfig, layer_idx: int = 0, hidden: int | None = None):
        super().__init__()
        hidden = hidden if hidden is not None else cfg.mlp.hidden_width(cfg)
        self.c_fc = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)  # residual projection (scaled init)
        self.dropout = nn.Dropout(cfg.dropout)

    def act(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, C) -> (B, T, H) -> (B, T, C)

    @staticmethod
    def flops_per_token(cfg: ModelConfig, layer_idx: int = 0) -> dict[str, float]:
        return {"mlp": 2 * 2 * cfg.n_embd * cfg.mlp.hidden_width(cfg)}


@mlps.register("gelu", help="GELU MLP (GPT-2).", options=MLPOptions, uses=_USES)
class GeluMLP(MLP):
    def act(self, h: torch.Tensor) -> torch.Tensor:
        return F.gelu(h)


@mlps.register("relu", help="ReLU MLP (the original Transformer).", options=MLPOptions, uses=_USES)
class ReluMLP(MLP):
    def act(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(h)


@mlps.register(
    "relu2", help="Squared-ReLU MLP (So et al. 2021, Primer; modded-nanogpt).", options=MLPOptions, uses=_USES
)
class ReluSquaredMLP(MLP):
    def act(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(h).square()


@mlps.register(
    "swiglu",
    help="SwiGLU gated MLP: c_proj(silu(gate(x)) * up(x)) (Shazeer 2020; LLaMA).",
    options=GatedMLPOptions,
    uses=_USES,
)
class SwiGLUMLP(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int = 0, hidden: int | None = None):
        super().__init__()
        hidden = hidden if hidden is not None else cfg.mlp.hidden_width(cfg)
        # Separate gate and up matrices (not one fused 2H-wide matrix) so each is its own Muon matrix.
        self.c_gate = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_up = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)  # residual projection (scaled init)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.c_gate(x)) * self.c_up(x)  # (B, T, H)
        return self.dropout(self.c_proj(h))  # (B, T, C)

    @staticmethod
    def flops_per_token(cfg: ModelConfig, layer_idx: int = 0) -> dict[str, float]:
        return {"mlp": 3 * 2 * cfg.n_embd * cfg.mlp.hidden_width(cfg)}


def dense_mlp(cfg: ModelConfig, kind: str, hidden: int) -> nn.Module:
    """A dense MLP entry ``kind`` of an explicit hidden width (MoE: dense layers, shared experts)."""
    return mlps.get(kind)(cfg, hidden=hidden)
