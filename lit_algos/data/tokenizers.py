"""Tokenizers: GPT-2 through tiktoken, or a BPE trained with rustbpe and served by tiktoken.

Every tokenizer is a ``Tokenizer``: a ``tiktoken.Encoding`` plus its spec and a fingerprint
(sha256 prefix of its pattern, merge ranks and special tokens). Documents are encoded as
``[<|endoftext|>] + tokens(text)``, so the end-of-text token separates documents in a stream.

Trained BPEs are saved as JSON in the data cache and reloaded from there; we build the
``tiktoken.Encoding`` from the saved ranks ourselves and never rely on tiktoken's own download
cache for them. GPT-2's two files (``vocab.bpe``, ``encoder.json``) are looked up, in order, in
``data.tiktoken_cache_dir``, $TIKTOKEN_CACHE_DIR, $DATA_GYM_CACHE_DIR, ``<cache>/tiktoken`` and
tiktoken's default temp-dir cache, under their plain names or tiktoken's sha1-of-URL names; when
absent they are downloaded (a short reachability check first, so offline fails at once).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import tiktoken

from lit_algos.config.data import DataConfig, parse_tokenizer_spec
from lit_algos.data import hub
from lit_algos.data.corpora import corpus_identity, is_hash_split, open_corpus, slug, split_documents
from lit_algos.errors import DataError
from lit_algos.utils.io import atomic_write_bytes, atomic_write_json, read_json

EOT = "<|endoftext|>"
BPE_FORMAT = "lit_algos-bpe/1"
GPT2_URLS = {
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}
GPT2_SHA256 = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}


@dataclass
class Tokenizer:
    """A tiktoken encoding with its spec and fingerprint. ``encoding`` is the plain ``tiktoken.Encoding``."""

    spec: str
    encoding: tiktoken.Encoding
    fingerprint: str

    @property
    def eot_token(self) -> int:
        return self.encoding.eot_token

    @property
    def n_vocab(self) -> int:
        """Vocabulary size including the end-of-text token (max token id + 1)."""
        return self.encoding.n_vocab

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)  # special-token text in documents is plain text

    def encode_batch(self, texts: list[str], num_threads: int = 4) -> list[list[int]]:
        return self.encoding.encode_ordinary_batch(texts, num_threads=num_threads)

    def encode_document(self, text: str) -> list[int]:
        return [self.eot_token, *self.encode(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.encoding.decode([int(i) for i in ids])

    def text_bytes(self, ids: np.ndarray | list[int]) -> int:
        """UTF-8 bytes of ``ids``, special tokens excluded: the denominator of bits per byte."""
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[ids != self.eot_token]
        total = 0
        for start in range(0, len(ids), 1 << 20):
            total += len(self.encoding.decode_bytes(ids[start : start + (1 << 20)].tolist()))
        return total

    def save(self, path: str | os.PathLike, meta: dict | None = None) -> Path:
        ranks = self.encoding._mergeable_ranks  # tiktoken exposes no public getter for the ranks
        payload = {
            "format": BPE_FORMAT,
            "spec": self.spec,
            "fingerprint": self.fingerprint,
            "pattern": self.encoding._pat_str,
            "special_tokens": dict(self.encoding._special_tokens),
            "mergeable_ranks": [
                base64.b64encode(t).decode("ascii") for t, _ in sorted(ranks.items(), key=lambda kv: kv[1])
            ],
            "meta": meta or {},
        }
        return atomic_write_json(path, payload)


def tokenizer_fingerprint(pattern: str, ranks: dict[bytes, int], special: dict[str, int]) -> str:
    h = hashlib.sha256()
    h.update(pattern.encode())
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        h.update(rank.to_bytes(4, "little") + len(token).to_bytes(2, "little") + token)
    h.update(json.dumps(sorted(special.items())).encode())
    return h.hexdigest()[:16]


def from_ranks(
    spec: str, pattern: str, ranks: dict[bytes, int], special: dict[str, int] | None = None
) -> Tokenizer:
    """A Tokenizer from merge ranks; the end-of-text token takes the id after the last rank by default."""
    special = special or {EOT: len(ranks)}
    fp = tokenizer_fingerprint(pattern, ranks, special)
    enc = tiktoken.Encoding(
        f"lit_algos-{spec}-{fp[:8]}", pat_str=pattern, mergeable_ranks=ranks, special_tokens=special
    )
    return Tokenizer(spec, enc, fp)


def train_bpe(texts: Iterable[str], vocab_size: int, *, spec: str | None = None) -> Tokenizer:
    """Train a byte-level BPE with rustbpe (GPT-4 split pattern) on ``texts``.

    ``vocab_size`` counts the end-of-text token: rustbpe learns ``vocab_size - 1`` tokens (256 bytes
    plus merges) and EOT is the last id. Text too small to learn every merge gives a smaller vocabulary.
    """
    # the native BPE trainer, only when a tokenizer is trained
    import rustbpe

    if vocab_size < 257:
        raise DataError(
            f"A BPE vocabulary needs at least 257 tokens (256 bytes + end-of-text), got {vocab_size}."
        )
    bpe = rustbpe.Tokenizer()
    bpe.train_from_iterator(iter(texts), vocab_size - 1)
    ranks = {bytes(token): int(rank) for token, rank in bpe.get_mergeable_ranks()}
    return from_ranks(spec or f"bpe:{vocab_size}", bpe.get_pattern(), ranks)


def load_tokenizer_file(path: str | os.PathLike) -> Tokenizer:
    """Load a tokenizer saved by ``Tokenizer.save`` (or the tokenizer.json of a prepared dataset dir)."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    try:
        data = read_json(path)
    except (OSError, ValueError) as err:
        raise DataError(
            f"Cannot read tokenizer file {path}: {err}. It must be the JSON file lit_algos wrote: delete it and "
            "prepare again."
        ) from None
    if not isinstance(data, dict) or data.get("format") != BPE_FORMAT:
        raise DataError(f"Tokenizer file {path} is not a {BPE_FORMAT} file; delete it and prepare again.")
    try:
        ranks = {base64.b64decode(t, validate=True): i for i, t in enumerate(data["mergeable_ranks"])}
        tok = from_ranks(
            data["spec"], data["pattern"], ranks, {k: int(v) for k, v in data["special_tokens"].items()}
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:  # binascii.Error is a ValueError
        raise DataError(
            f"Tokenizer file {path} is corrupt ({type(err).__name__}: {err}): it must hold the format, spec, "
            "pattern, special_tokens and base64 mergeable_ranks that lit_algos wrote. Delete it and prepare again."
        ) from None
    if tok.fingerprint != data.get("fingerprint"):
        raise DataError(
            f"Tokenizer file {path} is corrupt: its content hashes to {tok.fingerprint}, not the recorded "
            f"{data.get('fingerprint')}. Delete it and prepare again."
        )
    return tok


# ----------------------------------------------------------------------------- GPT-2


def _gpt2_dirs(explicit: str | None, cache_dir: str | None) -> list[Path]:
    dirs = [explicit, os.environ.get("TIKTOKEN_CACHE_DIR"), os.environ.get("DATA_GYM_CACHE_DIR")]
    dirs += [
        str(hub.cache_root(cache_dir) / "tiktoken"),
        os.path.join(tempfile.gettempdir(), "data-gym-cache"),
    ]
    return [Path(d).expanduser() for d in dirs if d]


def _gpt2_file(folder: Path, name: str) -> Path | None:
    """The file under its plain name or tiktoken's cache name (sha1 of the URL), if its hash is right."""
    for candidate in (folder / name, folder / hashlib.sha1(GPT2_URLS[name].encode()).hexdigest()):
        if candidate.is_file() and hashlib.sha256(candidate.read_bytes()).hexdigest() == GPT2_SHA256[name]:
            return candidate
    return None


def _download_gpt2(folder: Path) -> None:
    for name, url in GPT2_URLS.items():
        if _gpt2_file(folder, name):
            continue
        with urllib.request.urlopen(url, timeout=60) as resp:
            data = resp.read()
        if hashlib.sha256(data).hexdigest() != GPT2_SHA256[name]:
            raise DataError(f"The download of {url} is corrupt (sha256 mismatch); try again.")
        atomic_write_bytes(folder / name, data)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def load_gpt2(tiktoken_cache_dir: str | None = None, cache_dir: str | None = None) -> Tokenizer:
    # tiktoken's GPT-2 loading internals, only for the gpt2 tokenizer
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    dirs = _gpt2_dirs(tiktoken_cache_dir, cache_dir)
    found = next((d for d in dirs if all(_gpt2_file(d, n) for n in GPT2_URLS)), None)
    if found is None:
        host = urlparse(GPT2_URLS["vocab.bpe"]).hostname or ""
        if not hub.reachable(host):
            raise DataError(
                f"The gpt2 tokenizer needs its files vocab.bpe and encoder.json, which are not in any cache "
                f"({', '.join(map(str, dirs))}) and cannot be downloaded: {host} is unreachable. Remedies: copy the "
                f"two files (from {GPT2_URLS['vocab.bpe'].rsplit('/', 1)[0]}/) into a directory and set "
                "TIKTOKEN_CACHE_DIR or data.tiktoken_cache_dir to it, or use a trained tokenizer (--tokenizer bpe:4096)."
            )
        found = dirs[0]
        _download_gpt2(found)
    paths = {n: str(_gpt2_file(found, n)) for n in GPT2_URLS}
    with _env("TIKTOKEN_CACHE_DIR", ""):  # "" turns tiktoken's own file cache off: read our files directly
        ranks = data_gym_to_mergeable_bpe_ranks(paths["vocab.bpe"], paths["encoder.json"])
    return from_ranks("gpt2", r50k_pat_str, ranks, {EOT: 50256})


# ----------------------------------------------------------------------------- entry point


def bpe_cache_path(cfg: DataConfig, vocab_size: int) -> Path:
    """Where the BPE trained for ``cfg``'s corpus and train split is cached."""

    corpus = open_corpus(cfg)
    key = {
        "format": BPE_FORMAT,
        "corpus": corpus_identity(corpus),
        "val_fraction": cfg.val_fraction if is_hash_split(corpus) else None,  # it defines the train split
        "vocab_size": vocab_size,
        "train_chars": cfg.tokenizer_train_chars,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return hub.cache_root(cfg.cache_dir) / "tokenizers" / f"{slug(corpus.name)}-bpe{vocab_size}-{digest}.json"


def _train_for_corpus(cfg: DataConfig, vocab_size: int, console=None) -> Tokenizer:
    path = bpe_cache_path(cfg, vocab_size)
    if path.is_file():
        return load_tokenizer_file(path)
    corpus = open_corpus(cfg)
    corpus.check_available()
    if console is not None:
        console.print(
            f"training a BPE tokenizer (vocab {vocab_size}) on the train split of {corpus.name!r} ..."
        )
    chars = {"n": 0}

    def texts() -> Iterator[str]:
        for doc in split_documents(corpus, "train", cfg.val_fraction):
            if chars["n"] >= cfg.tokenizer_train_chars:
                return
            text = doc.text[: cfg.tokenizer_train_chars - chars["n"]]
            chars["n"] += len(text)
            yield text

    tok = train_bpe(texts(), vocab_size)
    if chars["n"] == 0:
        raise DataError(f"Corpus {corpus.name!r} has no training text to train a tokenizer on.")
    tok.save(path, meta={"corpus": corpus.name, "train_chars": chars["n"], "requested_vocab": vocab_size})
    return tok


def load_tokenizer(
    spec: str,
    cache_dir: str | os.PathLike | None = None,
    corpus: str | DataConfig | None = None,
    *,
    tiktoken_cache_dir: str | None = None,
    console=None,
) -> Tokenizer:
    """The tokenizer named by ``spec``: 'gpt2', 'bpe:<vocab>' or 'file:<path>'.

    For 'bpe:<vocab>' the BPE of ``corpus`` (a name, or a DataConfig whose val_fraction fixes the train
    split; default the bundled 'kjv') is loaded from the cache, or trained on that corpus's train split
    and cached. A DataConfig's own cache_dir and tiktoken_cache_dir are used unless given here.
    """
    kind, arg = parse_tokenizer_spec(spec, field="data.tokenizer")
    cfg = corpus if isinstance(corpus, DataConfig) else DataConfig(corpus=corpus or "kjv", tokenizer=spec)
    cache_dir = str(cache_dir) if cache_dir is not None else cfg.cache_dir
    if kind == "gpt2":
        return load_gpt2(tiktoken_cache_dir or cfg.tiktoken_cache_dir, cache_dir)
    if kind == "file":
        return load_tokenizer_file(str(arg))
    if cache_dir != cfg.cache_dir:
        cfg = dataclasses.replace(cfg, cache_dir=cache_dir)
    return _train_for_corpus(cfg, int(arg), console)
