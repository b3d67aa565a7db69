"""A GRU mixer: ``n_layer`` GRU layers of width ``n_embd`` in place of the blocks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from lit_algos.registry import ComponentOptions, registry


@dataclass
class GRUOptions(ComponentOptions):
    pass


@registry("mixer").register("gru", help="a multi-layer nn.GRU in place of the blocks", options=GRUOptions)
class GRUMixer(nn.GRU):
    attribute = "gru"
    has_attention = False

    def __init__(self, cfg):
        super().__init__(cfg.n_embd, cfg.n_embd, num_layers=cfg.n_layer, bias=cfg.bias, batch_first=True)

    def forward(self, x: torch.Tensor, pos=None):
        return super().forward(x)[0], None

    @torch.no_grad()
    def init_weights(self, cfg) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters(recurse=False):
            nn.init.uniform_(p, -bound, bound)

    @staticmethod
    def flops_per_token(cfg, ideal: bool = False) -> dict[str, float]:
        H = cfg.n_embd
        return {"gru_input": cfg.n_layer * 2 * 3 * H * H, "gru_recurrent": cfg.n_layer * 2 * 3 * H * H}
