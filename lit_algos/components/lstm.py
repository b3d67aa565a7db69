"""The LSTM mixer (registry axis ``mixer``, entry ``lstm``): a multi-layer ``nn.LSTM`` in place of the blocks.

The GPT shell stays: token embedding (and an absolute position embedding if the recipe has one),
embedding dropout, the final norm (``final_norm``), the tied or untied LM head and the loss, so
data, training, records, CEG and sweeps treat an LSTM recipe like any other. Only the mixer
between embedding and head changes: ``n_layer`` LSTM layers of width ``n_embd`` (the hidden
size equals the embedding width, so a tied head works), dropout ``dropout`` between layers and
on the output (Zaremba et al. 2014). On a GPU ``nn.LSTM`` runs cuDNN's fused kernel.

Every sequence of a batch starts from a zero state (h0 = c0 = 0); nothing is carried between
sequences or batches (a test checks it). The components ``attention``/``mlp``/``norm`` of the
config are unused (``norm.kind`` still chooses the final norm): the entry's ``validate`` refuses
attention or feed-forward options other than the defaults (they would be silently ignored) and a
position kind acting inside attention (rope, alibi), since there is no attention to act in.

FLOPs per token and layer: four gates, each a matmul of the input (n_embd) and of the previous
hidden state (n_embd) into n_embd features: 2 * 4H * (H + H) = 16 H^2. Gate nonlinearities and
the cell update are elementwise and not counted (the convention of ``lit_algos.flops``). On the
CPU ``aten::lstm`` decomposes into per-step matmuls that FlopCounterMode sees, and a test checks
the count against it; on cuDNN the fused kernel is one opaque call, so the hand count above is
the reference there.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from lit_algos.components.position import PositionEncoding
from lit_algos.registry import ComponentOptions, ParentFieldError, registry

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig


@dataclass
class LSTMOptions(ComponentOptions):
    """No options of its own (width and depth are n_embd and n_layer); ``validate`` refuses the
    settings of the other axes that an LSTM would silently ignore."""

    def validate(self, model: ModelConfig) -> None:
        cls = registry("position").get(model.position.kind)
        if cls.rotate is not PositionEncoding.rotate or cls.score_bias is not PositionEncoding.score_bias:
            raise ParentFieldError(
                "position.kind",
                model.position.kind,
                "With mixer=lstm there is no attention for it to act in; use none (or learned / sinusoidal).",
            )
        # The LSTM replaces the blocks: options of their attention and feed-forward layers would be
        # silently ignored, so anything but the defaults is refused.
        for axis, kind, what in (("attention", "mha", "attention"), ("mlp", "gelu", "feed-forward")):
            default = registry(axis).options(kind)
            default.validate(model)  # resolves what the default resolves (e.g. mha's n_kv_head = n_head)
            got, want = dataclasses.asdict(getattr(model, axis)), dataclasses.asdict(default)
            for key in [k for k in got if got[k] != want.get(k)][:1]:
                raise ParentFieldError(
                    f"{axis}.{key}",
                    got[key],
                    f"With mixer=lstm there is no {what} layer for it to configure (the LSTM replaces the blocks), "
                    f"so it would be ignored: leave model.{axis} at its default ({kind}, no options) or use mixer "
                    "transformer.",
                )


@registry("mixer").register(
    "lstm",
    help="A multi-layer nn.LSTM in place of the blocks, in the same embedding/head/training shell.",
    options=LSTMOptions,
    uses=("n_layer", "n_embd", "dropout", "bias"),
)
class LSTMMixer(nn.LSTM):
    """(B, T, C) -> (B, T, C) through ``n_layer`` LSTM layers, each sequence from a zero state."""

    attribute = "lstm"  # its place in the GPT: parameters lstm.weight_ih_l0, ...
    has_attention = False

    def __init__(self, cfg: ModelConfig):
        super().__init__(
            input_size=cfg.n_embd,
            hidden_size=cfg.n_embd,
            num_layers=cfg.n_layer,
            bias=cfg.bias,
            batch_first=True,
            dropout=cfg.dropout if cfg.n_layer > 1 else 0.0,  # between layers (nn.LSTM warns otherwise)
        )
        self.out_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pos: nn.Module | None = None) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        """(B, T, C) -> ((B, T, C), no auxiliary loss); ``pos`` is unused (order is in the recurrence)."""
        y, _ = super().forward(x)  # h0 = c0 = 0 for every sequence, final state dropped
        # reshape-safe: nn.LSTM's output is not contiguous, callers reshape rather than view
        return self.out_drop(y), None

    @torch.no_grad()
    def init_weights(self, cfg: ModelConfig) -> None:
        """PyTorch's LSTM init, U(-1/sqrt(H), 1/sqrt(H)), with the forget-gate bias at 1 so the
        cell starts by remembering (Jozefowicz et al. 2015)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        H = self.hidden_size
        for name, p in self.named_parameters(recurse=False):
            nn.init.uniform_(p, -bound, bound)
            if name.startswith("bias_ih"):
                p[H : 2 * H].fill_(1.0)  # gate order i, f, g, o: rows H..2H are the forget gate
            elif name.startswith("bias_hh"):
                p[H : 2 * H].zero_()

    @staticmethod
    def flops_per_token(cfg: ModelConfig, ideal: bool = False) -> dict[str, float]:
        H = cfg.n_embd
        return {
            "lstm_input": cfg.n_layer * 2 * 4 * H * H,  # W_ih x_t for the four gates
            "lstm_recurrent": cfg.n_layer * 2 * 4 * H * H,  # W_hh h_{t-1}
        }
