"""Position information (registry axis ``position``): learned | sinusoidal | rope | alibi | none.

One position module per model, owned by the GPT and handed to every attention layer. It can act
at three places, and each kind uses the hooks it needs (the base class makes the others no-ops):

- ``embed(x)``: add an absolute position signal to the token embeddings (learned, sinusoidal);
- ``rotate(q, k)``: transform queries and keys per head before the dot product (rope);
- ``score_bias(T)``: an additive (n_head, T, T) bias on the attention scores (alibi).

Buffers (cos/sin tables, slopes) are non-persistent and recomputed by ``reset_buffers()``, which
``build_model`` calls after materialising a meta-device model with ``to_empty``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from lit_algos.errors import ConfigError
from lit_algos.registry import ComponentOptions, registry
from lit_algos.utils.typed import check_positive

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig

positions = registry("position")


@dataclass
class PositionOptions(ComponentOptions):
    """Shared by every position entry. ``rope_base`` is read by rope only; the other entries keep
    the field so that the config hashes of recipes written before per-entry options stay the same."""

    rope_base: float = 10000.0

    def __post_init__(self):
        check_positive("rope_base", self.rope_base)


def rotary_width(model: ModelConfig) -> int:
    """How many trailing features of each query/key head RoPE rotates.

    The attention entry decides (``rotary_width(model)`` on its options, e.g. MLA's decoupled
    ``rope_head_dim``); without that hook the whole head rotates. The features before them pass
    through unrotated (partial rotary).
    """
    hook = getattr(model.attention, "rotary_width", None)
    return hook(model) if hook is not None else model.head_size


@dataclass
class RopeOptions(PositionOptions):
    def validate(self, model: ModelConfig) -> None:
        width = rotary_width(model)
        if width <= 0 or width % 2:
            raise ConfigError(
                "kind",
                "rope",
                f"RoPE needs an even, positive rotary width per head; attention.kind={model.attention.kind} gives {width}.",
            )


class PositionEncoding(nn.Module):
    """Base class: every hook is the identity, so a kind overrides only what it changes."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.head_size = cfg.head_size
        self.n_embd = cfg.n_embd
        self.block_size = cfg.block_size

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) token embeddings -> (B, T, C) with positions added."""
        return x

    def rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q: (B, nh, T, hs), k: (B, n_kv, T, hs) -> the same shapes."""
        return q, k

    def score_bias(self, T: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
        """An additive bias (nh, T, T) on the pre-softmax scores, or None."""
        return None

    def reset_buffers(self) -> None:
        """Recompute non-persistent buffers in place (after ``to_empty``)."""

    @staticmethod
    def flops_per_token(cfg: ModelConfig) -> dict[str, float]:
        """Matmul FLOPs this kind adds per token in the forward pass (none of ours do: all elementwise)."""
        return {}


@positions.register(
    "none", help="No position information (causal masking alone leaks some order).", options=PositionOptions
)
class NoPosition(PositionEncoding):
    pass


@positions.register(
    "learned",
    help="Learned absolute position embedding added to the tokens (GPT-2).",
    options=PositionOptions,
    uses=("block_size",),
)
class LearnedPosition(PositionEncoding):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        T = x.size(1)
        pos = torch.arange(T, device=x.device)
        return x + self.wpe(pos)  # (B, T, C) + (T, C)


@positions.register(
    "sinusoidal",
    help="Fixed sine/cosine absolute positions added to the tokens (Vaswani et al. 2017).",
    options=PositionOptions,
)
class SinusoidalPosition(PositionEncoding):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.register_buffer("table", torch.empty(cfg.block_size, cfg.n_embd), persistent=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        pos = torch.arange(self.block_size, dtype=torch.float32, device=self.table.device)[:, None]  # (T, 1)
        i = torch.arange(0, self.n_embd, 2, dtype=torch.float32, device=self.table.device)  # (ceil(C/2),)
        angle = pos / (10000.0 ** (i / self.n_embd))  # (T, ceil(C/2))
        table = torch.zeros(self.block_size, self.n_embd, device=self.table.device)
        table[:, 0::2] = torch.sin(angle)
        table[:, 1::2] = torch.cos(angle[:, : self.n_embd // 2])  # odd n_embd: one fewer cosine column
        self.table.copy_(table)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.size(1)].to(x.dtype)  # (B, T, C) + (T, C)


@positions.register(
    "rope",
    help="Rotary embeddings: rotate q and k by position-dependent angles (Su et al. 2021).",
    options=RopeOptions,
)
class RotaryPosition(PositionEncoding):
    """Rotates the two halves of each head, (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos).

    Partial rotary: only the trailing ``rotary_width(cfg)`` features of a head rotate (all of
    them for mha/gqa/...; MLA's ``rope_head_dim``), the leading ones pass through unchanged.

    The dot product of a query rotated by angle m*theta and a key rotated by n*theta depends on
    m - n only, which is the point of RoPE (a test checks it).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.base = cfg.position.rope_base
        self.width = rotary_width(cfg)
        half = self.width // 2
        self.register_buffer("cos", torch.empty(cfg.block_size, half), persistent=False)
        self.register_buffer("sin", torch.empty(cfg.block_size, half), persistent=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        device = self.cos.device
        half = self.width // 2
        inv_freq = 1.0 / (
            self.base ** (torch.arange(half, dtype=torch.float32, device=device) / half)
        )  # (hs/2,)
        pos = torch.arange(self.block_size, dtype=torch.float32, device=device)
        angles = torch.outer(pos, inv_freq)  # (T, hs/2)
        self.cos.copy_(angles.cos())
        self.sin.copy_(angles.sin())

    def _apply_rotary(self, x: torch.Tensor) -> torch.Tensor:
        T = x.size(-2)
        cos = self.cos[:T].to(x.dtype)  # (T, w/2), broadcasts over (B, heads)
        sin = self.sin[:T].to(x.dtype)
        keep, rot = x.split((x.size(-1) - self.width, self.width), dim=-1)  # unrotated, rotated parts
        x1, x2 = rot.chunk(2, dim=-1)  # two (B, h, T, w/2) halves
        rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, h, T, w)
        return torch.cat((keep, rotated), dim=-1) if keep.size(-1) else rotated  # (B, h, T, hs)

    def rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._apply_rotary(q), self._apply_rotary(k)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """The per-head slopes of Press et al. 2022: a geometric sequence starting at 2^(-8/n).

    For a head count that is not a power of two, take the slopes of the next-lower power of two
    and fill the rest with every other slope of the next-higher one (the paper's recipe).
    """

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(n_head).is_integer():
        slopes = power_of_two(n_head)
    else:
        lower = 2 ** math.floor(math.log2(n_head))
        slopes = power_of_two(lower) + power_of_two(2 * lower)[0::2][: n_head - lower]
    return torch.tensor(slopes, dtype=torch.float32)


@positions.register(
    "alibi",
    help="ALiBi: a per-head linear penalty on attention scores by distance (Press et al. 2022).",
    options=PositionOptions,
)
class ALiBiPosition(PositionEncoding):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.register_buffer("slopes", torch.empty(cfg.n_head), persistent=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        self.slopes.copy_(alibi_slopes(self.n_head).to(self.slopes.device))

    def score_bias(self, T: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        pos = torch.arange(T, device=device)
        distance = (pos[None, :] - pos[:, None]).clamp(max=0)  # (T, T): j - i, <= 0 for the past, 0 above
        bias = self.slopes[:, None, None] * distance  # (nh, T, T); the causal mask handles j > i
        return bias.to(dtype)
