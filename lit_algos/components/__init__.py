"""Swappable model components (pure PyTorch, no Lightning).

Importing this package registers every entry in the ``attention``, ``norm``, ``position``,
``mlp`` and ``mixer`` registries (see ``lit_algos.registry``; the ``optimizer`` and ``schedule``
axes follow the same contract in ``lit_algos.optim``).

Attention entries: ``attention.py`` (mha, gqa, mqa, sliding), ``mla.py`` (multi-head latent
attention) and ``sparse.py`` (Child et al.'s patterns). Mixers: ``transformer.py`` (the blocks,
built from the attention, norm and mlp axes) and ``lstm.py`` (an ``nn.LSTM`` in their place).

The extension contract: a new component is one file here plus one import line below.
The file defines

1. **Options**: a dataclass subclassing ``lit_algos.registry.ComponentOptions``. Its fields are
   the recipe keys of the section (``model.mlp: {kind: moe, n_experts: 8}``) with defaults;
   ``__post_init__`` checks each field alone (``ConfigError(field, value, allowed)``, field
   relative to the section); ``validate(model)`` checks against the whole ``ModelConfig`` and
   may resolve derived values in place (a field of another section is named with
   ``ParentFieldError``). Config loading builds it from the entry named by ``kind``;
   ``config/model.py`` never names a kind. A norm's options derive from ``NormOptions`` (the
   block reads its ``placement``); registration refuses others.
2. **Module**: built as

   - ``attention``: ``cls(cfg, layer_idx)``; ``forward(x (B,T,C), pos) -> (B,T,C)``;
   - ``mlp``: ``cls(cfg, layer_idx)``; ``forward(x (B,T,C)) -> (B,T,C)``;
   - ``norm``: ``cls(dim, cfg)``; ``forward(x) -> x``;
   - ``position``: ``cls(cfg)``, a ``PositionEncoding`` with ``embed`` / ``rotate`` / ``score_bias``;
   - ``mixer``: ``cls(cfg)``, placed in the GPT under ``cls.attribute``; ``forward(x, pos) ->
     (x, aux or None)``; a class attribute ``has_attention``.

   An attention or mlp module may return ``(y, aux_loss)`` instead of ``y``: the block sums
   the auxiliary losses and the training step adds them to the loss, logged apart from it.
3. **FLOPs**: a static ``flops_per_token(cfg, layer_idx) -> {name: forward matmul FLOPs}``
   (``flops_per_token(cfg)`` for position, ``flops_per_token(cfg, ideal=False)`` for a mixer;
   none for a norm, which is elementwise) counting what *one token* goes through (active FLOPs
   for sparse modules), in the conventions of ``lit_algos.flops``.
4. **Optional hooks**: ``init_weights(cfg)`` for parameters that are not Linear/Embedding/norm
   weights (every parameter must be initialised); ``reset_buffers()`` for non-persistent
   buffers; ``inactive_param_count()`` for parameters a token does not use (active < total);
   a class attribute ``data_dependent_flops = True`` when the work depends on the data (routing),
   so the FLOP measurement runs on real tensors instead of the meta device.
5. **Registration**: ``registry(axis).register(name, help=..., options=OptionsClass,
   uses=(model-level fields read), example={options giving a small valid model})``.

The test suite parametrizes over the registries (forward/backward, meta build and init,
causality, sdpa == manual when the options have ``backend``, analytic == measured FLOPs,
save/load), so a registered entry is tested without editing a test. Every module's residual
output projection is called ``c_proj`` (the weight init scales it).
"""

from lit_algos.components import (  # noqa: F401  (registration)
    attention,
    lstm,
    mla,
    mlp,
    moe,
    norm,
    position,
    sparse,
    transformer,
)
from lit_algos.components.attention import CausalSelfAttention
from lit_algos.components.mlp import MLP, SwiGLUMLP
from lit_algos.components.moe import MoEFeedForward, moe_layers, update_balance
from lit_algos.components.norm import LayerNorm, NoNorm, RMSNorm, build_norm
from lit_algos.components.position import PositionEncoding, alibi_slopes

__all__ = [
    "MLP",
    "MoEFeedForward",
    "CausalSelfAttention",
    "LayerNorm",
    "NoNorm",
    "PositionEncoding",
    "RMSNorm",
    "SwiGLUMLP",
    "alibi_slopes",
    "build_norm",
    "moe_layers",
    "update_balance",
]
