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
``<cache>/shards/``.
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lit_algos.config.data import DataConfig
from lit_algos.data import hub
from lit_algos.data.corpora import Corpus, Document, is_val, open_corpus, slug, split_documents
from lit_algos.data.shards import TokenStream, fingerprint_tokens, version_for_vocab, write_shard
from lit_algos.data.tokenizers import Tokenizer, load_tokenizer
from lit_algos.errors import ConfigError, DataError
from lit_algos.utils.io import atomic_write_json, check_writable_dir, read_json

FORMAT_VERSION = 1
SHARD_TOKENS = 100_000_000
MANIFEST = "manifest.json"
FINEWEB_REPO = "kjj0/fineweb10B-gpt2"
FINEWEB_DEFAULT_SHARDS = 9  # 900M train tokens: what the GPT-2 speedrun reads


@dataclass
class PreparedDataset:
    """A dataset ready to train on. ``val_tokens`` counts targets: the val stream holds val_tokens + 1 tokens."""

    root: Path
    train_files: list[Path]
    val_files: list[Path]
    vocab_size: int
    eot_token: int
    tokenizer: str
    corpus: str
    train_tokens: int
    val_tokens: int
    val_bytes: int
    corpus_fingerprint: str
    tokenizer_fingerprint: str
    val_fingerprint: str
    manifest: dict = field(default_factory=dict, repr=False)

    @property
    def bytes_per_token(self) -> float:
        """Mean UTF-8 bytes per validation target: bpb = loss_nats / (ln 2 * bytes_per_token)."""
        return self.val_bytes / self.val_tokens

    def record_dict(self) -> dict:
        return {
            "corpus": self.corpus,
            "tokenizer": self.tokenizer,
            "corpus_fingerprint": self.corpus_fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "val_fingerprint": self.val_fingerprint,
            "val_tokens": self.val_tokens,
            "val_bytes": self.val_bytes,
            "train_tokens": self.train_tokens,
        }

    @classmethod
    def from_manifest(cls, manifest: dict, root: Path) -> PreparedDataset:
        root = Path(manifest.get("shards_root") or root)
        return cls(
            root=root,
            train_files=[root / f for f in manifest["train_files"]],
            val_files=[root / f for f in manifest["val_files"]],
            **{
                k: manifest[k]
                for k in (
                    "vocab_size",
                    "eot_token",
                    "tokenizer",
                    "corpus",
                    "train_tokens",
                    "val_tokens",
                    "val_bytes",
                    "corpus_fingerprint",
                    "tokenizer_fingerprint",
                    "val_fingerprint",
                )
            },
            manifest=manifest,
        )

    def verify(self) -> PreparedDataset:
        """Validate every shard header and the validation fingerprint; DataError when anything is off."""
        train = TokenStream(self.train_files)
        if len(train) < self.train_tokens:
            raise DataError(
                f"Prepared dataset {self.root} is incomplete: {len(train)} train tokens, manifest says {self.train_tokens}."
            )
        top = self.manifest.get("train_max_token")
        if isinstance(top, int) and top >= self.vocab_size:
            raise DataError(
                f"Prepared dataset {self.root} holds train token id {top}, outside its vocabulary of "
                f"{self.vocab_size} tokens; its shards do not match its tokenizer. Prepare it again."
            )
        val = TokenStream(self.val_files, limit=self.val_tokens + 1)
        if len(val) != self.val_tokens + 1 or val.fingerprint() != self.val_fingerprint:
            raise DataError(
                f"Prepared dataset {self.root} is corrupt: its validation tokens no longer match the recorded "
                f"fingerprint {self.val_fingerprint}. Delete the directory and prepare again."
            )
        return self


