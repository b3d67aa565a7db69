"""`lit-algos data prepare` and `lit-algos data inspect`."""

import json
import random

import numpy as np
import pytest

from lit_algos.cli import main
from lit_algos.data import hub
from lit_algos.data.shards import write_shard


@pytest.fixture
def corpus(tmp_path):
    rng = random.Random(0)
    words = "and it came to pass that the people went up into the city gate at evening".split()
    text = "\n\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) for _ in range(300))
    path = tmp_path / "corpus.txt"
    path.write_text(text + "\n")
    return path


def prepare_args(corpus, cache):
    return [
        "data",
        "prepare",
        "--corpus",
        str(corpus),
        "--tokenizer",
        "bpe:300",
        "--val-tokens",
        "256",
        "--val-fraction",
        "0.2",
        "--cache-dir",
        str(cache),
        "--json",
    ]


def test_prepare_twice_prints_the_same_fingerprints(corpus, tmp_path, capsys):
    assert main(prepare_args(corpus, tmp_path / "cache")) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["val_tokens"] == 256 and first["vocab_size"] == 300 and first["tokenizer"] == "bpe:300"
    assert main(prepare_args(corpus, tmp_path / "cache")) == 0
    second = json.loads(capsys.readouterr().out)
    keys = (
        "corpus_fingerprint",
        "tokenizer_fingerprint",
        "val_fingerprint",
        "val_bytes",
        "train_tokens",
        "root",
    )
    assert {k: second[k] for k in keys} == {k: first[k] for k in keys}


def test_prepare_table_output(corpus, tmp_path, capsys):
    assert main(prepare_args(corpus, tmp_path / "cache")[:-1]) == 0
    out = capsys.readouterr().out
    assert "val_fingerprint" in out and "bpe:300" in out


def test_inspect_dataset_and_shard(corpus, tmp_path, capsys):
    main(prepare_args(corpus, tmp_path / "cache"))
    root = json.loads(capsys.readouterr().out)["root"]
    assert main(["data", "inspect", root, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "dataset" and info["max_token"] == 299 and len(info["shards"]) == 2
    val_shard = next(s for s in info["shards"] if s["file"].endswith("val_000000.bin"))
    assert val_shard["tokens"] == 257 and val_shard["fingerprint"] == info["val_fingerprint"]
    assert main(["data", "inspect", val_shard["file"], "--json"]) == 0
    shard = json.loads(capsys.readouterr().out)
    assert shard == {"kind": "shard", **val_shard}
    assert main(["data", "inspect", root]) == 0  # the rich tables
    assert "shards" in capsys.readouterr().out


def test_inspect_shards_directory(tmp_path, capsys):
    write_shard(tmp_path / "fineweb_train_000001.bin", np.arange(100))
    write_shard(tmp_path / "fineweb_val_000000.bin", np.array([70000, 1]))
    assert main(["data", "inspect", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "shards" and info["tokens"] == 102 and info["max_token"] == 70000
    assert {s["version"] for s in info["shards"]} == {1, 2}


def test_inspect_refuses_a_truncated_shard(tmp_path, capsys):
    path = write_shard(tmp_path / "x.bin", np.arange(100))
    path.write_bytes(path.read_bytes()[:-7])
    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "x.bin" in err


def test_offline_hub_corpus_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "reachable", lambda *a, **k: False)
    assert main(["data", "prepare", "--corpus", "tinystories", "--cache-dir", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'tinystories'" in err and "unreachable" in err and "kjv" in err


def test_bad_flags_name_the_field(tmp_path, capsys):
    assert main(["data", "prepare", "--tokenizer", "bpe:10", "--cache-dir", str(tmp_path)]) == 2
    assert "data.tokenizer" in capsys.readouterr().err
    assert main(["data", "prepare", "--val-fraction", "1.5", "--cache-dir", str(tmp_path)]) == 2
    assert "data.val_fraction" in capsys.readouterr().err
