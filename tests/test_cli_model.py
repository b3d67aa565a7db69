"""``lit-algos components`` and ``lit-algos describe`` through the CLI entry point."""

from __future__ import annotations

import json

from lit_algos.cli import main


def test_components_json_lists_every_axis(capsys):
    assert main(["components", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"attention", "norm", "position", "mlp"} <= set(data)
    names = {axis: [e["name"] for e in entries] for axis, entries in data.items()}
    assert set(names["attention"]) >= {"mha", "gqa", "mqa"}
    assert set(names["position"]) >= {"learned", "sinusoidal", "rope", "alibi", "none"}
    gqa = next(e for e in data["attention"] if e["name"] == "gqa")
    assert "attention.n_kv_head" in gqa["options"] and gqa["help"]


def test_components_table(capsys):
    assert main(["components"]) == 0
    out = capsys.readouterr().out
    for word in ("attention", "rmsnorm", "alibi", "swiglu"):
        assert word in out


def test_describe_json_with_overrides(capsys):
    argv = [
        "describe",
        "--json",
        "--set",
        "model.attention.kind=gqa",
        "--set",
        "model.attention.n_kv_head=2",
        "--set",
        "model.mlp.kind=swiglu",
        "--set",
        "model.tie_embeddings=false",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"]["attention"]["kind"] == "gqa"
    assert data["derived"]["n_kv_head"] == 2
    assert data["params"]["total"] > data["params"]["non_embedding"] > 0
    flops = data["flops"]
    assert flops["per_token_train"] == 3 * flops["per_token_forward"]
    assert abs(flops["relative_difference"]) < 0.02
    assert set(flops["breakdown_forward"]) >= {"attn_qkv", "attn_scores", "attn_out", "mlp", "lm_head"}


def test_describe_table_for_a_recipe_file(capsys, tmp_path):
    recipe = tmp_path / "small.yaml"
    recipe.write_text("model:\n  n_layer: 1\n  position: {kind: rope}\n")
    assert main(["describe", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "small" in out and "rope" in out and "FLOPs per token" in out and "measured" in out
    assert "each attention kind" in out and "KV-cache bytes/token" in out
    for kind in ("mha", "gqa", "mqa", "mla", "sliding", "sparse"):
        assert f"│ {kind} " in out


def test_describe_json_states_the_sparse_flop_counts(capsys):
    argv = ["describe", "--json", "--set", "model.attention={kind: sparse, pattern: strided, stride: 8}"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["flops"]["ideal_per_token_train"] < data["flops"]["per_token_train"]
    assert {r["kind"] for r in data["attention_kinds"]} >= {"mha", "gqa", "mqa", "mla", "sliding", "sparse"}


def test_describe_bad_override_is_a_user_error(capsys):
    assert main(["describe", "--set", "model.attention.kind=gqa"]) == 2
    err = capsys.readouterr().err
    assert "n_kv_head" in err


def test_describe_moe_shows_active_and_total_params(capsys):
    assert main(["describe", "modern-moe", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    params, derived = data["params"], data["derived"]
    assert params["active"] < params["total"]
    assert derived["expert_hidden"] == 113 and derived["moe_layers"] == "0,1,2,3"
    assert abs(data["flops"]["relative_difference"]) < 0.02  # active FLOPs, measured on a routed pass
