"""The hostile-user corpus: every malformed input is exit code 2, one clear message, no traceback,
and nothing created or changed on disk.

Each case builds its inputs in a fresh folder, runs ``lit_algos.cli.main(argv)`` in-process and
checks: the exit code, that no traceback was printed, that the message names the field (or file)
and the offending value and says what is allowed, and that no file under the folder appeared,
vanished or changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lit_algos.analysis.synthetic import synthetic_seeds, synthetic_tracks_yaml
from lit_algos.cli import main
from lit_algos.data.shards import write_shard


@dataclass
class Case:
    build: Callable[[Path], list[str]]  # writes the inputs under the folder, returns argv
    expect: tuple[str, ...]  # substrings of the message: field, value, what is allowed


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    } | {str(p.relative_to(root)) + "/": (b"", 0) for p in root.rglob("*") if p.is_dir()}


# ---- recipes and overrides -------------------------------------------------------------------
def recipe(text: str | bytes, *extra: str, command: str = "train") -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = tmp / "bad.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        args = [command, str(path), *extra]
        return args + (["--runs-dir", str(tmp / "runs")] if command == "train" else [])

    return build


def override(*items: str, command: str = "train") -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        args = [command, "debug"]
        for item in items:
            args += ["--set", *item.split(" ")] if " " in item else ["--set", item]
        return args + (["--runs-dir", str(tmp / "runs")] if command == "train" else [])

    return build


RECIPE_CASES = {
    "non-utf8 recipe": Case(
        recipe(b"model:\n  n_layer: 2\n  # caf\xe9\n"), ("not UTF-8", "bad.yaml", "UTF-8 YAML")
    ),
    "yaml syntax": Case(recipe("model: [1, 2\n"), ("not valid YAML", "bad.yaml")),
    "top-level list": Case(recipe("- 1\n- 2\n"), ("YAML mapping at the top level", "list")),
    "n_layer 1e9 (describe)": Case(
        recipe("model:\n  n_layer: 1e9\n", command="describe"), ("model.n_layer", "1000000000", "At most 512")
    ),
    "n_layer 1e9 (train)": Case(
        recipe("model:\n  n_layer: 1e9\n"), ("model.n_layer", "1000000000", "At most")
    ),
    "n_embd 1e6": Case(
        recipe("model:\n  n_embd: 1e6\n  n_head: 4\n"), ("model.n_embd", "1000000", "at most 1e+13")
    ),
    "lr inf": Case(recipe("optim:\n  lr: .inf\n"), ("optim.lr", "inf", "finite number")),
    "target nan": Case(
        recipe("train:\n  target_loss: .nan\n"), ("train.target_loss", "nan", "finite number")
    ),
    "target negative": Case(recipe("train:\n  target_loss: -1\n"), ("train.target_loss", "-1", "> 0")),
    "section is a scalar": Case(recipe("model: 3\n"), ("model", "3", "mapping")),
    "unknown key": Case(recipe("model:\n  n_layers: 2\n"), ("model.n_layers", "valid keys")),
    "n_head zero": Case(recipe("model:\n  n_head: 0\n"), ("model.n_head", "0", "> 0")),
    "n_embd indivisible": Case(
        recipe("model:\n  n_embd: 130\n  n_head: 4\n"), ("model.n_embd", "130", "divisible")
    ),
    "attention kind": Case(
        recipe("model:\n  attention:\n    kind: bogus\n"), ("model.attention.kind", "bogus", "Allowed")
    ),
    "dropout > 1": Case(recipe("model:\n  dropout: 2\n"), ("model.dropout", "2", "between 0")),
    "betas length": Case(recipe("optim:\n  betas: [0.9]\n"), ("optim.betas", "0.9", "exactly 2")),
    "vocab string": Case(recipe("model:\n  vocab_size: abc\n"), ("model.vocab_size", "abc", "integer")),
    "bool for int": Case(recipe("model:\n  n_layer: true\n"), ("model.n_layer", "True", "integer")),
    "eps negative": Case(recipe("optim:\n  eps: -1\n"), ("optim.eps", "-1", "> 0")),
    "batch zero": Case(recipe("train:\n  batch_size: 0\n"), ("train.batch_size", "0", "> 0")),
    "micro batch split": Case(
        recipe("train:\n  batch_size: 32\n  micro_batch_size: 3\n"), ("train.micro_batch_size", "3", "divide")
    ),
    "precision": Case(recipe("train:\n  precision: fp8\n"), ("train.precision", "fp8", "Allowed")),
    "val_fraction 0": Case(
        recipe("data:\n  val_fraction: 0\n"), ("data.val_fraction", "0", "strictly between")
    ),
    "tokenizer spec": Case(recipe("data:\n  tokenizer: bpe:12\n"), ("data.tokenizer", "bpe:12", "257")),
    "hidden negative": Case(recipe("model:\n  mlp:\n    hidden: -5\n"), ("model.mlp.hidden", "-5", "> 0")),
    "warmup negative": Case(
        recipe("optim:\n  schedule:\n    warmup_steps: -1\n"), ("warmup_steps", "-1", ">= 0")
    ),
    "extends loop": Case(recipe("extends: bad\n"), ("inheritance loops", "extends")),
    "extends type": Case(recipe("extends: 3\n"), ("extends", "3", "recipe name")),
}

OVERRIDE_CASES = {
    "--set without =": Case(override("model.n_layer 3"), ("--set", "'model.n_layer'", "KEY=VALUE")),
    "--set empty key": Case(override("=3"), ("dotted path", "model.n_layer")),
    "--set double dot": Case(override("model..n_layer=3"), ("model..n_layer", "dotted path")),
    "--set into a value": Case(override("model.n_layer.x=1"), ("model.n_layer.x", "not a section")),
    "--set lr nan": Case(override("optim.lr=.nan"), ("optim.lr", "nan", "finite")),
    "--set negative budget": Case(override("train.max_tokens=-5"), ("train.max_tokens", "-5", "> 0")),
    "--set n_embd 4e6": Case(override("model.n_embd=4000000"), ("model.n_embd", "4000000", "parameters")),
    "--set too big to fit": Case(
        override("model.n_embd=60000", "model.n_head=4"), ("model.n_embd", "60000", "GiB", "smaller")
    ),
    "--set batch too big to fit": Case(
        override("train.batch_size=100000000"), ("train.batch_size", "100000000", "GiB", "smaller")
    ),
    "--set describe inf": Case(
        override("model.init_std=inf", command="describe"), ("model.init_std", "inf", "finite")
    ),
    "--set unknown section": Case(override("modle.n_layer=2"), ("modle", "valid keys")),
    # YAML reads {kind:mla} (no space) as a key 'kind:mla' with a null value; it used to load mha
    "--set mapping without spaces": Case(
        override("model.attention={kind:mla,qk_norm:true}"), ("model.attention.kind:mla", "space after")
    ),
    "--set unknown null option": Case(
        override("model.attention.windwo=null"), ("model.attention.windwo", "n_kv_head")
    ),
}


# ---- CLI arguments -------------------------------------------------------------------------
def argv(*args: str) -> Callable[[Path], list[str]]:
    return lambda tmp: [a.replace("{tmp}", str(tmp)) for a in args]


CLI_CASES = {
    "seed not an int": Case(argv("train", "debug", "--seed", "abc"), ("--seed", "'abc'", "int")),
    "unknown command": Case(argv("trian"), ("'trian'", "choose from")),
    "unknown recipe": Case(argv("describe", "nope-recipe"), ("'nope-recipe'", "Known recipes")),
    "ceg missing runs": Case(
        argv("ceg", "--ref", "{tmp}/none.json", "--new", "x", "--runs-dir", "{tmp}"), ("none.json", "--ref")
    ),
    "verify tolerance": Case(argv("verify", "x", "--tolerance", "-1"), ("--tolerance", "-1", ">= 0")),
    "leaderboard unknown track": Case(
        lambda tmp: (
            (tmp / "board").mkdir() is None
            and (tmp / "board" / "tracks.yaml").write_text(synthetic_tracks_yaml())
            and ["leaderboard", "--track", "nope", "--no-write", "--leaderboard-dir", str(tmp / "board")]
        ),
        ("'nope'", "Tracks in tracks.yaml", "toy"),
    ),
}


# ---- shards --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory) -> Path:
    from lit_algos.config.data import DataConfig
    from lit_algos.data import load_tokenizer

    root = tmp_path_factory.mktemp("tok")
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(f"in the beginning {i} was the word and the deep." for i in range(400)))
    cfg = DataConfig(corpus=str(corpus), tokenizer="bpe:300", cache_dir=str(root / "cache"))
    return load_tokenizer("bpe:300", corpus=cfg).save(root / "tok.json")


def shards(kind: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        d = tmp / "shards"
        rng = np.random.default_rng(0)
        train, val = rng.integers(0, 300, 5000), rng.integers(0, 300, 3000)
        if kind == "train id too big":
            train[2500] = 300  # one id just outside the vocabulary
        if kind == "train id far too big":
            train[:] = 60000
        if kind == "val id too big":
            val[10] = 299 + 7
        write_shard(d / "x_val_000000.bin", val)
        write_shard(d / "x_train_000001.bin", train)
        if kind == "bad magic":
            raw = bytearray((d / "x_train_000001.bin").read_bytes())
            raw[0] = 7
            (d / "x_train_000001.bin").write_bytes(bytes(raw))
        if kind == "truncated":
            raw = (d / "x_train_000001.bin").read_bytes()
            (d / "x_train_000001.bin").write_bytes(raw[:-3])
        tok = tmp.parent / "tok" / "tok.json"
        return ["data", "prepare", "--shards", str(d), "--tokenizer", f"file:{tok}", "--val-tokens", "1000"]

    return build


SHARD_CASES = {
    "train id too big": Case(
        shards("train id too big"), ("train shards", "token id 300", "ids 0..299", "data.tokenizer")
    ),
    "train id far too big": Case(
        shards("train id far too big"), ("train shards", "token id 60000", "ids 0..299")
    ),
    "val id too big": Case(shards("val id too big"), ("validation shards", "token id 306", "data.tokenizer")),
    "bad magic": Case(shards("bad magic"), ("x_train_000001.bin", "magic number", "expected 20240520")),
    "truncated shard": Case(
        shards("truncated"), ("x_train_000001.bin", "truncated", "prepare the data again")
    ),
    "missing shards dir": Case(
        argv("data", "prepare", "--shards", "{tmp}/nope", "--tokenizer", "gpt2"), ("nope", "not a directory")
    ),
}


# ---- run records ---------------------------------------------------------------------------
def record_case(mutate: Callable[[dict], object], command: str = "ceg") -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        runs = synthetic_seeds("toyrec", seeds=(0, 1, 2))
        paths = []
        for r in runs:
            path = tmp / "runs" / r.run_id / "record.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(r.to_dict()))
            paths.append(path)
        data = json.loads(paths[0].read_text())
        new = mutate(data)
        if isinstance(new, bytes):
            paths[0].write_bytes(new)
        elif new == "dir":
            paths[0].unlink()
            paths[0].mkdir()
        else:
            paths[0].write_text(json.dumps(new if new is not None else data))
        board = tmp / "board"
        board.mkdir()
        (board / "tracks.yaml").write_text(synthetic_tracks_yaml())
        if command == "ceg":
            return ["ceg", "--ref", str(paths[0]), "--new", str(paths[1]), "--json"]
        return ["submit", *map(str, paths), "--track", "toy", "--description", "d", "--contributors", "me",
                "--leaderboard-dir", str(board), "--no-plots"]  # fmt: skip

    return build


def setp(path: str, value):
    def mutate(d: dict):
        node = d
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


DELETE = object()

RECORD_CASES = {
    "top-level list": Case(record_case(lambda d: [d]), ("record.json", "(top level)", "JSON object")),
    "curve point missing key": Case(
        record_case(setp("curve.0.val_bpb", DELETE)), ("curve[0].val_bpb", "required")
    ),
    "curve point extra key": Case(record_case(setp("curve.1.bogus", 1)), ("curve[1].bogus", "no such field")),
    "curve a string": Case(record_case(setp("curve", "abc")), ("'curve'", "'abc'", "a list")),
    "config a string": Case(record_case(setp("config", "abc")), ("'config'", "'abc'", "mapping")),
    "val_loss null": Case(
        record_case(setp("curve.2.val_loss", None)), ("curve[2].val_loss", "None", "diverged")
    ),
    "data null": Case(record_case(setp("data", None)), ("'data'", "None", "mapping")),
    "partial to_target": Case(record_case(setp("to_target.flops", DELETE)), ("to_target.flops", "required")),
    "seed zero string": Case(record_case(setp("seed", "zero")), ("'seed'", "'zero'", "integer")),
    "seed bool": Case(record_case(setp("seed", True)), ("'seed'", "True", "integer")),
    "status bogus": Case(record_case(setp("status", "bogus")), ("'status'", "'bogus'", "reached")),
    "NaN loss": Case(
        record_case(setp("curve.3.val_loss", float("nan"))), ("curve[3].val_loss", "nan", "finite")
    ),
    "Infinity flops": Case(
        record_case(setp("curve.0.flops", float("inf"))), ("curve[0].flops", "inf", "finite")
    ),
    "negative tokens": Case(record_case(setp("curve.0.tokens", -5)), ("curve[0].tokens", "-5", ">= 0")),
    "string step": Case(record_case(setp("curve.0.step", "10")), ("curve[0].step", "'10'", "integer")),
    "not JSON": Case(record_case(lambda d: b"{not json"), ("record.json", "not valid JSON")),
    "not UTF-8": Case(record_case(lambda d: b'{"run_id": "\xff"}'), ("record.json", "not UTF-8")),
    "record is a directory": Case(record_case(lambda d: "dir"), ("record.json", "directory")),
    "newer schema": Case(record_case(setp("schema_version", 99)), ("schema_version 99", "Upgrade lit_algos")),
    "run id with slash": Case(record_case(setp("run_id", "../evil")), ("'run_id'", "'../evil'", "matching")),
    "train_curve bad pair": Case(
        record_case(setp("train_curve", [[1]])), ("train_curve[0]", "[1]", "[step, loss]")
    ),
    "params negative": Case(record_case(setp("params", {"total": -1})), ("params.total", "-1", ">= 0")),
    "world_size zero": Case(record_case(setp("world_size", 0)), ("'world_size'", "0", ">= 1")),
    "reached a string": Case(record_case(setp("reached", "yes")), ("'reached'", "'yes'", "true or false")),
    "target_loss negative": Case(record_case(setp("target_loss", -1.0)), ("'target_loss'", "-1.0", "> 0")),
    "missing run_id": Case(record_case(setp("run_id", DELETE)), ("'run_id'", "required")),
    "config section a list": Case(record_case(setp("config.model", [1])), ("config.model", "mapping")),
    "submit: curve a string": Case(
        record_case(setp("curve", "abc"), "submit"), ("'curve'", "'abc'", "a list")
    ),
    "submit: status bogus": Case(
        record_case(setp("status", "bogus"), "submit"), ("'status'", "'bogus'", "budget_exhausted")
    ),
}


# ---- leaderboard entries (the board skips them; verify, which names one, refuses it) -----------
def entry_case(mutate: Callable[[dict], object]) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        from lit_algos.leaderboard.entries import submit

        board = tmp / "board"
        board.mkdir()
        (board / "tracks.yaml").write_text(synthetic_tracks_yaml())
        from lit_algos.analysis.synthetic import synthetic_reference

        reference = synthetic_reference(1e6)
        submit(
            synthetic_seeds("ent"),
            "toy",
            "d",
            ["me"],
            name="e1",
            leaderboard_dir=board,
            plots=False,
            reference=reference,
        )
        path = board / "entries" / "toy" / "e1.json"
        data = json.loads(path.read_text())
        new = mutate(data)
        path.write_text(json.dumps(new if new is not None else data))
        return ["verify", "e1", "--leaderboard-dir", str(board), "--runs-dir", str(tmp / "rerun")]

    return build


ENTRY_CASES = {
    "runs not a list": Case(entry_case(setp("runs", "abc")), ("e1.json", "'runs'", "'abc'", "a list")),
    "no runs": Case(entry_case(setp("runs", [])), ("e1.json", "'runs'", "non-empty")),
    "contributors a string": Case(
        entry_case(setp("contributors", "me")), ("'contributors'", "'me'", "a list")
    ),
    "statistics NaN": Case(
        entry_case(setp("statistics.mean_final_loss", float("nan"))), ("statistics.mean_final_loss", "finite")
    ),
    "bad id": Case(entry_case(setp("id", "../x")), ("'id'", "'../x'", "matching")),
    "run inside malformed": Case(
        entry_case(setp("runs.0.curve.0.val_loss", "low")), ("runs[0].curve[0].val_loss", "'low'", "number")
    ),
    "digest count": Case(
        entry_case(setp("run_digests", ["sha256:0"])), ("'run_digests'", "one digest per run")
    ),
    "edited after submission": Case(
        entry_case(setp("runs.0.curve.0.val_loss", 1.0)), ("e1", "integrity checks", "runs[0]", "digest")
    ),
}


# ---- tracks.yaml ---------------------------------------------------------------------------
def tracks(edit: Callable[[str], str] | bytes) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        board = tmp / "board"
        board.mkdir()
        text = edit if isinstance(edit, bytes) else edit(synthetic_tracks_yaml()).encode()
        (board / "tracks.yaml").write_bytes(text)
        return ["leaderboard", "--leaderboard-dir", str(board), "--no-write"]

    return build


def sub(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return edit


TRACK_CASES = {
    "alpha low": Case(tracks(sub("alpha: 0.01", "alpha: low")), ("toy.alpha", "'low'", "between 0 and 1")),
    "alpha 2": Case(tracks(sub("alpha: 0.01", "alpha: 2")), ("toy.alpha", "2", "between 0 and 1")),
    "alpha bool": Case(
        tracks(sub("alpha: 0.01", "alpha: true")), ("toy.alpha", "True", "significance level")
    ),
    "val_tokens string": Case(
        tracks(sub("val_tokens: 65536", "val_tokens: many")), ("toy.val_tokens", "'many'", "positive integer")
    ),
    "target negative": Case(
        tracks(sub("target_loss: 3.5", "target_loss: -1")), ("toy.target_loss", "-1", "> 0")
    ),
    "target nan": Case(
        tracks(sub("target_loss: 3.5", "target_loss: .nan")), ("toy.target_loss", "nan", "finite")
    ),
    "min seeds 1": Case(
        tracks(sub("min_seeds_for_significance: 3", "min_seeds_for_significance: 1")),
        ("toy.min_seeds_for_significance", "1", ">= 2"),
    ),
    "rules a string": Case(
        tracks(sub("rules: [Synthetic runs only.]", "rules: just one")), ("toy.rules", "'just one'", "list")
    ),
    "unknown field": Case(
        tracks(sub("alpha: 0.01", "alpha: 0.01\n    colour: red")),
        ("toy.colour", "'red'", "Known track fields"),
    ),
    "enforce_hardware string": Case(
        tracks(sub("alpha: 0.01", "alpha: 0.01\n    enforce_hardware: 'yes'")),
        ("toy.enforce_hardware", "'yes'", "true or false"),
    ),
    "baseline a number": Case(
        tracks(sub("baseline: null", "baseline: 3")), ("toy.baseline", "3", "entry id")
    ),
    "tracks a list": Case(tracks(lambda t: "tracks: [a, b]\n"), ("tracks.yaml", "'tracks:' mapping")),
    "tracks not yaml": Case(tracks(lambda t: "tracks: {a: [\n"), ("tracks.yaml", "not valid YAML")),
    "tracks not utf8": Case(tracks(b"tracks:\n  \xff: 1\n"), ("tracks.yaml", "not UTF-8")),
}


# ---- places on disk ------------------------------------------------------------------------
DISK_CASES = {
    "runs dir is a file": Case(
        lambda tmp: (tmp / "runs").write_text("x") and ["train", "debug", "--runs-dir", str(tmp / "runs")],
        ("runs", "file is in the way", "runs directory"),
    ),
    "cache dir is a file": Case(
        lambda tmp: (
            (tmp / "cache").write_text("x")
            and [
                "data",
                "prepare",
                "--corpus",
                "kjv",
                "--tokenizer",
                "bpe:300",
                "--cache-dir",
                str(tmp / "cache"),
            ]
        ),
        ("cache", "file is in the way", "data cache"),
    ),
    "leaderboard dir is a file": Case(
        lambda tmp: (tmp / "lb").write_text("x") and ["leaderboard", "--leaderboard-dir", str(tmp / "lb")],
        ("lb", "tracks.yaml"),
    ),
}

ALL = {
    **{f"recipe: {k}": v for k, v in RECIPE_CASES.items()},
    **{f"override: {k}": v for k, v in OVERRIDE_CASES.items()},
    **{f"cli: {k}": v for k, v in CLI_CASES.items()},
    **{f"shards: {k}": v for k, v in SHARD_CASES.items()},
    **{f"record: {k}": v for k, v in RECORD_CASES.items()},
    **{f"tracks: {k}": v for k, v in TRACK_CASES.items()},
    **{f"entry: {k}": v for k, v in ENTRY_CASES.items()},
    **{f"disk: {k}": v for k, v in DISK_CASES.items()},
}


def test_the_corpus_is_large():
    assert len(ALL) >= 60


@pytest.mark.parametrize("name", list(ALL))
def test_malformed_input_is_a_clear_error(name, tmp_path, monkeypatch, capsys, tokenizer_file):
    case = ALL[name]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("LIT_ALGOS_CACHE", str(work / "default-cache"))
    monkeypatch.setenv("LIT_ALGOS_RUNS", str(work / "default-runs"))
    monkeypatch.setenv("LIT_ALGOS_LEADERBOARD", str(work / "board"))
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tok.json").write_bytes(tokenizer_file.read_bytes())
    args = case.build(work)
    before = snapshot(work)
    code = main(args)
    out, err = capsys.readouterr()
    text = " ".join((out + err).split())
    assert code == 2, f"exit {code}: {text}"
    assert "Traceback" not in text
    for needle in case.expect:
        assert needle in text, f"{needle!r} not in: {text}"
    assert snapshot(work) == before, "files were created or changed"
