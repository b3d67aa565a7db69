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
from pathlib import Path

import numpy as np
import pytest

from lit_algos.analysis.synthetic import synthetic_seeds, synthetic_tracks_yaml
from lit_algos.cli import main
from lit_algos.data.shards import write_shard

from .malformed_fixtures import (
    CACHE_CASES,
    ENTRY_CASES,
    RECORD_CASES,
    TRACK_CASES,
    ZERO_CASES,
    Case,
    record_case,
    snapshot,
    tracks,
)


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


# ---- issue 25: the classes that still ended in a traceback, a hang, an unwanted write -----------
def trainer(*items: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["train", "debug", *items, "--runs-dir", str(tmp / "runs")]


TRAINER_CASES = {  # --trainer.KEY=VALUE is checked against lightning.Trainer's signature and values
    "string for a number": Case(
        trainer("--trainer.limit_test_batches=abc"),
        ("train.trainer.limit_test_batches", "'abc'", "a number or an integer or null"),
    ),
    "bool for a number": Case(
        trainer("--trainer.limit_test_batches=true"), ("limit_test_batches", "True", "an integer")
    ),
    "list for a number": Case(
        trainer("--trainer.limit_predict_batches=[2]"), ("limit_predict_batches", "[2]", "a number")
    ),
    "owned by lit_algos": Case(
        trainer("--trainer.log_every_n_steps=10"),
        ("train.trainer.log_every_n_steps", "10", "train.log_every"),
    ),
    "string for a bool": Case(
        trainer("--trainer.detect_anomaly=maybe"),
        ("train.trainer.detect_anomaly", "'maybe'", "true or false"),
    ),
    "list for a bool": Case(
        trainer("--trainer.benchmark=[1]"), ("train.trainer.benchmark", "[1]", "true or false")
    ),
    "number for a choice": Case(
        trainer("--trainer.deterministic=3"), ("train.trainer.deterministic", "3", "'warn'")
    ),
    "a value Lightning refuses": Case(
        trainer("--trainer.gradient_clip_algorithm=bogus"),
        ("train.trainer.gradient_clip_algorithm", "'bogus'", "['value', 'norm']"),
    ),
    "unknown profiler": Case(
        trainer("--trainer.profiler=nope"), ("train.trainer.profiler", "'nope'", "'simple'")
    ),
    "no such argument": Case(
        trainer("--trainer.colour=red"), ("train.trainer.colour", "'red'", "no argument")
    ),
}


def sample(*flags: str) -> Callable[[Path], list[str]]:
    return argv("sample", "some-run", "--runs-dir", "{tmp}/runs", *flags)


SAMPLE_CASES = {  # checked before the run is even looked up
    "tokens 0": Case(sample("--tokens", "0"), ("--tokens", "0", "from 1 to 100,000")),
    "tokens negative": Case(sample("--tokens", "-5"), ("--tokens", "-5", "from 1 to")),
    "tokens ten million": Case(sample("--tokens", "10000000"), ("--tokens", "10000000", "to 100,000")),
    "temperature NaN": Case(sample("--temperature", "nan"), ("--temperature", "nan", "finite number >= 0")),
    "temperature inf": Case(sample("--temperature", "inf"), ("--temperature", "inf", "finite number >= 0")),
    "temperature negative": Case(sample("--temperature", "-0.5"), ("--temperature", "-0.5", ">= 0")),
    "top-k 0": Case(sample("--top-k", "0"), ("--top-k", "0", "integer >= 1")),
    "top-k negative": Case(sample("--top-k", "-3"), ("--top-k", "-3", "integer >= 1")),
    "seed negative": Case(sample("--seed", "-1"), ("--seed", "-1", "0 to 2**63 - 1")),
    "seed past 64 bits": Case(sample("--seed", str(2**64)), ("--seed", str(2**64), "0 to 2**63 - 1")),
}


def export_into(*names: str, fmt: str = "safetensors") -> Callable[[Path], list[str]]:
    """Export the trained debug run into a folder already holding files of these names."""

    def build(tmp: Path) -> list[str]:
        out = tmp / "out"
        out.mkdir()
        for name in names:
            (out / name).write_text("someone else's file")
        (out / "notes.txt").write_text("unrelated files may stay")
        return ["export", str(DEBUG_RUN[0]), "--format", fmt, "--out", str(out)]

    return build


EXPORT_CASES = {
    "--out names a file": Case(
        lambda tmp: (tmp / "afile").write_text("x") and ["export", "some-run", "--out", str(tmp / "afile")],
        ("--out", "afile", "this is a file"),
    ),
    "--out empty": Case(argv("export", "some-run", "--out", ""), ("--out", "''", "current directory")),
    "weights already there": Case(
        export_into("model.safetensors"), ("--out", "model.safetensors", "--overwrite")
    ),
    "tokenizer already there": Case(
        export_into("tokenizer.json"), ("--out", "tokenizer.json", "--overwrite")
    ),
    "hf config already there": Case(
        export_into("config.json", fmt="hf"), ("--out", "'", "already holds config.json", "--overwrite")
    ),
}

DEEP = 5000
DEEP_CASES = {  # the parsers' RecursionError becomes one sentence
    "recipe nested 5000 deep": Case(
        recipe("model:\n" + "".join("  " * i + f"a{i}:\n" for i in range(1, DEEP)) + "  " * DEEP + "x: 1\n"),
        ("bad.yaml", "too deeply", "a few levels deep"),
    ),
    "recipe list nested 5000 deep": Case(
        recipe("model: " + "[" * DEEP + "]" * DEEP + "\n", command="describe"), ("bad.yaml", "too deeply")
    ),
    "override nested 5000 deep": Case(
        override("model.attention=" + "[" * DEEP + "]" * DEEP), ("model.attention", "[[[[", "too deeply")
    ),
    "tracks.yaml nested 5000 deep": Case(
        tracks(lambda t: "tracks: " + "[" * DEEP + "]" * DEEP + "\n"), ("tracks.yaml", "too deeply")
    ),
    "study nested 5000 deep": Case(
        lambda tmp: (
            (tmp / "s.yaml").write_text("runs: " + "{a: " * DEEP + "1" + "}" * DEEP)
            and ["study", str(tmp / "s.yaml"), "--dry-run", "--runs-dir", str(tmp / "runs")]
        ),
        ("s.yaml", "too deeply"),
    ),
    "record nested 100000 deep": Case(
        record_case(lambda d: ("[" * 100_000 + "]" * 100_000).encode()), ("record.json", "nested too deeply")
    ),
}

EMPTY_CASES = {  # nothing set is refused: an empty recipe would train the defaults, "" is the cwd
    "empty recipe": Case(recipe(""), ("bad.yaml", "is empty", "extends")),
    "recipe of comments": Case(recipe("# to do\n"), ("bad.yaml", "is empty", "extends")),
    "recipe {}": Case(recipe("{}\n"), ("bad.yaml", "is empty", "model, optim, data or train")),
    "recipe with a description only": Case(recipe("description: soon\n"), ("bad.yaml", "is empty")),
    "--runs-dir empty": Case(
        argv("train", "debug", "--runs-dir", ""), ("--runs-dir", "''", "current directory")
    ),
    "--runs-dir= empty": Case(
        argv("train", "debug", "--runs-dir="), ("--runs-dir", "''", "current directory")
    ),
    "--cache-dir empty": Case(
        argv("data", "prepare", "--corpus", "kjv", "--tokenizer", "bpe:300", "--cache-dir", ""),
        ("--cache-dir", "''", "current directory"),
    ),
    "--leaderboard-dir empty": Case(
        argv("leaderboard", "--leaderboard-dir", "", "--no-write"), ("--leaderboard-dir", "''", "directory")
    ),
}


def sweep(kind: str, *flags: str) -> Callable[[Path], list[str]]:
    return argv("sweep", kind, "--dry-run", "--runs-dir", "{tmp}/runs", *flags)


SWEEP_CASES = {  # a dry run refuses what the real run would refuse
    "seeds 0": Case(sweep("scaling", "--seeds", "0"), ("--seeds", "0", "integer >= 1")),
    "seeds -2": Case(sweep("ablation", "--seeds", "-2"), ("--seeds", "-2", "integer >= 1")),
    "workers 0": Case(sweep("scaling", "--workers", "0"), ("--workers", "0", "integer >= 1")),
    "threads 0": Case(sweep("ablation", "--threads", "0"), ("--threads", "0", "integer >= 1")),
    "slurm time abc": Case(sweep("scaling", "--slurm-time", "abc"), ("--slurm-time", "'abc'", "HH:MM:SS")),
    "slurm time 0": Case(sweep("scaling", "--slurm-time", "0"), ("--slurm-time", "'0'", "at least a minute")),
    "slurm time 1:2:3:4": Case(
        sweep("scaling", "--slurm-time", "1:2:3:4"), ("--slurm-time", "'1:2:3:4'", "D-HH")
    ),
    "slurm memory negative": Case(sweep("scaling", "--slurm-mem-gb", "-1"), ("--slurm-mem-gb", "-1", "> 0")),
    "slurm cpus 0": Case(
        sweep("ablation", "--slurm-cpus-per-task", "0"), ("--slurm-cpus-per-task", "0", ">= 1")
    ),
    "study workers 0": Case(
        argv("study", "gundlach", "--quick", "--dry-run", "--workers", "0", "--runs-dir", "{tmp}/runs"),
        ("--workers", "0", "integer >= 1"),
    ),
}


def report_only(setup: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        runs = tmp / "runs"
        if setup != "missing":
            runs.mkdir()
        if setup == "other runs":
            for r in synthetic_seeds("toyrec"):
                r.save(runs / r.run_id / "record.json")
        return ["study", "gundlach", "--quick", "--report-only", "--runs-dir", str(runs)]

    return build


STUDY_CASES = {  # --report-only with nothing to report is refused before study.json or report.md
    "empty runs folder": Case(report_only("empty"), ("--report-only", "none of the", "is finished", "/runs")),
    "missing runs folder": Case(report_only("missing"), ("--report-only", "'gundlach'", "--runs-dir")),
    "only other runs": Case(report_only("other runs"), ("--report-only", "none of the", "Train them first")),
}

LSTM_CASES = {  # an LSTM has no attention or feed-forward layer: their options would be ignored
    "qk-norm": Case(
        override("model.mixer=lstm", "model.attention.qk_norm=true", command="describe"),
        ("model.attention.qk_norm", "True", "mixer=lstm", "leave model.attention at its default"),
    ),
    "gqa": Case(
        override("model.mixer=lstm", "model.attention.kind=gqa", "model.attention.n_kv_head=1"),
        ("model.attention.kind", "'gqa'", "no attention layer"),
    ),
    "manual backend": Case(
        override("model.mixer=lstm", "model.attention.backend=manual", command="describe"),
        ("model.attention.backend", "'manual'", "mixer=lstm"),
    ),
    "swiglu": Case(
        override("model.mixer=lstm", "model.mlp.kind=swiglu"),
        ("model.mlp.kind", "'swiglu'", "no feed-forward layer"),
    ),
    "mlp hidden": Case(
        override("model.mixer=lstm", "model.mlp.hidden=64", command="describe"),
        ("model.mlp.hidden", "64", "default"),
    ),
    "recipe file": Case(
        recipe("extends: lstm\nmodel:\n  attention: {kind: mla}\n"),
        ("model.attention.kind", "'mla'", "mixer=lstm"),
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
    **{f"trainer: {k}": v for k, v in TRAINER_CASES.items()},
    **{f"sample: {k}": v for k, v in SAMPLE_CASES.items()},
    **{f"export: {k}": v for k, v in EXPORT_CASES.items()},
    **{f"deep: {k}": v for k, v in DEEP_CASES.items()},
    **{f"empty: {k}": v for k, v in EMPTY_CASES.items()},
    **{f"cache: {k}": v for k, v in CACHE_CASES.items()},
    **{f"zero: {k}": v for k, v in ZERO_CASES.items()},
    **{f"sweep: {k}": v for k, v in SWEEP_CASES.items()},
    **{f"study: {k}": v for k, v in STUDY_CASES.items()},
    **{f"lstm: {k}": v for k, v in LSTM_CASES.items()},
}
DEBUG_RUN: list[Path] = []  # the trained run folder the export cases use (debug_run fixture)


def test_the_corpus_is_large():
    assert len(ALL) >= 60


@pytest.fixture(scope="module")
def debug_run(data_cache, tmp_path_factory) -> Path:
    """One trained run of the debug recipe, outside the folders the cases snapshot."""
    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train

    runs = tmp_path_factory.mktemp("debug-run")
    record = train(load_config("debug", ["train.max_tokens=2048"]), runs_dir=runs, progress=False)
    DEBUG_RUN[:] = [runs / record.run_id]
    return DEBUG_RUN[0]


@pytest.mark.parametrize("name", list(ALL))
def test_malformed_input_is_a_clear_error(name, tmp_path, monkeypatch, capsys, tokenizer_file, request):
    case = ALL[name]
    if name.startswith("export: ") and "already there" in name:
        request.getfixturevalue("debug_run")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # "" as a path would be the working directory: it is watched too
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


# ---- disk full while training (issue 25) ----------------------------------------------------------
@pytest.mark.parametrize("full_at", [1, 2])  # the first checkpoint, or a later one
def test_disk_full_while_training_leaves_no_partial_file_and_says_what_is_left(
    full_at, data_cache, tmp_path, monkeypatch, capsys
):
    """Issue 25: a partial last.ckpt.tmp and a 'running' record stayed, under a message saying
    nothing was left half-written. The disk filling up is simulated where it happens: the
    checkpoint writer gets part of the file out, then ENOSPC."""
    import errno

    import lightning as L

    real, calls = L.Trainer.save_checkpoint, []

    def save(self, filepath, weights_only=False, storage_options=None):
        calls.append(filepath)
        if len(calls) >= full_at:
            Path(filepath).parent.mkdir(parents=True, exist_ok=True)
            Path(filepath).write_bytes(b"PK\x03\x04 the first bytes of a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device", str(filepath))
        return real(self, filepath, weights_only, storage_options)

    monkeypatch.setattr(L.Trainer, "save_checkpoint", save)
    runs = tmp_path / "runs"
    code = main(
        ["train", "debug", "--set", "train.max_tokens=8192", "--runs-dir", str(runs), "--no-progress"]
    )
    out, err = capsys.readouterr()
    text = " ".join((out + err).split())
    assert code == 2 and "Traceback" not in text
    assert (
        "is full" in text and "No space left on device" in text and "No partial checkpoint was left" in text
    )
    assert not list(runs.rglob("*.tmp"))  # the partial file is gone
    (record_path,) = runs.glob("*/record.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "failed" and "No space left" in record["error"]  # not "running"
    if full_at == 1:
        assert "it had no checkpoint yet" in text
    else:
        assert (record_path.parent / "checkpoints" / "last.ckpt").is_file() and "--resume" in text
