"""Prepare a dataset once: tokenize a corpus into shards with a fixed validation set and a manifest.

Layout of a prepared dataset, ``<cache>/datasets/<corpus>-<tokenizer>-<key>/``:

    manifest.json        fingerprints, token and byte counts, file list (written last)
    tokenizer.json       the tokenizer (trained BPEs; absent for gpt2)
    val_000000.bin       the validation set: val_tokens + 1 tokens (targets are tokens 1..val_tokens)
    train_000000.bin ... the train split, 100M tokens per shard

The directory is built under a temporary name and renamed into place, so concurrent prepares
of the same dataset cannot corrupt the cache: the first rename wins, the others use its result.
The key hashes everything that changes the tokens (corpus identity, tokenizer, val_tokens,
val_fraction, max_train_tokens, format version), so a second prepare is a manifest read.

Directories of ready-made shards (``data.shards``, or the ``fineweb10b-gpt2`` preset, which
downloads modded-nanogpt's GPT-2 FineWeb shards) are used in place; their manifest lives in
``<cache>/shards/`` (``lit_algos.data.shard_sets``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lit_algos.config.data import DataConfig
from lit_algos.data import hub
from lit_algos.data.corpora import Corpus, Document, is_val, open_corpus, slug, split_documents
from lit_algos.data.prepared import (  # noqa: F401  (PreparedDataset, load_prepared: public here too)
    FORMAT_VERSION,
    MANIFEST,
    PreparedDataset,
    load_prepared,
    shard_stat,
    tokenizer_cache,
)
from lit_algos.data.shard_sets import new_cache_paths as shard_paths
from lit_algos.data.shard_sets import prepare_fineweb10b, prepare_from_shards
from lit_algos.data.shards import TokenStream, fingerprint_tokens, version_for_vocab, write_shard
from lit_algos.data.tokenizers import (
    Tokenizer,
    load_tokenizer,
)
from lit_algos.errors import DataError
from lit_algos.utils.io import atomic_write_json, check_writable_dir, undone_on_error

SHARD_TOKENS = 100_000_000


def dataset_key(cfg: DataConfig, corpus: Corpus) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "corpus": corpus.identity(),
        "tokenizer": cfg.tokenizer,
        "tokenizer_train_chars": cfg.tokenizer_train_chars if cfg.tokenizer.startswith("bpe:") else None,
        "val_tokens": cfg.val_tokens,
        "val_fraction": cfg.val_fraction if corpus.val_split is None else None,
        "max_train_tokens": cfg.max_train_tokens,
    }


def dataset_dir(cfg: DataConfig, corpus: Corpus) -> Path:
    digest = hashlib.sha256(json.dumps(dataset_key(cfg, corpus), sort_keys=True).encode()).hexdigest()[:12]
    name = f"{slug(Path(corpus.name).name)}-{slug(cfg.tokenizer)}-{digest}"
    return hub.cache_root(cfg.cache_dir) / "datasets" / name


def prepare_dataset(cfg: DataConfig, *, console=None) -> PreparedDataset:
    """Tokenize ``cfg``'s corpus into shards (or reuse the cached result) and return the dataset."""
    if cfg.shards:
        return prepare_from_shards(cfg, Path(cfg.shards).expanduser(), console=console)
    if cfg.corpus == "fineweb10b-gpt2":
        return prepare_fineweb10b(cfg, console=console)
    corpus = open_corpus(cfg)
    root = dataset_dir(cfg, corpus)
    if (root / MANIFEST).is_file():
        return load_prepared(root)
    corpus.check_available()  # fails at once when offline, before any work
    # A corpus that cannot be prepared (e.g. too few validation tokens) leaves no tokenizer or cache folder.
    with undone_on_error(root.parent, *tokenizer_cache(cfg)):
        return _prepare(cfg, corpus, root, console)


def new_cache_paths(cfg: DataConfig) -> tuple[list[Path], list[Path]]:
    """(files, folders) a prepare of ``cfg`` would add to the cache, so that a command refused after
    preparing (e.g. data too short for the model's block) can take them back: the trained tokenizer,
    the shards manifest, the dataset folder. Downloads (fineweb) are kept."""
    if cfg.corpus == "fineweb10b-gpt2" and not cfg.shards:
        return [], []
    if cfg.shards:
        return shard_paths(cfg) + tokenizer_cache(cfg), []
    return tokenizer_cache(cfg), [dataset_dir(cfg, open_corpus(cfg))]


def _prepare(cfg: DataConfig, corpus: Corpus, root: Path, console) -> PreparedDataset:
    check_writable_dir(root.parent, "the data cache (data.cache_dir or $LIT_ALGOS_CACHE)")
    start = time.perf_counter()
    tok = load_tokenizer(cfg.tokenizer, corpus=cfg, console=console)
    tmp = root.parent / f".tmp-{root.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        manifest = _build(cfg, corpus, tok, tmp, console)
        manifest["seconds_to_prepare"] = round(time.perf_counter() - start, 3)
        atomic_write_json(tmp / MANIFEST, manifest)  # written last: its presence means complete
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / MANIFEST).is_file():  # not a concurrent prepare that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_prepared(root)


