"""The transformer mixer (registry axis ``mixer``, entry ``transformer``, the default):
``n_layer`` blocks of attention + feed-forward, each built from the ``attention``, ``mlp`` and
``norm`` axes, sharing the model's one ``position`` module.

A mixer entry is built as ``cls(cfg)`` and sits in the GPT under ``cls.attribute`` (here
``blocks``, so parameter names are ``blocks.<i>.attn...``); ``forward(x (B,T,C), pos) -> (x,
aux)`` where ``aux`` is the sum of the layers' auxiliary losses (None when there are none);
``flops_per_token(cfg, ideal=False)`` counts the mixer's forward matmuls per token;
``has_attention`` says whether the attention axis is used (``lit-algos describe`` compares
attention kinds only then).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from lit_algos.components.norm import build_norm
from lit_algos.registry import ComponentOptions, registry

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig


@dataclass
class TransformerOptions(ComponentOptions):
    """No options of its own: the blocks are described by the attention, norm, position and mlp axes."""


class Block(nn.Module):
    """One transformer block. ``pre``: x + f(norm(x)) (GPT-2 onwards); ``post``: norm(x + f(x)) (Vaswani).

    A sub-layer (attention or mlp entry) returns either its output or ``(output, aux_loss)``; the
    block adds up the auxiliary losses (e.g. an MoE load-balancing loss) and returns them beside x.
    """

    def __init__(self, cfg: ModelConfig, layer_idx: int = 0):
        super().__init__()
        self.pre_norm = cfg.norm.placement == "pre"
        self.norm_1 = build_norm(cfg)
        self.attn = registry("attention").get(cfg.attention.kind)(cfg, layer_idx)
        self.norm_2 = build_norm(cfg)
        self.mlp = registry("mlp").get(cfg.mlp.kind)(cfg, layer_idx)

    def forward(self, x: torch.Tensor, pos: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux = None
        if self.pre_norm:
            y, aux = add_aux(self.attn(self.norm_1(x), pos), aux)
            x = x + y
            y, aux = add_aux(self.mlp(self.norm_2(x)), aux)
            x = x + y
        else:
            y, aux = add_aux(self.attn(x, pos), aux)
            x = self.norm_1(x + y)
            y, aux = add_aux(self.mlp(x), aux)
            x = self.norm_2(x + y)
        return x, aux  # (B, T, C), scalar or None


def add_aux(out, aux: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A sub-layer's output, and the running auxiliary loss plus the sub-layer's own (if any)."""
    if isinstance(out, tuple):
        out, extra = out
        if extra is not None:
            aux = extra if aux is None else aux + extra
    return out, aux


@registry("mixer").register(
    "transformer",
    help="The blocks (default): n_layer x (attention + MLP), with the norm, position and MLP axes.",
    options=TransformerOptions,
    uses=("n_layer", "n_head", "n_embd", "attention", "norm", "position", "mlp"),
)
class TransformerBlocks(nn.ModuleList):
    attribute = "blocks"
    has_attention = True

    def __init__(self, cfg: ModelConfig):
        super().__init__(Block(cfg, i) for i in range(cfg.n_layer))

    def forward(self, x: torch.Tensor, pos: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux_total = None
        for block in self:
            x, aux = block(x, pos)
            if aux is not None:
                aux_total = aux if aux_total is None else aux_total + aux
        return x, aux_total

    @staticmethod
    def flops_per_token(cfg: ModelConfig, ideal: bool = False) -> dict[str, float]:
        """The attention and mlp entries' counts, per layer (a layer's entry may depend on its index:
        MoE with the first layers dense). ``ideal``: the attention entry's ``ideal_flops_per_token``
        where it has one (sparse: masked scores skipped)."""
        attn = registry("attention").get(cfg.attention.kind)
        mlp = registry("mlp").get(cfg.mlp.kind)
        attn_count = (
            getattr(attn, "ideal_flops_per_token", attn.flops_per_token) if ideal else attn.flops_per_token
        )
        out: dict[str, float] = {}
        for layer in range(cfg.n_layer):
            for counts in (attn_count(cfg, layer), mlp.flops_per_token(cfg, layer)):
                for key, value in counts.items():
                    out[key] = out.get(key, 0.0) + float(value)
        return out
