"""A prepared dataset on disk: its manifest, its verification, and where a trained tokenizer is
cached. Shared by ``prepare`` (datasets tokenized here) and ``shard_sets`` (ready-made shards).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lit_algos.config.data import DataConfig
from lit_algos.data.shards import TokenStream
from lit_algos.data.tokenizers import bpe_cache_path, load_tokenizer_file, parse_tokenizer_spec
from lit_algos.errors import DataError
from lit_algos.utils.io import read_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


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
        """Validate every shard header, the validation fingerprint, the tokenizer file and, when a
        train shard changed since preparation (or its manifest predates the record of it), the
        largest train token id; DataError when anything is off."""
        train = TokenStream(self.train_files)
        if len(train) < self.train_tokens:
            raise DataError(
                f"Prepared dataset {self.root} is incomplete: {len(train)} train tokens, manifest says {self.train_tokens}."
            )
        top = self.manifest.get("train_max_token")
        changed = [
            p.name
            for p in self.train_files
            if shard_stat(p) != (self.manifest.get("files") or {}).get(p.name)
        ]
        if not isinstance(top, int) or (changed and "files" in self.manifest):
            top = (
                train.max_token()
            )  # a vectorised pass: the embedding must never see an id past the vocabulary
        if top >= self.vocab_size:
            edited = (
                f" ({', '.join(changed)} changed after preparation)"
                if changed and "files" in self.manifest
                else ""
            )
            raise DataError(
                f"Prepared dataset {self.root} holds train token id {top}, outside its vocabulary of "
                f"{self.vocab_size} tokens (ids 0..{self.vocab_size - 1}){edited}; its shards do not match its "
                f"tokenizer. Delete {self.root} and prepare it again."
            )
        self._check_tokenizer_file()
        val = TokenStream(self.val_files, limit=self.val_tokens + 1)
        if len(val) != self.val_tokens + 1 or val.fingerprint() != self.val_fingerprint:
            raise DataError(
                f"Prepared dataset {self.root} is corrupt: its validation tokens no longer match the recorded "
                f"fingerprint {self.val_fingerprint}. Delete the directory and prepare again."
            )
        return self

    def _check_tokenizer_file(self) -> None:
        """A prepared dataset's own tokenizer.json (trained BPEs) must load and be the one it was made with."""
        path = self.root / "tokenizer.json"
        if "shards_root" in self.manifest or self.tokenizer == "gpt2" or not path.exists():
            if "shards_root" not in self.manifest and self.tokenizer.startswith("bpe:"):
                raise DataError(
                    f"Prepared dataset {self.root} lost its tokenizer.json. Delete it and prepare again."
                )
            return
        tok = load_tokenizer_file(path)
        if tok.fingerprint != self.tokenizer_fingerprint:
            raise DataError(
                f"The tokenizer file {path} is not the one dataset {self.root} was made with (fingerprint "
                f"{tok.fingerprint}, manifest {self.tokenizer_fingerprint}). Delete the directory and prepare again."
            )


def shard_stat(path: Path) -> list[int] | None:
    """[size, mtime_ns] of a shard: recorded at preparation, so an edit since is noticed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


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


def tokenizer_cache(cfg: DataConfig) -> list[Path]:
    """The cache file ``load_tokenizer`` would write for ``cfg`` (trained BPEs), to undo on failure."""
    kind, arg = parse_tokenizer_spec(cfg.tokenizer, field="data.tokenizer")
    return [bpe_cache_path(cfg, int(arg))] if kind == "bpe" else []