def _tokenized(
    docs: Iterator[Document], tok: Tokenizer, batch: int = 256
) -> Iterator[tuple[Document, np.ndarray]]:
    """(document, [EOT] + tokens) in order, encoded in parallel batches."""
    buf: list[Document] = []

    def flush():
        for doc, ids in zip(buf, tok.encode_batch([d.text for d in buf])):
            yield doc, np.array([tok.eot_token, *ids], dtype=np.uint32)
        buf.clear()

    for doc in docs:
        buf.append(doc)
        if len(buf) >= batch:
            yield from flush()
    yield from flush()


def _progress(console, total: float):
    """A transient rich progress bar over train tokens (a no-op without a console)."""
    if console is None:
        return contextlib.nullcontext(), lambda n: None

    columns = [TextColumn("tokenizing the train split"), TextColumn("{task.completed:,.0f} tokens")]
    if math.isfinite(total):
        columns.insert(1, BarColumn())
    bar = Progress(*columns, TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task("train", total=total if math.isfinite(total) else None)
    return bar, lambda n: bar.advance(task, n)


def _build(cfg: DataConfig, corpus: Corpus, tok: Tokenizer, out: Path, console) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    version = version_for_vocab(tok.n_vocab)
    say = console.print if console is not None else (lambda *a, **k: None)
    corpus_hash = hashlib.sha256()

    # Validation: the first val_tokens + 1 tokens of the val-side documents, in corpus order.
    need = cfg.val_tokens + 1
    parts, have, val_docs = [], 0, 0
    for doc, ids in _tokenized(split_documents(corpus, "val", cfg.val_fraction), tok, batch=64):
        parts.append(ids[: need - have])
        have, val_docs = have + len(parts[-1]), val_docs + 1
        if corpus.val_split is not None:
            corpus_hash.update(f"{doc.id}\0{doc.text}\0".encode())
        if have >= need:
            break
    if have < need:
        what = (
            f"its {corpus.val_split!r} split"
            if corpus.val_split
            else f"data.val_fraction={cfg.val_fraction} of its documents"
        )
        raise DataError(
            f"Corpus {corpus.name!r} yields only {max(have - 1, 0)} validation tokens from {what}, fewer than "
            f"data.val_tokens={cfg.val_tokens}. Lower data.val_tokens or raise data.val_fraction."
        )
    val = np.concatenate(parts)
    write_shard(out / "val_000000.bin", val, version)
    val_bytes = tok.text_bytes(val[1:])  # bytes of exactly the target tokens (token 0 is EOT, 0 bytes)
    say(f"validation: {cfg.val_tokens:,} tokens, {val_bytes:,} bytes from {val_docs} documents")

    # Train: every train-side document until max_train_tokens; the corpus hash covers every document read.
    cap = cfg.max_train_tokens or math.inf
    train_files, parts, buffered, total = [], [], 0, 0
    stats = {"documents": 0, "bytes": 0, "train_documents": 0}

    def read_all() -> Iterator[Document]:
        for doc in corpus.read("train"):
            corpus_hash.update(f"{doc.id}\0{doc.text}\0".encode())
            stats["documents"] += 1
            stats["bytes"] += len(doc.text.encode("utf-8"))
            if corpus.val_split is not None or not is_val(doc.id, cfg.val_fraction):
                yield doc

    progress, advance = _progress(console, cap)
    with progress:
        for _, ids in _tokenized(read_all(), tok):
            take = ids[: int(min(len(ids), cap - total))]
            parts.append(take)
            buffered, total = buffered + len(take), total + len(take)
            stats["train_documents"] += 1
            advance(len(take))
            while buffered >= SHARD_TOKENS or (total >= cap and buffered):
                flat = np.concatenate(parts)
                name = f"train_{len(train_files):06d}.bin"
                write_shard(out / name, flat[:SHARD_TOKENS], version)
                train_files.append(name)
                parts, buffered = [flat[SHARD_TOKENS:]], len(flat) - min(len(flat), SHARD_TOKENS)
            if total >= cap:
                break
    if buffered or not train_files:
        name = f"train_{len(train_files):06d}.bin"
        write_shard(out / name, np.concatenate(parts) if parts else np.zeros(0, np.uint32), version)
        train_files.append(name)
    if total < 2:
        raise DataError(f"Corpus {corpus.name!r} has no training text after the validation split.")
    say(f"train: {total:,} tokens from {stats['train_documents']:,} documents in {len(train_files)} shard(s)")

    if tok.spec != "gpt2":
        tok.save(out / "tokenizer.json")
    train_stream = TokenStream([out / f for f in train_files])
    return {
        "format_version": FORMAT_VERSION,
        "corpus": cfg.corpus,
        "tokenizer": cfg.tokenizer,
        "vocab_size": tok.n_vocab,
        "eot_token": tok.eot_token,
        "shard_version": version,
        "train_tokens": int(total),
        "val_tokens": cfg.val_tokens,
        "val_bytes": int(val_bytes),
        "corpus_fingerprint": corpus_hash.hexdigest()[:16],
        "tokenizer_fingerprint": tok.fingerprint,
        "val_fingerprint": fingerprint_tokens([val]),
        "train_files": train_files,
        "val_files": ["val_000000.bin"],
        # checked on every load: a shard edited since (size or mtime) is scanned again (verify)
        "train_max_token": train_stream.max_token(),
        "files": {f: shard_stat(out / f) for f in train_files},
        "corpus_stats": {
            "documents_read": stats["documents"],
            "bytes_read": stats["bytes"],
            "train_documents": stats["train_documents"],
            "val_documents": val_docs,
        },
        "key": dataset_key(cfg, corpus),
        "config": dataclasses.asdict(cfg),
    }
