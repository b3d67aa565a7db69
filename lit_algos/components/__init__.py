"""Swappable model components (pure PyTorch, no Lightning).

Importing this package registers every entry in the ``attention``, ``norm``, ``position`` and
``mlp`` registries (see ``lit_algos.registry``). Construction conventions, used by
``lit_algos.model``:

- ``attention``: ``cls(cfg)``; ``forward(x (B,T,C), pos) -> (B,T,C)``; ``flops_per_token(cfg)``.
- ``norm``: ``cls(dim, cfg)``; ``forward(x) -> x``.
- ``position``: ``cls(cfg)``, a ``PositionEncoding`` with ``embed`` / ``rotate`` / ``score_bias``.
- ``mlp``: ``cls(cfg)``; ``forward(x (B,T,C)) -> (B,T,C)``; ``flops_per_token(cfg)``.

Every module's residual output projection is called ``c_proj`` (the weight init scales it).
"""

from lit_algos.components import attention, mlp, norm, position  # noqa: F401  (registration)
from lit_algos.components.attention import CausalSelfAttention
from lit_algos.components.mlp import MLP, SwiGLUMLP
from lit_algos.components.norm import LayerNorm, NoNorm, RMSNorm, build_norm
from lit_algos.components.position import PositionEncoding, alibi_slopes

__all__ = [
    "MLP",
    "CausalSelfAttention",
    "LayerNorm",
    "NoNorm",
    "PositionEncoding",
    "RMSNorm",
    "SwiGLUMLP",
    "alibi_slopes",
    "build_norm",
]