def load_prepared(path: str | os.PathLike) -> PreparedDataset:
    """A prepared dataset from its directory (or its manifest.json), verified."""
    path = Path(path)
    manifest_path = path if path.is_file() else path / MANIFEST
    try:
        manifest = read_json(manifest_path)
    except (OSError, ValueError) as err:
        raise DataError(f"{manifest_path} is not a readable dataset manifest ({err}).") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{manifest_path} has data format {manifest.get('format_version')}, expected {FORMAT_VERSION}; prepare again."
        )
    return PreparedDataset.from_manifest(manifest, manifest_path.parent).verify()


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
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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
        "corpus_stats": {
            "documents_read": stats["documents"],
            "bytes_read": stats["bytes"],
            "train_documents": stats["train_documents"],
            "val_documents": val_docs,
        },
        "key": dataset_key(cfg, corpus),
        "config": dataclasses.asdict(cfg),
    }


# ----------------------------------------------------------------------------- ready-made shards


def _shard_files(root: Path) -> tuple[list[Path], list[Path]]:
    bins = sorted(p for p in root.glob("*.bin") if p.is_file())
    return [p for p in bins if "train" in p.name], [p for p in bins if "val" in p.name]


def _max_token(stream: TokenStream, limit: int | None) -> int:
    """The largest token id in the first ``limit`` tokens (all when None): a vectorised pass, once per prepare."""
    stream = TokenStream(stream.files, limit=limit) if limit else stream
    return stream.max_token()


def _sampled_fingerprint(stream: TokenStream, sample: int = 1 << 20) -> str:
    """Names, counts and the first/last ``sample`` tokens of each shard: cheap enough for 10B tokens."""
    h = hashlib.sha256()
    for head in stream.headers:
        h.update(f"{head.path.name}:{head.num_tokens}\0".encode())
        for start in sorted({0, max(0, head.num_tokens - sample)}):
            part = TokenStream([head.path]).read(start, min(sample, head.num_tokens - start))
            h.update(part.astype("<u4").tobytes())
    return h.hexdigest()[:16]


