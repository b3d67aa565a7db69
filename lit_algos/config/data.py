"""Data config: which corpus, which tokenizer, how much validation data."""

from __future__ import annotations

from dataclasses import dataclass

from lit_algos.errors import ConfigError
from lit_algos.utils.typed import check_positive, check_range

TOKENIZER_HELP = (
    "Allowed: 'gpt2' (tiktoken), 'bpe:<vocab size>' with a vocab size >= 257 (trained with rustbpe on the "
    "corpus's train split; the size counts the end-of-text token), or 'file:<path>' to a saved tokenizer.json "
    "or a prepared dataset directory."
)


def parse_tokenizer_spec(spec: str, field: str = "tokenizer") -> tuple[str, int | str | None]:
    """('gpt2', None) | ('bpe', vocab_size) | ('file', path); ConfigError naming ``field`` otherwise."""
    if spec == "gpt2":
        return "gpt2", None
    if spec.startswith("bpe:"):
        size = spec[4:].replace("_", "")
        if not size.isdigit() or int(size) < 257:
            raise ConfigError(field, spec, TOKENIZER_HELP)
        return "bpe", int(size)
    if spec.startswith("file:") and len(spec) > 5:
        return "file", spec[5:]
    raise ConfigError(field, spec, TOKENIZER_HELP)


@dataclass
class DataConfig:
    corpus: str = "kjv"  # a named preset (kjv, fineweb-edu, openwebtext, tinystories, fineweb10b-gpt2), hf:<id>[:<config>], or local path(s)
    tokenizer: str = "bpe:4096"  # gpt2 | bpe:<vocab size> (trained with rustbpe on the train split) | file:<tokenizer.json>
    val_tokens: int = (
        65536  # size of the fixed validation set (target tokens), evaluated in full and in order
    )
    val_fraction: float = (
        0.1  # share of documents (chosen by a hash of their id) held out from training for validation
    )
    max_train_tokens: int | None = None  # cap on tokens prepared for training (null: the whole split)
    shards: str | None = (
        None  # a directory of ready-made .bin shards (e.g. FineWeb GPT-2 shards); skips preparation
    )
    cache_dir: str | None = None  # null: $LIT_ALGOS_CACHE or ~/.cache/lit_algos
    num_workers: int = 0
    text_field: str = "text"  # the text column of jsonl / parquet / Hugging Face corpora
    tokenizer_train_chars: int = 200_000_000  # cap on train-split characters used to train a bpe tokenizer
    tiktoken_cache_dir: str | None = (
        None  # where the gpt2 files live (null: $TIKTOKEN_CACHE_DIR, then <cache_dir>/tiktoken)
    )

    def __post_init__(self):
        if not self.corpus and not self.shards:
            raise ConfigError(
                "corpus", self.corpus, "Name a corpus (e.g. kjv) or set data.shards to a directory of shards."
            )
        parse_tokenizer_spec(self.tokenizer)
        check_positive("val_tokens", self.val_tokens)
        check_range("val_fraction", self.val_fraction, 0.0, 1.0)
        if self.val_fraction in (0.0, 1.0):
            raise ConfigError(
                "val_fraction", self.val_fraction, "Allowed: a number strictly between 0 and 1."
            )
        check_positive("max_train_tokens", self.max_train_tokens, allow_none=True)
        check_positive("num_workers", self.num_workers, allow_zero=True)
        check_positive("tokenizer_train_chars", self.tokenizer_train_chars)
