"""Data: named corpora, tokenizers, token shards, the fixed validation set and the DataModule.

``prepare_dataset(cfg.data)`` tokenizes a corpus once into llm.c-layout shards (cached, with
fingerprints); ``TokenDataModule`` feeds them to Lightning, deterministically and DDP-aware.
Names are imported lazily so ``lit-algos data ...`` starts without loading Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "IGNORE_INDEX": "datamodule",
    "TokenDataModule": "datamodule",
    "batch_plan": "layout",
    "PreparedDataset": "prepared",
    "load_prepared": "prepared",
    "prepare_dataset": "prepare",
    "ShardHeader": "shards",
    "TokenStream": "shards",
    "load_tokens": "shards",
    "read_header": "shards",
    "write_shard": "shards",
    "Tokenizer": "tokenizers",
    "load_tokenizer": "tokenizers",
    "train_bpe": "tokenizers",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lit_algos.data.datamodule import IGNORE_INDEX, TokenDataModule  # noqa: F401
    from lit_algos.data.layout import batch_plan  # noqa: F401
    from lit_algos.data.prepare import prepare_dataset  # noqa: F401
    from lit_algos.data.prepared import PreparedDataset, load_prepared  # noqa: F401
    from lit_algos.data.shards import ShardHeader, TokenStream, load_tokens, read_header, write_shard  # noqa: F401
    from lit_algos.data.tokenizers import Tokenizer, load_tokenizer, train_bpe  # noqa: F401


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lit_algos.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lit_algos.data.{_EXPORTS[name]}"), name)