def prepare_from_shards(
    cfg: DataConfig,
    root: Path,
    *,
    train_files: list[Path] | None = None,
    val_files: list[Path] | None = None,
    corpus: str | None = None,
    console=None,
) -> PreparedDataset:
    """Use a directory of shards as they are (files ``*train*.bin`` / ``*val*.bin``, or a prepared dataset dir)."""
    if not root.is_dir():
        raise DataError(f"data.shards={str(root)!r} is not a directory of token shards.")
    if (root / MANIFEST).is_file() and train_files is None:
        return load_prepared(root)
    if train_files is None or val_files is None:
        train_files, val_files = _shard_files(root)
    if not train_files or not val_files:
        raise DataError(
            f"The shards directory {root} needs train and validation shards (files named *train*.bin and *val*.bin, "
            f"e.g. fineweb_train_000001.bin / fineweb_val_000000.bin); found {len(train_files)} and {len(val_files)}."
        )
    files = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in (*train_files, *val_files)]
    key = {
        "format_version": FORMAT_VERSION,
        "root": str(root.resolve()),
        "files": files,
        "tokenizer": cfg.tokenizer,
        "val_tokens": cfg.val_tokens,
        "max_train_tokens": cfg.max_train_tokens,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    manifest_path = hub.cache_root(cfg.cache_dir) / "shards" / f"{slug(root.name)}-{digest}.json"
    if manifest_path.is_file():
        return load_prepared(manifest_path)

    train, val = (
        TokenStream(train_files),
        TokenStream(val_files, limit=cfg.val_tokens + 1),
    )  # validates headers
    if len(val) < cfg.val_tokens + 1:
        raise DataError(
            f"The validation shards in {root} hold {len(val)} tokens; data.val_tokens={cfg.val_tokens} needs {cfg.val_tokens + 1}."
        )
    tok = load_tokenizer(cfg.tokenizer, corpus=cfg, console=console)
    val_ids = val.read(0, len(val))
    if int(val_ids.max()) >= tok.n_vocab:
        raise DataError(
            f"The validation shards in {root} hold token id {int(val_ids.max())}, outside the vocabulary of "
            f"{cfg.tokenizer!r} ({tok.n_vocab} tokens): data.tokenizer does not match these shards."
        )
    train_max = _max_token(train, cfg.max_train_tokens)
    if train_max >= tok.n_vocab:
        raise DataError(
            f"The train shards in {root} hold token id {train_max}, outside the vocabulary of {cfg.tokenizer!r} "
            f"({tok.n_vocab} tokens, ids 0..{tok.n_vocab - 1}): data.tokenizer does not match these shards, or a "
            "shard is corrupt. Use the tokenizer the shards were made with, or re-make the shards."
        )
    rel = [os.path.relpath(p, root) for p in train_files], [os.path.relpath(p, root) for p in val_files]
    manifest = {
        "format_version": FORMAT_VERSION,
        "corpus": corpus or f"shards:{root.name}",
        "tokenizer": cfg.tokenizer,
        "vocab_size": tok.n_vocab,
        "eot_token": tok.eot_token,
        "shards_root": str(root.resolve()),
        "train_tokens": int(min(len(train), cfg.max_train_tokens or len(train))),
        "val_tokens": cfg.val_tokens,
        "val_bytes": tok.text_bytes(val_ids[1:]),
        "corpus_fingerprint": _sampled_fingerprint(TokenStream([*train_files, *val_files])),
        "tokenizer_fingerprint": tok.fingerprint,
        "val_fingerprint": fingerprint_tokens([val_ids]),
        "train_max_token": train_max,  # checked against the vocabulary whenever the manifest is loaded
        "train_files": rel[0],
        "val_files": rel[1],
        "key": key,
    }
    check_writable_dir(manifest_path.parent, "the data cache (data.cache_dir or $LIT_ALGOS_CACHE)")
    atomic_write_json(manifest_path, manifest)
    if console is not None:
        console.print(f"using {len(train_files)} train and {len(val_files)} val shard(s) in {root}")
    return load_prepared(manifest_path)


def prepare_fineweb10b(cfg: DataConfig, *, console=None) -> PreparedDataset:
    """Download (once) and use modded-nanogpt's GPT-2 FineWeb shards: 100M tokens each, the first N of 103."""
    if cfg.tokenizer != "gpt2":
        raise ConfigError(
            "data.tokenizer",
            cfg.tokenizer,
            "The fineweb10b-gpt2 shards are GPT-2 tokens: use data.tokenizer=gpt2.",
        )
    n = min(103, math.ceil(cfg.max_train_tokens / 1e8)) if cfg.max_train_tokens else FINEWEB_DEFAULT_SHARDS
    root = hub.cache_root(cfg.cache_dir) / "fineweb10B"
    names = ["fineweb_val_000000.bin"] + [f"fineweb_train_{i:06d}.bin" for i in range(1, n + 1)]
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        if not hub.hub_reachable():
            raise DataError(
                f"Corpus 'fineweb10b-gpt2' needs {len(missing)} shard(s) from the Hugging Face dataset {FINEWEB_REPO}, "
                f"but the hub at {hub.hf_host()} cannot be reached (no network, or HF_HUB_OFFLINE is set). Remedies: "
                f"copy the shards (fineweb_val_000000.bin, fineweb_train_000001.bin, ...) into {root} or any directory "
                "and set data.shards to it, or use the bundled offline corpus (--corpus kjv)."
            )
        from huggingface_hub import hf_hub_download

        for name in missing:
            if console is not None:
                console.print(f"downloading {FINEWEB_REPO}/{name} ...")
            hf_hub_download(repo_id=FINEWEB_REPO, filename=name, repo_type="dataset", local_dir=str(root))
    return prepare_from_shards(
        cfg,
        root,
        train_files=[root / m for m in names[1:]],
        val_files=[root / names[0]],
        corpus="fineweb10b-gpt2",
        console=console,
    )
