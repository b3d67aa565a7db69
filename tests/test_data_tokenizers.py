"""Tokenizers: rustbpe training served by tiktoken, round trips, fingerprints, caching, gpt2 offline."""

import random
import tempfile

import pytest

from lit_algos.config.data import DataConfig, parse_tokenizer_spec
from lit_algos.data import hub
from lit_algos.data import tokenizers as tk
from lit_algos.errors import ConfigError, DataError

WORDS = (
    "the of and to in that he shall unto for his lord they be is him not them it with all thou thy".split()
)


def sample_text(seed: int, paragraphs: int = 60) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))).capitalize() + ".\n"
        for _ in range(paragraphs)
    ]


@pytest.fixture(scope="module")
def small_bpe():
    return tk.train_bpe(sample_text(0), 300)


def test_round_trip_and_special_token(small_bpe):
    tok = small_bpe
    assert tok.n_vocab == 300 and tok.eot_token == 299
    for text in ["And the LORD said unto Moses", "naïve café — 東京 🙂\n\n  tabs\tand  spaces", ""]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.text_bytes(ids) == len(text.encode("utf-8"))
    # special-token text inside a document is ordinary text; the real EOT only comes from encode_document
    doc = tok.encode_document("a <|endoftext|> b")
    assert doc[0] == tok.eot_token and tok.eot_token not in doc[1:]
    assert tok.text_bytes(doc) == len("a <|endoftext|> b")
    assert max(tok.encode(" ".join(WORDS))) < tok.eot_token


def test_bpe_learns_merges_from_its_text(small_bpe):
    ids = small_bpe.encode(" shall unto")
    assert len(ids) < len(b" shall unto")  # frequent words compress


def test_fingerprint_stable_and_data_dependent(small_bpe):
    assert tk.train_bpe(sample_text(0), 300).fingerprint == small_bpe.fingerprint
    assert tk.train_bpe(sample_text(1), 300).fingerprint != small_bpe.fingerprint
    assert tk.train_bpe(sample_text(0), 280).fingerprint != small_bpe.fingerprint


def test_tiny_text_gives_a_smaller_vocabulary():
    tok = tk.train_bpe(["ab ab ab"], 1000)
    assert tok.n_vocab < 1000 and tok.eot_token == tok.n_vocab - 1
    assert tok.decode(tok.encode("ab ba")) == "ab ba"


def test_save_and_reload(small_bpe, tmp_path):
    path = small_bpe.save(tmp_path / "tok.json")
    again = tk.load_tokenizer(f"file:{path}")
    assert again.fingerprint == small_bpe.fingerprint
    assert again.encode("thou shalt") == small_bpe.encode("thou shalt")
    path.write_text(path.read_text().replace(small_bpe.fingerprint, "0" * 16))
    with pytest.raises(DataError, match="corrupt"):
        tk.load_tokenizer_file(path)
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(DataError):
        tk.load_tokenizer_file(tmp_path / "junk.json")


def test_corpus_bpe_is_trained_once_then_cached(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(sample_text(2, 200)))
    cfg = DataConfig(corpus=str(corpus), tokenizer="bpe:320", cache_dir=str(tmp_path / "cache"))
    first = tk.load_tokenizer("bpe:320", corpus=cfg)
    cached = tk.bpe_cache_path(cfg, 320)
    assert cached.is_file() and cached.parent == tmp_path / "cache" / "tokenizers"
    stamp = cached.stat().st_mtime_ns
    second = tk.load_tokenizer("bpe:320", corpus=cfg)
    assert second.fingerprint == first.fingerprint and cached.stat().st_mtime_ns == stamp
    # the train split depends on val_fraction, so another split is another tokenizer file
    other = DataConfig(
        corpus=str(corpus), tokenizer="bpe:320", cache_dir=str(tmp_path / "cache"), val_fraction=0.5
    )
    assert tk.bpe_cache_path(other, 320) != cached


def test_spec_parsing():
    assert parse_tokenizer_spec("gpt2") == ("gpt2", None)
    assert parse_tokenizer_spec("bpe:4096") == ("bpe", 4096)
    assert parse_tokenizer_spec("file:/x/tok.json") == ("file", "/x/tok.json")
    for bad in ["bpe:100", "bpe:", "bpe:abc", "sentencepiece", "file:"]:
        with pytest.raises(ConfigError, match="tokenizer"):
            parse_tokenizer_spec(bad)
    with pytest.raises(ConfigError, match="tokenizer"):
        DataConfig(tokenizer="bpe:12")


def test_gpt2_offline_without_files_fails_fast(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr(hub, "reachable", lambda *a, **k: False)  # no network, and never wait on one
    with pytest.raises(DataError) as err:
        tk.load_tokenizer("gpt2", cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert "gpt2" in message and "TIKTOKEN_CACHE_DIR" in message and "vocab.bpe" in message
    assert str(empty) in message  # says where it looked


def test_gpt2_files_found_under_tiktoken_cache_names(tmp_path, monkeypatch):
    """A pre-filled tiktoken cache (sha1-of-URL names) is found; files with a wrong hash are ignored."""
    import hashlib

    name = hashlib.sha1(tk.GPT2_URLS["vocab.bpe"].encode()).hexdigest()
    (tmp_path / name).write_text("not the real file")
    assert tk._gpt2_file(tmp_path, "vocab.bpe") is None
