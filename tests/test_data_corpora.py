"""Corpora: the bundled KJV, local files, the hash split, Hugging Face offline errors."""

import json
import time

import pytest

from lit_algos.config.data import DataConfig
from lit_algos.data import hub
from lit_algos.data.corpora import KJVCorpus, is_val, open_corpus, split_documents
from lit_algos.errors import DataError


def test_kjv_is_bundled_and_offline():
    docs = list(KJVCorpus().read())
    assert len(docs) == 1189  # one document per chapter
    assert docs[0].id == "kjv/Genesis/1" and docs[0].text.startswith(
        "Genesis 1\n\n1:1 In the beginning God created"
    )
    assert docs[-1].id == "kjv/Revelation/22"
    assert len({d.id for d in docs}) == len(docs)
    assert sum(len(d.text.encode()) for d in docs) > 4_000_000


def test_hash_split_is_deterministic_and_near_the_fraction():
    ids = [f"doc-{i}" for i in range(20000)]
    val = [i for i in ids if is_val(i, 0.1)]
    assert val == [i for i in ids if is_val(i, 0.1)]
    assert 0.09 < len(val) / len(ids) < 0.11
    assert set(val) <= {i for i in ids if is_val(i, 0.2)}  # a larger fraction only adds documents


def test_split_sides_partition_the_corpus():
    corpus = KJVCorpus()
    train = [d.id for d in split_documents(corpus, "train", 0.1)]
    val = [d.id for d in split_documents(corpus, "val", 0.1)]
    assert not set(train) & set(val) and len(train) + len(val) == 1189


def test_local_text_jsonl_parquet(tmp_path):
    (tmp_path / "a.txt").write_text("first paragraph\nstill first\n\n\n  \nsecond one\n")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"id": "x1", "text": "json doc"}) + "\n\n" + json.dumps({"text": "no id"}) + "\n"
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["pq one", "pq two"]}), tmp_path / "c.parquet")
    corpus = open_corpus(DataConfig(corpus=str(tmp_path)))
    docs = [(d.id, d.text) for d in corpus.read()]
    assert docs == [
        ("a.txt:0", "first paragraph\nstill first\n"),
        ("a.txt:1", "second one\n"),
        ("x1", "json doc"),
        ("b.jsonl:2", "no id"),
        ("c.parquet:0", "pq one"),
        ("c.parquet:1", "pq two"),
    ]
    # a glob and a comma-separated list name the same files
    same = open_corpus(DataConfig(corpus=f"{tmp_path}/a.txt,{tmp_path}/*.jsonl"))
    assert [d.id for d in same.read()] == ["a.txt:0", "a.txt:1", "x1", "b.jsonl:2"]


def test_local_errors(tmp_path):
    with pytest.raises(DataError, match="Unknown corpus 'nothing-here'"):
        open_corpus(DataConfig(corpus="nothing-here"))
    (tmp_path / "bad.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(DataError, match="text_field"):
        list(open_corpus(DataConfig(corpus=str(tmp_path / "bad.jsonl"))).read())
    assert [
        d.text for d in open_corpus(DataConfig(corpus=str(tmp_path / "bad.jsonl"), text_field="body")).read()
    ] == ["x"]
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported type"):
        open_corpus(DataConfig(corpus=str(tmp_path / "x.csv")))


@pytest.mark.parametrize("name", ["fineweb-edu", "openwebtext", "tinystories", "hf:someone/some-data:cfg"])
def test_hub_corpus_offline_fails_fast_with_remedies(name, monkeypatch):
    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "reachable", lambda host, *a, **k: calls.append(host) or False)
    corpus = open_corpus(DataConfig(corpus=name))
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        corpus.check_available()
    assert time.perf_counter() - start < 1.0 and calls == ["huggingface.co"]
    message = str(err.value)
    assert (
        repr(name) in message
        and "kjv" in message
        and "local files" in message
        and "HF_HUB_OFFLINE" in message
    )


def test_hf_hub_offline_env_skips_the_network_check(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "reachable", lambda *a, **k: pytest.fail("must not touch the network"))
    assert not hub.hub_reachable()
    open_corpus(
        DataConfig(corpus="fineweb-edu")
    ).check_available()  # offline: the local HF cache will be tried


def test_no_wait_env_means_unreachable_without_trying(monkeypatch):
    import socket

    monkeypatch.setenv("LIT_ALGOS_NO_HUB_CHECK_WAIT", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("must not connect"))
    assert not hub.reachable("huggingface.co")
