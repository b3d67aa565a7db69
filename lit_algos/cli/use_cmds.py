"""``lit-algos sample`` and ``lit-algos export``: use a trained run (``lit_algos.inference``, ``lit_algos.export``)."""

from __future__ import annotations

from pathlib import Path

from lit_algos.errors import ConfigError
from lit_algos.utils.io import ensure_dir, undone_on_error

RUN_HELP = "a run directory, its record.json, or a run id under --runs-dir"


def register(sub) -> None:
    s = sub.add_parser("sample", help="generate text from a run's last checkpoint")
    s.add_argument("run", help=RUN_HELP)
    s.add_argument("--prompt", default="", help="text to continue (default: start of a document)")
    s.add_argument("--tokens", type=int, default=100, help="tokens to generate (default 100)")
    s.add_argument(
        "--temperature", type=float, default=0.8, help="0 = always the likeliest token (default 0.8)"
    )
    s.add_argument("--top-k", type=int, default=50, help="sample among the k likeliest tokens (default 50)")
    s.add_argument("--seed", type=int, default=0, help="the same seed gives the same text (default 0)")
    s.add_argument("--runs-dir", type=Path, default=None, help="where run ids are looked up")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser(
        "export", help="write a run's weights as safetensors or a Hugging Face model directory"
    )
    e.add_argument("run", help=RUN_HELP)
    e.add_argument(
        "--format",
        dest="fmt",
        choices=("safetensors", "hf"),
        default="safetensors",
        help="safetensors: the weights under lit_algos's names + lit_algos_config.json (default); hf: a directory "
        "transformers loads (Llama, Qwen3 or GPT-2, whichever computes the model exactly)",
    )
    e.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output directory (created if needed; files of the same names already in it are refused "
        "unless --overwrite)",
    )
    e.add_argument(
        "--overwrite", action="store_true", help="replace files of the same names already in --out"
    )
    e.add_argument("--runs-dir", type=Path, default=None, help="where run ids are looked up")
    e.set_defaults(func=cmd_export)


MAX_SAMPLE_TOKENS = 100_000  # beyond this a CPU generates for hours: a typo, not a request


def check_sample_args(args) -> None:
    """The sampling flags, checked before the run is loaded."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    import math

    if not 1 <= args.tokens <= MAX_SAMPLE_TOKENS:
        raise ConfigError(
            "--tokens", args.tokens, f"A number of tokens to generate from 1 to {MAX_SAMPLE_TOKENS:,}."
        )
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise ConfigError(
            "--temperature",
            args.temperature,
            "A finite number >= 0 (0 = always the likeliest token; 0.8 default).",
        )
    if args.top_k < 1:
        raise ConfigError(
            "--top-k", args.top_k, "An integer >= 1 (the k likeliest tokens are sampled among)."
        )
    if not 0 <= args.seed < 2**63:
        raise ConfigError("--seed", args.seed, "An integer from 0 to 2**63 - 1.")


def cmd_sample(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.inference import load_run, sample

    check_sample_args(args)
    run = load_run(args.run, args.runs_dir)
    text = sample(
        run, args.prompt, tokens=args.tokens, temperature=args.temperature, top_k=args.top_k, seed=args.seed
    )
    print(text)
    return 0


def cmd_export(args) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.inference import load_run

    out = check_export_out(args.out)
    run = load_run(args.run, args.runs_dir)
    for path in export_into(run, out, args.fmt, args.overwrite):
        print(path)
    return 0


def check_export_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise ConfigError(
            "--out", str(out), "A directory to write the model files into (new or existing); this is a file."
        )
    return out


def export_into(run, out: Path, fmt: str, overwrite: bool) -> list[Path]:
    """Export into a staging folder beside ``out``, then move the files in: a refused or failed
    export leaves ``out`` as it was, and files already there are replaced only with ``overwrite``."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    import os
    import shutil
    import tempfile

    from lit_algos.export import export_run

    base = next(p for p in (out.parent, *out.parent.parents) if p.exists())  # beside out: same file system
    with undone_on_error(out):
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=base))
        try:
            files = export_run(run, staging, fmt)
            clash = sorted(p.name for p in files if (out / p.name).exists())
            if clash and not overwrite:
                raise ConfigError(
                    "--out",
                    str(out),
                    f"It already holds {', '.join(clash)}, which this export would replace. Choose an empty or new "
                    "directory, or pass --overwrite to replace them.",
                )
            ensure_dir(out, "write the export into")
            for p in files:
                os.replace(p, out / p.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [out / p.name for p in files]
