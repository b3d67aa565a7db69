"""``lit-algos sample`` and ``lit-algos export``: use a trained run (``lit_algos.inference``, ``lit_algos.export``)."""

from __future__ import annotations

from pathlib import Path

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
    e.add_argument("--out", type=Path, required=True, help="output directory")
    e.add_argument("--runs-dir", type=Path, default=None, help="where run ids are looked up")
    e.set_defaults(func=cmd_export)


def cmd_sample(args) -> int:
    from lit_algos.inference import load_run, sample

    run = load_run(args.run, args.runs_dir)
    text = sample(
        run, args.prompt, tokens=args.tokens, temperature=args.temperature, top_k=args.top_k, seed=args.seed
    )
    print(text)
    return 0


def cmd_export(args) -> int:
    from lit_algos.export import export_run
    from lit_algos.inference import load_run

    run = load_run(args.run, args.runs_dir)
    for path in export_run(run, args.out, args.fmt):
        print(path)
    return 0
