"""Sparse attention of Child et al. 2019, "Generating Long Sequences with Sparse Transformers"
(registry entry ``sparse``).

Query i attends to the causal keys j <= i in the union of two sets (the paper's "merged" head,
which attends to both factorised sets at once), with l = ``stride`` (strided) or ``block``
(fixed) and c = ``summary``:

- ``strided``: A1 = {j : i - j < l} (the last l positions), A2 = {j : (i - j) mod l == 0}
  (every l-th position before i). Suited to data with a period l (images).
- ``fixed``: A1 = {j : floor(j / l) == floor(i / l)} (i's own block), A2 = {j : j mod l >= l - c}
  (the last c positions of every block, which summarise it for later blocks). The paper's text
  setting.

``allowed_mask`` is the definition, and a test compares it with a brute-force reading of the
sets above. The module is ``CausalSelfAttention`` with this mask: backend ``manual`` writes out
the masked softmax and ``sdpa`` runs FlexAttention with a block mask on a GPU (where it compiles
to a kernel that skips empty blocks) and masked SDPA elsewhere.

FLOPs: the masked kernels (manual, SDPA) still compute every score of the T x T square, so the
*executed* count, which ``flops_per_token`` reports and CEG uses, equals dense attention's.
``ideal_flops_per_token`` counts only the attended pairs (the mean attended set size over the T
positions instead of T): the work of a kernel that skips every masked score. Both are in
``describe`` and the run record (``flops_per_token.ideal``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import torch

from lit_algos.components.attention import AttentionOptions, CausalSelfAttention, _check_divides, attentions
from lit_algos.errors import ConfigError
from lit_algos.utils.typed import check_choice, check_positive

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig

PATTERNS = ("strided", "fixed")


@dataclass
class SparseOptions(AttentionOptions):
    """sparse: ``pattern`` strided (needs ``stride``) or fixed (needs ``block``, ``summary`` c).

    Inherits n_kv_head (default n_head, or a divisor of it), backend and qk_norm.
    """

    pattern: str = "fixed"
    stride: int | None = None  # strided: l, the local width and the step of the strided set
    block: int | None = None  # fixed: l, the block length
    summary: int = 1  # fixed: c, the summary positions at the end of every block

    def __post_init__(self):
        super().__post_init__()
        check_choice("pattern", self.pattern, PATTERNS)
        check_positive("stride", self.stride, allow_none=True)
        check_positive("block", self.block, allow_none=True)
        check_positive("summary", self.summary)

    def validate(self, model: ModelConfig) -> None:
        need = "stride" if self.pattern == "strided" else "block"
        if getattr(self, need) is None:
            raise ConfigError(need, None, f"attention.pattern={self.pattern} needs a positive {need}.")
        if self.pattern == "fixed" and self.summary > self.block:
            raise ConfigError("summary", self.summary, f"It must be at most block ({self.block}).")
        if self.n_kv_head is None:
            self.n_kv_head = model.n_head
        _check_divides(self.n_kv_head, model.n_head)

    @property
    def period(self) -> int:
        return self.stride if self.pattern == "strided" else self.block


def allowed_mask(T: int, pattern: str, period: int, summary: int = 1, device=None) -> torch.Tensor:
    """(T, T) bool, True where query i (row) may attend key j (column)."""
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    if pattern == "strided":
        keep = (i - j < period) | ((i - j) % period == 0)
    else:
        keep = (i // period == j // period) | (j % period >= period - summary)
    return keep & (j <= i)


def _mask_mod(pattern: str, period: int, summary: int):
    """The same definition as a FlexAttention mask_mod (scalar-index form)."""
    if pattern == "strided":

        def mask_mod(b, h, q_idx, kv_idx):
            return (kv_idx <= q_idx) & ((q_idx - kv_idx < period) | ((q_idx - kv_idx) % period == 0))
    else:

        def mask_mod(b, h, q_idx, kv_idx):
            same_block = q_idx // period == kv_idx // period
            return (kv_idx <= q_idx) & (same_block | (kv_idx % period >= period - summary))

    return mask_mod


@lru_cache(maxsize=16)
def _block_mask(pattern: str, period: int, summary: int, T: int, device: str):
    # here, not at the top: flex_attention exists from torch 2.5 on, and the package allows 2.4
    from torch.nn.attention.flex_attention import create_block_mask

    return create_block_mask(_mask_mod(pattern, period, summary), None, None, T, T, device=device)


@lru_cache(maxsize=1)
def _compiled_flex():
    # here, not at the top: flex_attention exists from torch 2.5 on, and the package allows 2.4
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def flex_sparse_attention(q, k, v, pattern: str, period: int, summary: int, *, compiled: bool = False):
    """FlexAttention with the pattern's block mask; q (B, nh, T, hs), k/v (B, n_kv, T, hs)."""
    # here, not at the top: flex_attention exists from torch 2.5 on, and the package allows 2.4
    from torch.nn.attention.flex_attention import flex_attention

    block_mask = _block_mask(pattern, period, summary, q.size(-2), str(q.device))
    fn = _compiled_flex() if compiled else flex_attention
    return fn(q, k, v, block_mask=block_mask, enable_gqa=k.size(1) != q.size(1))


class SparseAttention(CausalSelfAttention):
    def __init__(self, cfg: ModelConfig, layer_idx: int = 0):
        super().__init__(cfg, layer_idx)
        o = cfg.attention
        self.window = None
        self.pattern, self.period, self.summary = o.pattern, o.period, o.summary

    @property
    def plain_causal(self) -> bool:
        return False

    def _allowed(self, T: int, device: torch.device) -> torch.Tensor:
        return allowed_mask(T, self.pattern, self.period, self.summary, device=device)

    def _sdpa(self, q, k, v, bias, allowed):
        # FlexAttention's compiled kernel skips empty blocks; it needs a GPU, no score bias and no
        # attention dropout (which flex_attention does not offer).
        if q.is_cuda and bias is None and not (self.training and self.dropout > 0):
            return flex_sparse_attention(q, k, v, self.pattern, self.period, self.summary, compiled=True)
        return super()._sdpa(q, k, v, bias, allowed)

    @staticmethod
    def ideal_flops_per_token(cfg: ModelConfig, layer_idx: int = 0) -> dict[str, float]:
        """Forward FLOPs per token if only attended pairs were computed (the pattern's count)."""
        o, T = cfg.attention, cfg.block_size
        counts = CausalSelfAttention.flops_per_token(cfg, layer_idx)
        pairs = allowed_mask(T, o.pattern, o.period, o.summary).sum().item()
        counts["attn_scores"] = 2 * 2 * cfg.n_head * cfg.head_size * pairs / T  # mean attended keys per query
        return counts


attentions.register(
    "sparse",
    help="Sparse Transformer attention (Child et al. 2019): strided or fixed pattern as a block mask.",
    options=SparseOptions,
    uses=("n_head", "bias", "dropout"),
    example={"pattern": "fixed", "block": 4, "summary": 1},
)(SparseAttention)

__all__ = ["PATTERNS", "SparseAttention", "SparseOptions", "allowed_mask", "flex_sparse_attention"]
