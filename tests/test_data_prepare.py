"""prepare_dataset: the fixed validation set, fingerprints, caching, races, shard dirs, offline errors."""

import random
from dataclasses import replace

import numpy as np
import pytest

from lit_algos.config.data import DataConfig
from lit_algos.data import hub, load_prepared, load_tokenizer, prepare_dataset
from lit_algos.data import prepare as prep
from lit_algos.data.shards import load_tokens, write_shard
from lit_algos.errors import ConfigError, DataError

WORDS = "in the beginning god created heaven and earth was without form void darkness upon face of deep spirit moved waters".split()


def write_corpus(path, seed=0, docs=300):
    rng = random.Random(seed)
    paragraphs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 40))) + "." for _ in range(docs)]
    path.write_text("\n\n".join(paragraphs) + "\n")
    return path


@pytest.fixture
def cfg(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    return DataConfig(
        corpus=str(corpus),
        tokenizer="bpe:320",
        val_tokens=500,
        val_fraction=0.2,
        cache_dir=str(tmp_path / "cache"),
    )


def test_prepare_writes_a_fixed_validation_set(cfg):
    ds = prepare_dataset(cfg)
    assert ds.root.parent == hub.cache_root(cfg.cache_dir) / "datasets"
    assert ds.vocab_size == 320 and ds.eot_token == 319 and ds.val_tokens == 500
    val = load_tokens(ds.val_files[0])
    assert len(val) == 501 and val[0] == ds.eot_token  # val_tokens targets + the first input token
    tok = load_tokenizer(f"file:{ds.root}")
    assert tok.fingerprint == ds.tokenizer_fingerprint
    text = tok.decode([t for t in val[1:] if t != ds.eot_token])
    assert ds.val_bytes == len(text.encode("utf-8"))  # bytes of exactly the 500 target tokens
    train = load_tokens(ds.train_files[0])
    assert len(train) == ds.train_tokens and train[0] == ds.eot_token
    assert int(train.max()) < ds.vocab_size
    record = ds.record_dict()
    assert set(record) == {
        "corpus",
        "tokenizer",
        "corpus_fingerprint",
        "tokenizer_fingerprint",
        "val_fingerprint",
        "val_tokens",
        "val_bytes",
        "train_tokens",
    }
    # train and validation documents are disjoint
    val_docs = set(tok.decode(val).split("<|endoftext|>")[1:-1])  # whole documents only
    train_docs = set(tok.decode(train).split("<|endoftext|>"))
    assert val_docs and not val_docs & train_docs


def test_second_prepare_is_a_cache_hit(cfg, monkeypatch):
    first = prepare_dataset(cfg)
    stamp = (first.root / "manifest.json").stat().st_mtime_ns
    monkeypatch.setattr(prep, "_build", lambda *a, **k: pytest.fail("must not rebuild"))
    again = prepare_dataset(cfg)
    assert again.record_dict() == first.record_dict()
    assert (again.root / "manifest.json").stat().st_mtime_ns == stamp


def test_fingerprints_stable_across_caches_and_data_dependent(cfg, tmp_path):
    a = prepare_dataset(cfg)
    b = prepare_dataset(replace(cfg, cache_dir=str(tmp_path / "other-cache")))
    assert b.record_dict() == a.record_dict()  # same data, fresh cache: the same fingerprints
    other = write_corpus(tmp_path / "other.txt", seed=1)
    c = prepare_dataset(replace(cfg, corpus=str(other)))
    assert c.corpus_fingerprint != a.corpus_fingerprint
    assert c.tokenizer_fingerprint != a.tokenizer_fingerprint
    assert c.val_fingerprint != a.val_fingerprint
    d = prepare_dataset(replace(cfg, val_tokens=400))
    assert d.corpus_fingerprint == a.corpus_fingerprint and d.tokenizer_fingerprint == a.tokenizer_fingerprint
    assert d.val_fingerprint != a.val_fingerprint and d.root != a.root


def test_max_train_tokens_caps_the_train_split(cfg):
    ds = prepare_dataset(replace(cfg, max_train_tokens=777))
    assert ds.train_tokens == 777 == len(load_tokens(ds.train_files[0]))


def test_too_few_validation_tokens(cfg):
    with pytest.raises(DataError, match="val_fraction"):
        prepare_dataset(replace(cfg, val_tokens=10**6))


def test_a_concurrent_prepare_that_wins_the_race(cfg, monkeypatch):
    """Another process finishes the same dataset while we build ours: we use its result, leave no temp dir."""
    real_build = prep._build

    def racing_build(*args, **kwargs):
        monkeypatch.setattr(prep, "_build", real_build)
        winner = prepare_dataset(cfg)  # the "other process"
        assert winner.root.is_dir()
        return real_build(*args, **kwargs)

    monkeypatch.setattr(prep, "_build", racing_build)
    ds = prepare_dataset(cfg)
    assert ds.root.is_dir()
    assert [p.name for p in ds.root.parent.iterdir()] == [ds.root.name]


def test_corrupt_prepared_dataset_is_refused(cfg):
    ds = prepare_dataset(cfg)
    val = ds.val_files[0]
    data = bytearray(val.read_bytes())
    data[-2] ^= 1  # flip one bit of the last validation token
    val.write_bytes(bytes(data))
    with pytest.raises(DataError, match="fingerprint"):
        prepare_dataset(cfg)
    val.write_bytes(bytes(data[:-10]))
    with pytest.raises(DataError, match="truncated"):
        load_prepared(ds.root)


def test_bundled_kjv_prepares_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "reachable", lambda *a, **k: pytest.fail("kjv must not need the network"))
    ds = prepare_dataset(
        DataConfig(corpus="kjv", tokenizer="bpe:512", val_tokens=4096, cache_dir=str(tmp_path))
    )
    assert ds.corpus == "kjv" and ds.vocab_size == 512 and ds.train_tokens > 1_000_000
    assert ds.manifest["corpus_stats"]["documents_read"] == 1189


