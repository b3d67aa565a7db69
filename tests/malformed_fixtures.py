"""The hostile-user corpus's shared pieces (tests/test_malformed_inputs.py): a case, the folder
snapshot every case is checked against, and the data cases, which build a corpus, a prepared
dataset or shards in the case's folder before the command runs: a prepared dataset edited by hand
(``CACHE_CASES``) and data too small to train on (``ZERO_CASES``); and the board's inputs, which
write run records, entries or a tracks file first (``RECORD_CASES``, ``ENTRY_CASES``,
``TRACK_CASES``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lit_algos.analysis.synthetic import synthetic_seeds, synthetic_tracks_yaml
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


# ---- data: a prepared dataset edited by hand, data too small to train on --------------------
def small_corpus(tmp: Path) -> Path:
    path = tmp / "corpus.txt"
    path.write_text("\n\n".join(f"and the light {i} was good, and the evening was {i}." for i in range(2000)))
    return path


def data_flags(corpus: Path, **extra: str) -> list[str]:
    sets = {"data.corpus": str(corpus), "data.tokenizer": "bpe:300", "data.val_tokens": "1000",
            "model.vocab_size": "512", **extra}  # fmt: skip
    return [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]


def prepared_then(edit: str) -> Callable[[Path], list[str]]:
    """A small corpus prepared into the cache, then one of its files edited by hand."""

    def build(tmp: Path) -> list[str]:
        from lit_algos.config.data import DataConfig
        from lit_algos.data import prepare_dataset
        from lit_algos.data.shards import HEADER_BYTES, read_header

        corpus = small_corpus(tmp)
        ds = prepare_dataset(DataConfig(corpus=str(corpus), tokenizer="bpe:300", val_tokens=1000))
        tok_path = ds.root / "tokenizer.json"
        if edit.startswith("train id"):
            shard = ds.train_files[0]
            tokens = np.memmap(shard, dtype=read_header(shard).dtype, mode="r+", offset=HEADER_BYTES)
            tokens[100] = int(edit.split()[-1])
            tokens.flush()
        elif edit == "tokenizer truncated":
            tok_path.write_bytes(tok_path.read_bytes()[:500])
        elif edit == "tokenizer rank changed":
            data = json.loads(tok_path.read_text())
            data["mergeable_ranks"][300 - 2] = data["mergeable_ranks"][0]
            tok_path.write_text(json.dumps(data))
        elif edit == "tokenizer without its pattern":
            data = json.loads(tok_path.read_text())
            del data["pattern"]
            tok_path.write_text(json.dumps(data))
        elif edit == "tokenizer of another dataset":
            tok_path.write_bytes((tmp.parent / "tok" / "tok.json").read_bytes())
        elif edit == "tokenizer deleted":
            tok_path.unlink()
        elif edit == "cached tokenizer corrupt":  # read when another dataset of the corpus is prepared
            (cached,) = (tmp / "default-cache" / "tokenizers").glob("*.json")
            data = json.loads(cached.read_text())
            del data["mergeable_ranks"]  # the right format, its merges lost
            cached.write_text(json.dumps(data))
            return [
                "train",
                "debug",
                *data_flags(corpus, **{"data.val_tokens": "900"}),
                "--runs-dir",
                str(tmp / "r"),
            ]
        return ["train", "debug", *data_flags(corpus), "--runs-dir", str(tmp / "runs")]

    return build


CACHE_CASES = {  # a prepared dataset is re-checked when it is loaded
    "train id at the vocabulary": Case(
        prepared_then("train id 300"),
        ("train token id 300", "ids 0..299", "train_000000.bin changed", "prepare it"),
    ),
    "train id far above": Case(prepared_then("train id 65000"), ("train token id 65000", "ids 0..299")),
    "tokenizer truncated": Case(
        prepared_then("tokenizer truncated"), ("tokenizer.json", "Cannot read", "prepare")
    ),
    "tokenizer rank changed": Case(
        prepared_then("tokenizer rank changed"), ("tokenizer.json", "corrupt", "prepare")
    ),
    "tokenizer without its pattern": Case(
        prepared_then("tokenizer without its pattern"), ("tokenizer.json", "'pattern'", "must hold")
    ),
    "tokenizer of another dataset": Case(
        prepared_then("tokenizer of another dataset"), ("tokenizer.json", "not the one", "prepare again")
    ),
    "tokenizer deleted": Case(
        prepared_then("tokenizer deleted"), ("lost its tokenizer.json", "prepare again")
    ),
    "cached tokenizer corrupt": Case(
        prepared_then("cached tokenizer corrupt"),
        ("Tokenizer file", "bpe300", "corrupt", "'mergeable_ranks'", "prepare again"),
    ),
}


def few_tokens(train: int, val: int = 3000, command: str = "train") -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        d = tmp / "sh"
        write_shard(d / "x_val_000000.bin", np.arange(val) % 250)
        write_shard(d / "x_train_000001.bin", np.arange(train) % 250)
        tok = tmp.parent / "tok" / "tok.json"
        if command == "prepare":
            return [
                "data",
                "prepare",
                "--shards",
                str(d),
                "--tokenizer",
                f"file:{tok}",
                "--val-tokens",
                "1000",
            ]
        sets = [
            "--set",
            f"data.shards={d}",
            "--set",
            f"data.tokenizer=file:{tok}",
            "--set",
            "data.val_tokens=1000",
        ]
        return ["train", "debug", *sets, "--runs-dir", str(tmp / "runs")]

    return build


ZERO_CASES = {  # refused data leaves no run folder, manifest or tokenizer behind
    "train shard of 0 tokens": Case(
        few_tokens(0), ("train shards", "hold 0 tokens", "at least one sequence")
    ),
    "train shard of 1 token": Case(few_tokens(1, command="prepare"), ("x_train_000001.bin", "hold 1 tokens")),
    "val shard of 0 tokens": Case(
        few_tokens(50, val=0), ("validation shards", "hold 0 tokens", "needs 1001")
    ),
    "train shorter than a sequence": Case(few_tokens(20), ("train split", "20 tokens", "one sequence of 33")),
    "corpus short of validation tokens": Case(
        lambda tmp: [
            "train",
            "debug",
            *data_flags(small_corpus(tmp), **{"data.val_tokens": "100000"}),
            "--runs-dir",
            str(tmp / "runs"),
        ],  # fmt: skip
        ("yields only", "data.val_tokens=100000", "Lower data.val_tokens"),
    ),
    "corpus with no validation documents": Case(
        lambda tmp: [
            "train",
            "debug",
            *data_flags(small_corpus(tmp), **{"data.val_fraction": "1e-6"}),
            "--runs-dir",
            str(tmp / "runs"),
        ],  # fmt: skip
        ("yields only 0 validation tokens", "data.val_fraction=1e-06", "raise data.val_fraction"),
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
        from lit_algos.leaderboard.submit import submit

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
