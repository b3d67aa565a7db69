"""Feed-forward blocks (registry axis ``mlp``): gelu | relu | relu2 | swiglu.

The hidden width is ``cfg.mlp_hidden``: ``mlp.hidden`` when given, else ``mlp.multiple * n_embd``;
with ``mlp.match_gelu_params`` a gated MLP takes 2/3 of that so its three matrices hold as many
parameters as a two-matrix GELU MLP. The output projection is named ``c_proj`` everywhere so the
weight init can find the residual projections by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from lit_algos.registry import registry

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig

mlps = registry("mlp")

_OPTIONS = ("mlp.hidden", "mlp.multiple", "bias", "dropout")


class MLP(nn.Module):
    """Two matrices with an elementwise activation between them: c_proj(act(c_fc(x)))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = cfg.mlp_hidden
        self.c_fc = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)  # residual projection (scaled init)
        self.dropout = nn.Dropout(cfg.dropout)

    def act(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, C) -> (B, T, H) -> (B, T, C)

    @staticmethod
    def flops_per_token(cfg: ModelConfig) -> dict[str, float]:
        return {"mlp": 2 * 2 * cfg.n_embd * cfg.mlp_hidden}


@mlps.register("gelu", help="GELU MLP (GPT-2).", options=_OPTIONS)
class GeluMLP(MLP):
    def act(self, h: torch.Tensor) -> torch.Tensor:
        return F.gelu(h)


@mlps.register("relu", help="ReLU MLP (the original Transformer).", options=_OPTIONS)
class ReluMLP(MLP):
    def act(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(h)


@mlps.register("relu2", help="Squared-ReLU MLP (So et al. 2021, Primer; modded-nanogpt).", options=_OPTIONS)
class ReluSquaredMLP(MLP):
    def act(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(h).square()


@mlps.register(
    "swiglu",
    help="SwiGLU gated MLP: c_proj(silu(gate(x)) * up(x)) (Shazeer 2020; LLaMA).",
    options=(*_OPTIONS, "mlp.match_gelu_params"),
)
class SwiGLUMLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = cfg.mlp_hidden
        # Separate gate and up matrices (not one fused 2H-wide matrix) so each is its own Muon matrix.
        self.c_gate = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_up = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)  # residual projection (scaled init)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.c_gate(x)) * self.c_up(x)  # (B, T, H)
        return self.dropout(self.c_proj(h))  # (B, T, C)

    @staticmethod
    def flops_per_token(cfg: ModelConfig) -> dict[str, float]:
        return {"mlp": 3 * 2 * cfg.n_embd * cfg.mlp_hidden}
