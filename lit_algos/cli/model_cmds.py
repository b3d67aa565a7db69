"""``lit-algos components`` (what can be composed) and ``lit-algos describe`` (what a recipe builds)."""

from __future__ import annotations

import argparse
import json

from lit_algos.cli.train_cmds import add_config_args
from lit_algos.registry import load_all


def register(sub) -> None:
    p = sub.add_parser(
        "components",
        help="list every component axis with its entries, descriptions and options",
        description="The registry axes (attention, mixer, mlp, norm, optimizer, position, schedule) and the other "
        "model switches: each entry's description and the config keys it reads.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_components)

    d = sub.add_parser(
        "describe", help="show a recipe's resolved model config, parameter counts and FLOPs per token"
    )
    d.add_argument(
        "recipe", nargs="?", default=None, help="recipe name or YAML path (default: the built-in defaults)"
    )
    add_config_args(d)
    d.add_argument("--json", action="store_true", help="print JSON instead of tables")
    d.set_defaults(func=cmd_describe)


# Model switches that are not a registry axis (README: Components, "other").
OTHER_SWITCHES = {
    "tie_embeddings": "tied (true) or untied (false) token embedding and LM head",
    "bias": "biases in linear layers and norms on/off",
    "dropout": "dropout probability (0 = off)",
    "logit_softcap": "cap * tanh(logits / cap) on the LM head's output (null = off)",
    "final_norm": "a norm before the LM head",
}


def components_dict() -> dict[str, list[dict]]:
    """{axis: [{name, help, options}]} for every registered axis, then the other model switches,
    as the README's Components table lists them."""

    out = {
        axis: [
            {"name": e.name, "help": e.help, "options": e.option_names(axis)} for e in reg.entries.values()
        ]
        for axis, reg in sorted(load_all().items())
    }
    out["other"] = [{"name": key, "help": text, "options": [key]} for key, text in OTHER_SWITCHES.items()]
    return out


def cmd_components(args: argparse.Namespace) -> int:
    data = components_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console
    from rich.table import Table

    table = Table(title="lit-algos components", show_lines=False)
    table.add_column("axis", style="bold cyan")
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("config options read", style="dim")
    for axis, entries in data.items():
        for i, entry in enumerate(entries):
            table.add_row(axis if i == 0 else "", entry["name"], entry["help"], ", ".join(entry["options"]))
        table.add_section()
    Console().print(table)
    return 0


def describe_model(model_cfg) -> dict:
    """Derived sizes, parameter counts and FLOPs (analytic and measured) of a ModelConfig."""
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.attention_kinds import compare_attention_kinds
    from lit_algos.flops import estimate_flops, measure_flops
    from lit_algos.model import param_counts
    from lit_algos.utils.typed import to_dict

    report = estimate_flops(model_cfg)
    measured = measure_flops(model_cfg)
    ideal = estimate_flops(model_cfg, ideal=True).per_token_train
    return {
        "model": to_dict(model_cfg),
        "derived": {
            "head_size": model_cfg.head_size,
            "n_kv_head": model_cfg.n_kv_head,
            "mlp_hidden": model_cfg.mlp_hidden,
            **_moe_derived(model_cfg),
        },
        "params": param_counts(model_cfg),  # built on the meta device: no memory
        "flops": {
            "seq_len": report.seq_len,
            "per_token_forward": report.per_token_forward,
            "per_token_train": report.per_token_train,
            "breakdown_forward": report.breakdown,
            "measured_per_token_train": measured,
            "relative_difference": (report.per_token_train - measured) / measured if measured else None,
            # sparse attention: the count if masked scores were skipped; CEG uses per_token_train
            "ideal_per_token_train": ideal if ideal != report.per_token_train else None,
        },
        "attention_kinds": compare_attention_kinds(model_cfg),
    }


def _moe_derived(model_cfg) -> dict:
    """Expert width and MoE layers when the feed-forward entry has them."""
    opt = model_cfg.mlp
    if not hasattr(opt, "expert_width"):
        return {}
    layers = [i for i in range(model_cfg.n_layer) if opt.is_moe_layer(i)]
    return {"expert_hidden": opt.expert_width(model_cfg), "moe_layers": ",".join(map(str, layers))}


def cmd_describe(args: argparse.Namespace) -> int:
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from lit_algos.config.recipes import load_config

    cfg = load_config(args.recipe, args.overrides)
    data = {"name": cfg.name, **describe_model(cfg.model)}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.console import Console
    from rich.table import Table

    console = Console()
    config_table = Table(title=f"model of recipe {data['name']!r}", show_header=False)
    config_table.add_column("field", style="bold")
    config_table.add_column("value")
    for key, value in _flatten(data["model"]):
        config_table.add_row(key, repr(value) if value is None else str(value))
    for key, value in data["derived"].items():
        config_table.add_row(f"{key} (derived)", str(value), style="dim")
    console.print(config_table)

    params = Table(title="parameters")
    for key in data["params"]:
        params.add_column(key, justify="right")
    params.add_row(*(f"{v:,}" for v in data["params"].values()))
    console.print(params)

    fl = data["flops"]
    flops = Table(title=f"FLOPs per token (T = {fl['seq_len']}, matmuls only, full T x T attention)")
    flops.add_column("component")
    flops.add_column("forward", justify="right")
    flops.add_column("share", justify="right")
    for key, value in fl["breakdown_forward"].items():
        flops.add_row(key, _si(value), f"{value / fl['per_token_forward']:.1%}")
    flops.add_section()
    flops.add_row("forward (analytic)", _si(fl["per_token_forward"]), "")
    flops.add_row("train = 3 x forward (analytic)", _si(fl["per_token_train"]), "")
    diff = fl["relative_difference"]
    flops.add_row(
        "train (measured, FlopCounterMode)",
        _si(fl["measured_per_token_train"]),
        f"{diff:+.2%}" if diff is not None else "",
    )
    if fl["ideal_per_token_train"] is not None:
        flops.add_row("train, ideal sparse count (not used by CEG)", _si(fl["ideal_per_token_train"]), "")
    console.print(flops)
    if data["attention_kinds"]:
        console.print(_attention_table(data["attention_kinds"]))
    return 0


def _attention_table(rows: list[dict]):
    # here, not at the top: `lit-algos --help` loads this module, not what the command runs
    from rich.table import Table

    table = Table(title="the same model with each attention kind (KV cache at 2 bytes per number)")
    for col in ("kind", "options", "params", "train FLOPs/token", "KV-cache bytes/token", "note"):
        table.add_column(col, justify="right" if col in ("params", "train FLOPs/token") else "left")
    for r in rows:
        if "error" in r:
            table.add_row(r["kind"], "", "", "", "", r["error"])
            continue
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items() if k not in ("backend", "qk_norm"))
        flops = _si(r["flops_per_token_train"])
        if r["ideal_flops_per_token_train"] is not None:
            flops += f" (ideal {_si(r['ideal_flops_per_token_train'])})"
        cache = r["kv_cache_bytes_per_token"]
        table.add_row(
            r["kind"], opts, f"{r['params']:,}", flops, f"{cache:,}" if cache is not None else "?", r["note"]
        )
    return table


def _flatten(d: dict, prefix: str = ""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3f} {unit}"
    return f"{x:.0f}"
