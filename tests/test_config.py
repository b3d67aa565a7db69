"""Config and recipe loading: inheritance, overrides, validation messages, hashing."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from lit_algos.cli import main
from lit_algos.config import Config
from lit_algos.config.recipes import apply_overrides, load_config, parse_override
from lit_algos.errors import ConfigError, LitAlgosError


@pytest.fixture
def recipes(tmp_path, monkeypatch):
    """A private recipes directory: base <- child, and a recipe that extends two parents."""
    root = tmp_path / "recipes"
    root.mkdir()

    def write(name, text):
        path = root / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    write(
        "base",
        """
        description: base recipe
        model: {n_layer: 2, n_head: 4, n_embd: 64, block_size: 32}
        optim: {kind: adamw, lr: 1.0e-3}
        train: {batch_size: 8, max_tokens: 4096}
    """,
    )
    write(
        "child",
        """
        extends: base
        model: {n_layer: 3, attention: {kind: gqa, n_kv_head: 2}}
    """,
    )
    write("scales/wide", "model: {n_embd: 128, n_head: 8}\n")
    write("both", "extends: [child, scales/wide]\ntrain: {seed: 7}\n")
    write("loop_a", "extends: loop_b\n")
    write("loop_b", "extends: loop_a\n")
    monkeypatch.setenv("LIT_ALGOS_RECIPES", str(root))
    return root


def test_defaults_validate():
    cfg = Config()
    assert cfg.model.n_kv_head == cfg.model.n_head  # mha resolves n_kv_head to n_head


def test_extends_merges_mappings_key_by_key(recipes):
    cfg = load_config("child")
    assert cfg.name == "child"
    assert cfg.model.n_layer == 3 and cfg.model.n_embd == 64  # own field wins, parent field kept
    assert cfg.model.attention.kind == "gqa" and cfg.model.n_kv_head == 2
    assert cfg.optim.lr == pytest.approx(1e-3)
    assert cfg.description == "base recipe"


def test_extends_list_later_parent_wins(recipes):
    cfg = load_config("both")
    assert (cfg.model.n_layer, cfg.model.n_embd, cfg.model.n_head) == (3, 128, 8)
    assert cfg.train.seed == 7


def test_extends_cycle_is_reported(recipes):
    with pytest.raises(LitAlgosError, match="loops"):
        load_config("loop_a")


def test_unknown_recipe_lists_known_ones(recipes):
    with pytest.raises(LitAlgosError, match="Known recipes: .*base"):
        load_config("nope")


def test_overrides_parse_yaml_values(recipes):
    cfg = load_config("base", ["model.attention.kind=mqa", "optim.lr=3e-4", "model.tie_embeddings=false"])
    assert cfg.model.n_kv_head == 1
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.model.tie_embeddings is False
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    # PyYAML reads 2e6 (no dot) as a string; integer fields still take it.
    assert load_config("base", ["train.max_tokens=2e6"]).train.max_tokens == 2_000_000


@pytest.mark.parametrize(
    "override, field, fragment",
    [
        ("model.nope=1", "model.nope", "Unknown key; valid keys here: n_layer"),
        ("model.attention.kind=flash9", "model.attention.kind", "Allowed values: mha, gqa, mqa, sliding"),
        ("model.norm.kind=batchnorm", "model.norm.kind", "Allowed values:"),
        ("model.position.kind=xpos", "model.position.kind", "rope"),
        ("model.mlp.kind=geglu", "model.mlp.kind", "swiglu"),
        ("optim.kind=no-such-optimizer", "optim.kind", "muon"),
        ("optim.momentum=0.5", "optim.momentum", "optimizer.kind=adamw has no option 'momentum'"),
        ("optim.muon_lr=0.03", "optim.muon_lr", "It is an option of muon. To change optim's kind, replace"),
        ("model.n_embd=66", "model.n_embd", "divisible by n_head (4)"),
        ("model.n_layer=-2", "model.n_layer", "a number > 0"),
        ("model.n_layer=two", "model.n_layer", "Expected an integer"),
        ("optim.lr=fast", "optim.lr", "Expected a number"),
        ("model.bias=maybe", "model.bias", "Expected true/false"),
        ("model.attention.kind=sliding", "model.attention.window", "needs a window"),
        ("model.attention.window=8", "model.attention.window", "attention.kind=mha has no option 'window'"),
        ("train.strategy=ddp_spawn", "train.strategy", "Allowed values: auto, ddp, fsdp"),
        ("train.max_tokens=1.5", "train.max_tokens", "Expected an integer"),
        ("model.n_layer.deep=1", "model.n_layer.deep", "is a value, not a section"),
    ],
)
def test_config_errors_name_field_value_and_allowed(recipes, override, field, fragment):
    with pytest.raises(ConfigError) as info:
        load_config("base", [override])
    message = str(info.value)
    assert info.value.field == field
    assert f"'{field}'" in message and fragment in message
    assert "\n" not in message  # one paragraph


def test_gqa_kv_heads_must_divide(recipes):
    with pytest.raises(ConfigError) as info:
        load_config("base", ["model.attention.kind=gqa", "model.attention.n_kv_head=3"])
    assert info.value.field == "model.attention.n_kv_head"
    assert "must divide n_head (4); allowed: 1, 2, 4" in str(info.value)
    with pytest.raises(ConfigError, match="With attention.kind=gqa set it"):
        load_config("base", ["model.attention.kind=gqa"])


def test_bad_recipe_file_reports_source(recipes):
    (recipes / "bad.yaml").write_text("model: {n_head: 5}\n")
    with pytest.raises(ConfigError, match=r"in recipe 'bad'.*divisible by n_head \(5\)"):
        load_config("bad")
    (recipes / "notyaml.yaml").write_text("model: [unclosed\n")
    with pytest.raises(LitAlgosError, match="not valid YAML"):
        load_config("notyaml")


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["model.n_layer"])


def test_resolved_config_round_trips_and_hash_is_stable(recipes):
    cfg = load_config("child")
    again = Config.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))).config_hash() == cfg.config_hash()
    assert load_config("child", ["model.n_layer=4"]).config_hash() != cfg.config_hash()
    # Names, seeds, device layout and W&B do not change what is trained, so they do not change the hash.
    same = [
        "name=other",
        "train.wandb.enabled=true",
        "train.seed=3",
        "train.devices=2",
        "train.micro_batch_size=2",
    ]
    assert load_config("child", same).config_hash() == cfg.config_hash()
    assert load_config("child", ["train.precision=bf16-mixed"]).config_hash() != cfg.config_hash()
    # A field added later with a null default leaves the hash of existing configs unchanged.
    from lit_algos.config import hash_config_dict

    older = cfg.to_dict()
    older["model"]["attention"]["window"] = None  # gqa has no window; a null one is as good as none
    assert hash_config_dict(older) == cfg.config_hash()
    assert Config.from_dict(older) == cfg


def test_cli_config_error_is_one_paragraph_without_traceback(recipes, capsys, tmp_path):
    code = main(
        ["train", "base", "--set", "model.attention.kind=bogus", "--runs-dir", str(tmp_path / "runs")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "model.attention.kind" in err and "bogus" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_every_shipped_recipe_loads_and_validates():
    from lit_algos.config.recipes import list_recipes
    from lit_algos.flops import estimate_flops

    names = list_recipes()
    assert {"debug", "retro", "modern", "speedrun", "paper/baseline", "paper/compact/rope"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert estimate_flops(cfg.model).per_token_train > 0, name


def test_the_flat_optimizer_section_of_old_recipes_loads_with_a_deprecation_warning(recipes):
    """optim.name (the layout before the optimizer was a registry section) reads as optim.kind, in a
    recipe file and in --set, with a warning naming where; the fields its optimizer never read are
    dropped, as they were ignored; the config hashes as before."""
    from lit_algos.errors import LitAlgosWarning

    old = recipes / "old.yaml"
    old.write_text(
        "optim: {name: sgd, lr: 0.1, momentum: 0.8, betas: [0.9, 0.99], muon_lr: 0.02}\n"
        "model: {n_layer: 1, n_head: 2, n_embd: 32}\n"
    )
    with pytest.warns(
        LitAlgosWarning, match=r"old.yaml: optim.name is deprecated; write optim.kind.*optim.betas"
    ):
        cfg = load_config("old")
    assert cfg.optim.kind == "sgd" and cfg.optim.momentum == 0.8 and not hasattr(cfg.optim, "betas")
    with pytest.warns(LitAlgosWarning, match="--set optim.name=sgd"):
        again = load_config("base", ["optim.name=sgd"])
    assert again.optim.kind == "sgd"
    from lit_algos.config import Config

    with pytest.raises(ConfigError, match="keep optim.kind only"):
        Config.from_dict({"optim": {"name": "sgd", "kind": "adamw"}})


def test_muon_refuses_fsdp_in_its_own_entry():
    from lit_algos.config import Config

    with pytest.raises(ConfigError) as info:
        Config.from_dict({"optim": {"kind": "muon"}, "train": {"strategy": "fsdp"}})
    assert info.value.field == "train.strategy" and "optim.kind=muon" in str(info.value)
    assert (
        Config.from_dict({"optim": {"kind": "adamw"}, "train": {"strategy": "fsdp"}}).train.strategy == "fsdp"
    )