def test_ready_made_shards_directory(cfg, tmp_path):
    tok = load_tokenizer("bpe:320", corpus=cfg)
    tok_file = tok.save(tmp_path / "tok.json")
    shards = tmp_path / "shards"
    stream = np.array(
        [t for i in range(200) for t in tok.encode_document(f"document number {i} of the deep.")]
    )
    write_shard(shards / "fineweb_val_000000.bin", stream[:3000])
    write_shard(shards / "fineweb_train_000001.bin", stream[3000:6000])
    write_shard(shards / "fineweb_train_000002.bin", stream[6000:])
    sc = DataConfig(
        corpus="", shards=str(shards), tokenizer=f"file:{tok_file}", val_tokens=1000, cache_dir=cfg.cache_dir
    )
    ds = prepare_dataset(sc)
    assert ds.root == shards.resolve() and [p.name for p in ds.train_files] == [
        "fineweb_train_000001.bin",
        "fineweb_train_000002.bin",
    ]
    assert ds.train_tokens == len(stream) - 3000 and ds.val_tokens == 1000
    assert ds.val_bytes == len(tok.decode([t for t in stream[1:1001] if t != tok.eot_token]).encode())
    assert prepare_dataset(sc).record_dict() == ds.record_dict()  # manifest cached
    bad = replace(sc, tokenizer="bpe:300", corpus=str(cfg.corpus))
    with pytest.raises(DataError, match="outside the vocabulary"):
        prepare_dataset(bad)  # ids up to 319 do not fit a 300-token vocabulary


def test_fineweb10b_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "reachable", lambda *a, **k: pytest.fail("must not touch the network"))
    with pytest.raises(DataError, match="fineweb10b-gpt2") as err:
        prepare_dataset(DataConfig(corpus="fineweb10b-gpt2", tokenizer="gpt2", cache_dir=str(tmp_path)))
    assert "data.shards" in str(err.value) and "kjv" in str(err.value)
    with pytest.raises(ConfigError, match="data.tokenizer"):
        prepare_dataset(DataConfig(corpus="fineweb10b-gpt2", tokenizer="bpe:4096", cache_dir=str(tmp_path)))


def test_hub_corpus_offline_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "reachable", lambda *a, **k: False)
    monkeypatch.setattr(prep, "load_tokenizer", lambda *a, **k: pytest.fail("no tokenizer work when offline"))
    with pytest.raises(DataError, match="'openwebtext'"):
        prepare_dataset(DataConfig(corpus="openwebtext", cache_dir=str(tmp_path)))
