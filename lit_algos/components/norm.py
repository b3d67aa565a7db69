"""Normalization layers (registry axis ``norm``): none | layernorm | rmsnorm.

Every entry is built as ``cls(dim, cfg)``. Where the norm sits (pre / post) is the Block's
business, not the norm's; see ``lit_algos.components.transformer.Block``. Norms are elementwise,
which the FLOP conventions leave out (``lit_algos.flops``), so a norm has no ``flops_per_token``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from lit_algos.registry import ComponentOptions, registry
from lit_algos.utils.typed import check_choice, check_positive

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig


@dataclass
class NormOptions(ComponentOptions):
    """The base of every norm entry's options (registration refuses others): ``placement`` is read
    by the Block (where the norm sits), ``eps`` by the norms. A new norm with options of its own
    subclasses it (and calls ``super().__post_init__()``)."""

    placement: str = "pre"  # pre: x + f(norm(x)); post: norm(x + f(x))
    eps: float = 1e-5

    def __post_init__(self):
        check_choice("placement", self.placement, ("pre", "post"))
        check_positive("eps", self.eps)


norms = registry("norm", options_base=NormOptions)


@norms.register("none", help="No normalization (identity).", options=NormOptions)
class NoNorm(nn.Module):
    def __init__(self, dim: int, cfg: ModelConfig | None = None):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@norms.register(
    "layernorm",
    help="LayerNorm: subtract the mean, divide by the std, gain and bias.",
    options=NormOptions,
    uses=("bias",),
)
class LayerNorm(nn.Module):
    """LayerNorm whose bias follows ``cfg.bias`` (nn.LayerNorm grew ``bias=`` only in torch 2.1)."""

    def __init__(
        self, dim: int, cfg: ModelConfig | None = None, *, eps: float | None = None, bias: bool | None = None
    ):
        super().__init__()
        self.eps = eps if eps is not None else (cfg.norm.eps if cfg is not None else 1e-5)
        use_bias = bias if bias is not None else (cfg.bias if cfg is not None else True)
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if use_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


@norms.register(
    "rmsnorm", help="RMSNorm: divide by the root mean square, learned gain, no bias.", options=NormOptions
)
class RMSNorm(nn.Module):
    def __init__(self, dim: int, cfg: ModelConfig | None = None, *, eps: float | None = None):
        super().__init__()
        self.eps = eps if eps is not None else (cfg.norm.eps if cfg is not None else 1e-5)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


def build_norm(cfg: ModelConfig, dim: int | None = None) -> nn.Module:
    """The norm named by ``cfg.norm.kind`` over the last ``dim`` (default ``n_embd``) features."""
    return norms.get(cfg.norm.kind)(dim if dim is not None else cfg.n_embd, cfg)
