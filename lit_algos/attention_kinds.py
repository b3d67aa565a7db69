"""One model, every attention kind: parameters, FLOPs per token and KV-cache bytes per token.

This is the comparison that MQA, GQA, MLA, sliding-window and sparse attention exist for
(``lit-algos describe`` prints it). Each registered attention entry is put into the same model
with options derived from it:

- the config's own kind keeps its options;
- ``gqa``: the config's ``n_kv_head`` when it is strictly between 1 and n_head, else n_head / 2
  (1 for an odd head count);
- ``sliding``: a window of block_size / 4 tokens;
- ``sparse``: the ``fixed`` pattern with block l = round(sqrt(block_size)) and one summary
  position, the paper's choice of l ~ sqrt(n);
- ``mla`` and the rest: their defaults (MLA: DeepSeek-V2 proportions), else their ``example``.

``backend`` and ``qk_norm`` follow the config where the entry has them. KV-cache bytes count the
keys and values (MLA: the latent plus the shared rotary key) one token adds over all layers, at
``bytes_per_number`` (2: bf16). A sliding window also caps the cache at ``window`` tokens, which
the per-token figure does not show; the ``note`` says so.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from lit_algos.config.model import ModelConfig, component
from lit_algos.errors import ConfigError
from lit_algos.flops import estimate_flops
from lit_algos.model import param_counts
from lit_algos.registry import names, registry
from lit_algos.utils.typed import to_dict


def _options_for(cfg: ModelConfig, kind: str) -> dict[str, Any]:
    if kind == cfg.attention.kind:
        return {k: v for k, v in to_dict(cfg.attention).items() if k != "kind"}
    entry = registry("attention").entry(kind)
    fields = {f.name for f in dataclasses.fields(entry.options)}
    values: dict[str, Any] = {}
    if kind == "gqa":
        own = cfg.n_kv_head
        values["n_kv_head"] = own if 1 < own < cfg.n_head else (cfg.n_head // 2 if cfg.n_head % 2 == 0 else 1)
    elif kind == "sliding":
        values["window"] = max(1, cfg.block_size // 4)
    elif kind == "sparse":
        values.update(pattern="fixed", block=max(1, round(math.sqrt(cfg.block_size))), summary=1)
    elif kind != "mla":
        values.update(entry.example)
    for shared in ("backend", "qk_norm"):
        if shared in fields and hasattr(cfg.attention, shared):
            values[shared] = getattr(cfg.attention, shared)
    return values


def compare_attention_kinds(cfg: ModelConfig, bytes_per_number: int = 2) -> list[dict[str, Any]]:
    """A row per attention entry: kind, options, params, FLOPs/token (train), ideal FLOPs/token
    (sparse only), KV-cache bytes/token, note. Empty for a model without attention (LSTM)."""

    if not registry("mixer").get(cfg.mixer.kind).has_attention:
        return []
    rows = []
    for kind in names("attention"):
        options = _options_for(cfg, kind)
        try:
            variant = dataclasses.replace(cfg, attention=component("attention", kind, **options))
        except ConfigError as err:  # e.g. an entry that cannot fit this model's sizes
            rows.append({"kind": kind, "options": options, "error": str(err)})
            continue
        cls = registry("attention").get(kind)
        cache = getattr(cls, "kv_cache_per_token", None)
        ideal = None
        if hasattr(cls, "ideal_flops_per_token"):
            ideal = estimate_flops(variant, ideal=True).per_token_train
        rows.append(
            {
                "kind": kind,
                "options": {
                    k: v for k, v in to_dict(variant.attention).items() if k != "kind" and v is not None
                },
                "params": param_counts(variant)["total"],
                "flops_per_token_train": estimate_flops(variant).per_token_train,
                "ideal_flops_per_token_train": ideal,
                "kv_cache_bytes_per_token": (
                    None
                    if cache is None
                    else bytes_per_number * sum(cache(variant, i) for i in range(variant.n_layer))
                ),
                "note": _note(variant),
            }
        )
    return rows


def _note(cfg: ModelConfig) -> str:
    o = cfg.attention
    if o.kind == "sliding":
        return f"cache capped at {o.window} tokens"
    if o.kind == "sparse":
        return "FLOPs as executed (masked); ideal = attended pairs only"
    return ""
