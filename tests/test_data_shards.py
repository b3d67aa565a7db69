"""Shard layout (llm.c / modded-nanogpt), the >65535 variant, corrupt-file errors, token streams."""

import numpy as np
import pytest

from lit_algos.data.shards import (
    HEADER_BYTES,
    MAGIC,
    TokenStream,
    encode_shard,
    fingerprint_tokens,
    load_tokens,
    read_header,
    version_for_vocab,
    write_shard,
)
from lit_algos.errors import DataError


def modded_nanogpt_shard(path, tokens):
    """A shard written the way modded-nanogpt's fineweb.py writes them, independently of our writer."""
    header = np.zeros(256, dtype=np.int32)
    header[0], header[1], header[2] = 20240520, 1, len(tokens)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.asarray(tokens, dtype=np.uint16).tobytes())


def test_external_modded_nanogpt_shard_loads_as_is(tmp_path):
    tokens = np.array([50256, 464, 2068, 7586, 50256, 11], dtype=np.uint16)
    modded_nanogpt_shard(tmp_path / "fineweb_val_000000.bin", tokens)
    head = read_header(tmp_path / "fineweb_val_000000.bin")
    assert (head.version, head.num_tokens) == (1, 6)
    np.testing.assert_array_equal(load_tokens(head.path), tokens)


def test_write_then_read_version_1(tmp_path):
    tokens = np.arange(1000) % 65536
    path = write_shard(tmp_path / "a.bin", tokens)
    head = read_header(path)
    assert (head.version, head.num_tokens) == (1, 1000)
    assert path.stat().st_size == HEADER_BYTES + 2 * 1000
    header = np.fromfile(path, dtype="<i4", count=3)
    assert header.tolist() == [MAGIC, 1, 1000]
    np.testing.assert_array_equal(load_tokens(path), tokens)
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary file


def test_wide_vocabulary_uses_version_2(tmp_path):
    tokens = np.array([0, 65535, 65536, 200_000])
    path = write_shard(tmp_path / "wide.bin", tokens)
    head = read_header(path)
    assert (head.version, head.num_tokens) == (2, 4)
    assert path.stat().st_size == HEADER_BYTES + 4 * 4
    np.testing.assert_array_equal(load_tokens(path), tokens)
    with pytest.raises(ValueError, match="version 2"):
        encode_shard(tokens, version=1)
    assert version_for_vocab(65536) == 1 and version_for_vocab(65537) == 2


def test_fingerprint_independent_of_shard_width(tmp_path):
    tokens = np.arange(500)
    v1 = load_tokens(write_shard(tmp_path / "v1.bin", tokens, version=1))
    v2 = load_tokens(write_shard(tmp_path / "v2.bin", tokens, version=2))
    assert fingerprint_tokens([v1]) == fingerprint_tokens([v2])
    assert fingerprint_tokens([v1]) != fingerprint_tokens([tokens[::-1]])
    # chunking does not change the fingerprint
    assert fingerprint_tokens([tokens[:100], tokens[100:]]) == fingerprint_tokens([tokens])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:100], "too short"),
        (lambda b: (999).to_bytes(4, "little") + b[4:], "magic number 999"),
        (lambda b: b[:4] + (7).to_bytes(4, "little") + b[8:], "version 7"),
        (lambda b: b[:-3], "truncated"),
        (lambda b: b + b"\0\0", "truncated or corrupt"),
    ],
    ids=["short", "bad-magic", "bad-version", "truncated", "trailing"],
)
def test_corrupt_shards_are_refused(tmp_path, damage, message):
    good = encode_shard(np.arange(64))
    path = tmp_path / "bad.bin"
    path.write_bytes(damage(good))
    with pytest.raises(DataError, match=message):
        read_header(path)
    with pytest.raises(DataError):
        TokenStream([path])  # a stream validates every shard before reading any
    with pytest.raises(DataError):
        load_tokens(path)


def test_missing_shard_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_header(tmp_path / "nope.bin")


def test_stream_reads_across_shards_and_respects_limit(tmp_path):
    a = write_shard(tmp_path / "train_000000.bin", np.arange(0, 10))
    b = write_shard(tmp_path / "train_000001.bin", np.arange(10, 13))
    c = write_shard(tmp_path / "train_000002.bin", np.arange(13, 30))
    stream = TokenStream([a, b, c])
    assert len(stream) == 30
    np.testing.assert_array_equal(stream.read(8, 8), np.arange(8, 16))  # spans all three shards
    np.testing.assert_array_equal(stream.read(0, 30), np.arange(30))
    assert stream.read(0, 1).dtype == np.int64
    assert stream.max_token() == 29
    with pytest.raises(IndexError):
        stream.read(25, 10)
    short = TokenStream([a, b, c], limit=12)
    assert len(short) == 12
    assert short.fingerprint() == fingerprint_tokens([np.arange(12)])
