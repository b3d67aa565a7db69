"""Directories of ready-made token shards, used in place: ``data.shards``, or the
``fineweb10b-gpt2`` preset, which downloads modded-nanogpt's GPT-2 FineWeb shards once.

Their manifest lives in ``<cache>/shards/``, keyed by the shard files' names, sizes and mtimes
(a shard edited since is prepared again, with every check). Nothing is written until the
shards, the token ids and the tokenizer all check out, and a failure leaves no manifest or
tokenizer behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from lit_algos.config.data import DataConfig
from lit_algos.data import hub
from lit_algos.data.corpora import slug
from lit_algos.data.prepared import FORMAT_VERSION, MANIFEST, PreparedDataset, load_prepared, tokenizer_cache
from lit_algos.data.shards import TokenStream, fingerprint_tokens
from lit_algos.data.tokenizers import load_tokenizer
from lit_algos.errors import ConfigError, DataError
from lit_algos.utils.io import atomic_write_json, check_writable_dir, undone_on_error

FINEWEB_REPO = "kjj0/fineweb10B-gpt2"
FINEWEB_DEFAULT_SHARDS = 9  # 900M train tokens: what the GPT-2 speedrun reads


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


def manifest_for(
    cfg: DataConfig, root: Path, train_files: list[Path], val_files: list[Path]
) -> tuple[dict, Path]:
    """(key, manifest path) of a shard set: the key names the files with their sizes and mtimes."""
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
    return key, hub.cache_root(cfg.cache_dir) / "shards" / f"{slug(root.name)}-{digest}.json"


def new_cache_paths(cfg: DataConfig) -> list[Path]:
    """The manifest a prepare of ``cfg.shards`` would write (empty when the shards are unusable)."""
    root = Path(cfg.shards).expanduser()
    if not root.is_dir() or (root / MANIFEST).is_file():
        return []
    train_files, val_files = _shard_files(root)
    return [manifest_for(cfg, root, train_files, val_files)[1]] if train_files and val_files else []


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
    key, manifest_path = manifest_for(cfg, root, train_files, val_files)
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
    if len(train) < 2:
        raise DataError(
            f"The train shards in {root} ({', '.join(p.name for p in train_files)}) hold {len(train)} tokens; "
            "training needs at least one sequence of them. Use shards with training tokens in them."
        )
    with undone_on_error(manifest_path, *tokenizer_cache(cfg)):
        return _use_shards(cfg, root, train, val, train_files, val_files, key, manifest_path, corpus, console)


def _use_shards(
    cfg, root, train, val, train_files, val_files, key, manifest_path, corpus, console
) -> PreparedDataset:
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
        # only the FineWeb download needs the hub client
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
