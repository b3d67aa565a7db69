"""Token shards in the llm.c / modded-nanogpt binary layout, and streams over them.

A shard is a 1024-byte header of 256 little-endian int32 followed by the tokens:

    header[0] = 20240520     magic
    header[1] = 1 or 2       version: 1 -> uint16 tokens (ids 0..65535), 2 -> uint32 tokens
    header[2] = n            number of tokens that follow
    header[3:] = 0           reserved

Version 1 is exactly the format of llm.c and the modded-nanogpt FineWeb shards, so those load as
they are. Version 2 is this project's variant for vocabularies larger than 65,536 ids: same
header, 4-byte tokens. A shard whose magic, version or length disagrees with its header is
refused with a ``DataError``; it is never trained on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lit_algos.errors import DataError
from lit_algos.utils.io import atomic_write_bytes

MAGIC = 20240520
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
DTYPES = {1: np.dtype("<u2"), 2: np.dtype("<u4")}  # version -> token dtype
MAX_V1_TOKEN = 65535


@dataclass(frozen=True)
class ShardHeader:
    path: Path
    version: int
    num_tokens: int

    @property
    def dtype(self) -> np.dtype:
        return DTYPES[self.version]


def version_for_vocab(vocab_size: int) -> int:
    """The shard version that holds every id of a vocabulary of ``vocab_size`` tokens."""
    return 1 if vocab_size <= MAX_V1_TOKEN + 1 else 2


def encode_shard(tokens: np.ndarray, version: int | None = None) -> bytes:
    """Header + tokens as bytes. ``version`` None picks 1 when every id fits in uint16, else 2."""
    tokens = np.asarray(tokens)
    top = int(tokens.max()) if tokens.size else 0
    if tokens.size and int(tokens.min()) < 0:
        raise ValueError("token ids must be >= 0")
    if version is None:
        version = 1 if top <= MAX_V1_TOKEN else 2
    if version not in DTYPES:
        raise ValueError(f"unknown shard version {version}")
    if version == 1 and top > MAX_V1_TOKEN:
        raise ValueError(f"token id {top} does not fit a version-1 (uint16) shard; use version 2")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = MAGIC, version, tokens.size
    return header.tobytes() + tokens.astype(DTYPES[version], copy=False).tobytes()


def write_shard(path: str | os.PathLike, tokens: np.ndarray, version: int | None = None) -> Path:
    """Write a shard atomically (a reader never sees half of one)."""
    return atomic_write_bytes(path, encode_shard(tokens, version))


def read_header(path: str | os.PathLike) -> ShardHeader:
    """Read and validate a shard header against the file size; raise DataError on any mismatch."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Token shard {path} does not exist or is not a file.")
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise DataError(
            f"Token shard {path} is too short to be a shard: {size} bytes, less than the {HEADER_BYTES}-byte "
            "header. The file is truncated or not a token shard; delete it and prepare the data again."
        )
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(HEADER_BYTES), dtype="<i4")
    magic, version, num_tokens = int(header[0]), int(header[1]), int(header[2])
    if magic != MAGIC:
        raise DataError(
            f"Token shard {path} has magic number {magic}, expected {MAGIC} (llm.c / modded-nanogpt layout). "
            "The file is corrupt or not a token shard."
        )
    if version not in DTYPES:
        raise DataError(
            f"Token shard {path} has version {version}; supported versions are 1 (uint16 tokens) and 2 (uint32 tokens)."
        )
    expected = HEADER_BYTES + num_tokens * DTYPES[version].itemsize
    if num_tokens < 0 or size != expected:
        raise DataError(
            f"Token shard {path} is {size} bytes but its header promises {num_tokens} tokens ({expected} bytes): "
            "the file is truncated or corrupt. Delete it and prepare the data again."
        )
    return ShardHeader(path, version, num_tokens)


def load_tokens(path: str | os.PathLike) -> np.ndarray:
    """The tokens of a validated shard as a read-only memory map (no copy)."""
    head = read_header(path)
    if head.num_tokens == 0:
        return np.zeros(0, dtype=head.dtype)
    return np.memmap(head.path, dtype=head.dtype, mode="r", offset=HEADER_BYTES, shape=(head.num_tokens,))


def fingerprint_tokens(chunks: Iterable[np.ndarray], n: int = 16) -> str:
    """sha256 prefix of token ids as little-endian uint32, so v1 and v2 shards of the same tokens agree."""
    h = hashlib.sha256()
    for chunk in chunks:
        for start in range(0, len(chunk), 1 << 22):  # bounded memory for 100M-token shards
            h.update(np.asarray(chunk[start : start + (1 << 22)]).astype("<u4").tobytes())
    return h.hexdigest()[:n]


class TokenStream:
    """Several shards seen as one concatenated token sequence, optionally cut to its first ``limit`` tokens."""

    def __init__(self, files: list[Path], limit: int | None = None):
        self.files = [Path(f) for f in files]
        self.headers = [read_header(f) for f in self.files]  # validate every shard before any reading
        counts = [h.num_tokens for h in self.headers]
        self.offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        total = int(self.offsets[-1])
        self.length = total if limit is None else min(total, limit)
        self._maps: list[np.ndarray] | None = None  # opened lazily, so the stream pickles into workers

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_maps"] = None
        return state

    def _open(self) -> list[np.ndarray]:
        if self._maps is None:
            self._maps = [load_tokens(h.path) for h in self.headers]
        return self._maps

    def read(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start+length) as int64, crossing shard boundaries where needed."""
        if start < 0 or start + length > self.length:
            raise IndexError(f"read [{start}, {start + length}) outside a stream of {self.length} tokens")
        maps = self._open()
        out = np.empty(length, dtype=np.int64)
        i = int(np.searchsorted(self.offsets, start, side="right")) - 1
        pos, done = start, 0
        while done < length:
            local = pos - int(self.offsets[i])
            take = min(length - done, int(self.offsets[i + 1]) - pos)
            out[done : done + take] = maps[i][local : local + take]
            done, pos, i = done + take, pos + take, i + 1
        return out

    def chunks(self, chunk: int = 1 << 24) -> Iterable[np.ndarray]:
        for start in range(0, self.length, chunk):
            yield self.read(start, min(chunk, self.length - start))

    def fingerprint(self) -> str:
        return fingerprint_tokens(self.chunks())

    def max_token(self) -> int:
        return max((int(c.max()) for c in self.chunks() if len(c)), default=-1)
