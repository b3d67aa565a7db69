"""``lit-algos data prepare`` and ``lit-algos data inspect``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from lit_algos.errors import ConfigError, DataError

FLAGS = {  # CLI flag -> DataConfig field
    "corpus": "corpus",
    "tokenizer": "tokenizer",
    "val_tokens": "val_tokens",
    "val_fraction": "val_fraction",
    "max_train_tokens": "max_train_tokens",
    "shards": "shards",
    "cache_dir": "cache_dir",
    "text_field": "text_field",
    "tiktoken_cache_dir": "tiktoken_cache_dir",
}


def register(sub) -> None:
    data = sub.add_parser("data", help="prepare and inspect tokenized datasets (corpora, tokenizers, shards)")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(func=lambda args: data.print_help() or 0)

    p = dsub.add_parser(
        "prepare",
        help="tokenize a corpus into shards with a fixed validation set (cached: a rerun is instant)",
        description="Tokenize a corpus once into llm.c-layout shards plus a fixed validation set, and print its "
        "fingerprints. Cached under --cache-dir (default $LIT_ALGOS_CACHE or ~/.cache/lit_algos).",
    )
    p.add_argument("--recipe", help="start from this recipe's data section (flags below override it)")
    p.add_argument(
        "--corpus",
        help="kjv (bundled, offline), fineweb-edu, openwebtext, tinystories, fineweb10b-gpt2, "
        "hf:<dataset id>[:<config>], or local .txt/.jsonl/.parquet files (file, directory, glob; comma-separated)",
    )
    p.add_argument(
        "--tokenizer",
        help="gpt2 | bpe:<vocab size> (trained with rustbpe on the train split) | file:<tokenizer.json>",
    )
    p.add_argument("--val-tokens", type=int, help="size of the fixed validation set in tokens")
    p.add_argument(
        "--val-fraction", type=float, help="share of documents held out for validation (by hash of their id)"
    )
    p.add_argument(
        "--max-train-tokens",
        type=int,
        help="cap on train tokens (fineweb10b-gpt2: picks the number of 100M-token shards)",
    )
    p.add_argument(
        "--shards", help="use a directory of ready-made *train*.bin / *val*.bin shards instead of a corpus"
    )
    p.add_argument("--cache-dir", help="data cache directory")
    p.add_argument(
        "--text-field", help="text column of jsonl / parquet / Hugging Face corpora (default text)"
    )
    p.add_argument("--tiktoken-cache-dir", help="directory holding the gpt2 files vocab.bpe and encoder.json")
    p.add_argument("--json", action="store_true", help="print the dataset record as JSON")
    p.set_defaults(func=cmd_prepare)

    i = dsub.add_parser(
        "inspect",
        help="show the header, token count, max token id and fingerprint of a shard or dataset",
        description="Validate and describe a token shard (.bin), a prepared dataset directory, or a "
        "directory of shards. A corrupt or truncated shard is reported as an error.",
    )
    i.add_argument(
        "path",
        type=Path,
        help="a .bin shard, a prepared dataset directory (or its manifest.json), or a shards directory",
    )
    i.add_argument(
        "--quick", action="store_true", help="headers only: skip the max-token scan and the fingerprints"
    )
    i.add_argument("--json", action="store_true", help="print the result as JSON")
    i.set_defaults(func=cmd_inspect)


def resolve_data_config(args: argparse.Namespace):
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.config import DataConfig

    base = DataConfig()
    if args.recipe:
        # here, not at the top: `lit-algos --help` loads this module, not what the command runs
        from lit_algos.config.recipes import load_config

        base = load_config(args.recipe).data
    changes = {field: getattr(args, flag) for flag, field in FLAGS.items() if getattr(args, flag) is not None}
    if args.shards and args.corpus is None:
        changes["corpus"] = ""
    try:
        return dataclasses.replace(base, **changes)
    except ConfigError as err:
        raise err.under("data") from None


def cmd_prepare(args: argparse.Namespace) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    import time

    from rich.console import Console
    from rich.table import Table

    from lit_algos.data import prepare_dataset

    console = Console(stderr=args.json)
    cfg = resolve_data_config(args)
    start = time.perf_counter()
    ds = prepare_dataset(cfg, console=console)
    seconds = time.perf_counter() - start
    info = {
        "root": str(ds.root),
        **ds.record_dict(),
        "vocab_size": ds.vocab_size,
        "eot_token": ds.eot_token,
        "train_files": len(ds.train_files),
        "bytes_per_token": round(ds.bytes_per_token, 4),
        "seconds": round(seconds, 3),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    table = Table(title=f"dataset {ds.corpus} / {ds.tokenizer}", show_header=False)
    for key, value in info.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    return 0


def _describe_stream(files: list[Path], quick: bool) -> list[dict]:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.data.shards import TokenStream

    rows = []
    for path in files:
        stream = TokenStream([path])  # validates the header against the file size
        head = stream.headers[0]
        row = {
            "file": str(path),
            "version": head.version,
            "dtype": str(head.dtype),
            "tokens": head.num_tokens,
        }
        if not quick:
            row["max_token"] = stream.max_token()
            row["fingerprint"] = stream.fingerprint()
        rows.append(row)
    return rows


def inspect_path(path: Path, quick: bool = False) -> dict:
    """What ``data inspect`` reports, as a dict; raises DataError for anything corrupt."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.data.prepare import MANIFEST, load_prepared
    from lit_algos.data.shard_sets import _shard_files

    if path.is_file() and path.suffix == ".json" or (path.is_dir() and (path / MANIFEST).is_file()):
        ds = load_prepared(path)  # checks every header and the validation fingerprint
        shards = _describe_stream([*ds.train_files, *ds.val_files], quick)
        top = max((s.get("max_token", -1) for s in shards), default=-1)
        if not quick and top >= ds.vocab_size:
            raise DataError(
                f"Dataset {path} holds token id {top}, outside its vocabulary of {ds.vocab_size}."
            )
        return {
            "kind": "dataset",
            "root": str(ds.root),
            **ds.record_dict(),
            "vocab_size": ds.vocab_size,
            "eot_token": ds.eot_token,
            "max_token": None if quick else top,
            "shards": shards,
        }
    if path.is_file():
        return {"kind": "shard", **_describe_stream([path], quick)[0]}
    if path.is_dir():
        train, val = _shard_files(path)
        files = sorted(set(train) | set(val)) or sorted(path.glob("*.bin"))
        if not files:
            raise DataError(f"{path} holds no .bin shards and no {MANIFEST}.")
        shards = _describe_stream(files, quick)
        return {
            "kind": "shards",
            "root": str(path),
            "tokens": sum(s["tokens"] for s in shards),
            "max_token": None if quick else max(s["max_token"] for s in shards),
            "shards": shards,
        }
    raise DataError(f"{path} does not exist.")


def cmd_inspect(args: argparse.Namespace) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console
    from rich.table import Table

    info = inspect_path(args.path, args.quick)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    console = Console()
    summary = Table(title=f"{info['kind']} {args.path}", show_header=False)
    for key, value in info.items():
        if key not in ("shards", "kind"):
            summary.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(summary)
    if info.get("shards"):
        table = Table(title="shards")
        columns = [
            c
            for c in ("file", "version", "dtype", "tokens", "max_token", "fingerprint")
            if c in info["shards"][0]
        ]
        for col in columns:
            table.add_column(col)
        for row in info["shards"]:
            table.add_row(
                *(
                    f"{row[c]:,}" if isinstance(row[c], int) and c == "tokens" else str(row[c])
                    for c in columns
                )
            )
        console.print(table)
    return 0
