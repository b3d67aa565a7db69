"""Dynamic Tanh (Zhu et al. 2025), a norm without statistics: weight * tanh(alpha * x) + bias."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lit_algos.components.norm import NormOptions
from lit_algos.registry import registry
from lit_algos.utils.typed import check_positive


@dataclass
class DyTOptions(NormOptions):
    alpha0: float = 0.5  # the initial scale inside the tanh

    def __post_init__(self):
        super().__post_init__()
        check_positive("alpha0", self.alpha0)


@registry("norm").register("dyt", help="Dynamic Tanh: weight * tanh(alpha x) + bias", options=DyTOptions)
class DyT(nn.Module):
    def __init__(self, dim: int, cfg=None):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(()))
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * torch.tanh(self.alpha * x) + self.bias

    @torch.no_grad()
    def init_weights(self, cfg) -> None:
        self.alpha.fill_(cfg.norm.alpha0)
        self.weight.fill_(1.0)
        self.bias.zero_()
