"""Data config: which corpus, which tokenizer, how much validation data."""

from __future__ import annotations

from dataclasses import dataclass

from lit_algos.config.base import check_positive


@dataclass
class DataConfig:
    corpus: str = "kjv"  # a named preset (kjv, fineweb-edu, openwebtext, tinystories), hf:<id>, or local path(s)
    tokenizer: str = "bpe:4096"  # gpt2 | bpe:<vocab size> (trained with rustbpe on the train split)
    val_tokens: int = 65536  # size of the fixed validation set, evaluated in full and in order
    max_train_tokens: int | None = None  # cap on tokens prepared for training (null: the whole split)
    shards: str | None = None  # a directory of ready-made .bin shards (e.g. FineWeb GPT-2 shards); skips preparation
    cache_dir: str | None = None  # null: $LIT_ALGOS_CACHE or ~/.cache/lit_algos
    num_workers: int = 0

    def __post_init__(self):
        check_positive("val_tokens", self.val_tokens)
        check_positive("max_train_tokens", self.max_train_tokens, allow_none=True)
        check_positive("num_workers", self.num_workers, allow_zero=True)
