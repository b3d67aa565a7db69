"""Run specs carry patches (dotted path -> value), parsed once from --set strings."""

from __future__ import annotations

from lit_algos.config.recipes import as_patch, fragment_patch, load_config, merge_patches
from lit_algos.sweeps.spec import RunSpec


def test_strings_and_patches_make_the_same_spec():
    strings = RunSpec("a", "debug", ("train.max_tokens=8192", "optim.lr=1e-3", "model.bias=false"), 1)
    patch = RunSpec("a", "debug", {"train.max_tokens": 8192, "optim.lr": 1e-3, "model.bias": False}, 1)
    assert strings.patch == {
        "train.max_tokens": 8192,
        "optim.lr": "1e-3",
        "model.bias": False,
    }  # YAML: "1e-3"
    assert strings.config() == patch.config() and strings.spec_id() == patch.spec_id()


def test_a_path_set_again_wins_and_moves_to_the_end():
    """As when the strings were applied one after the other: a section replaced after one of its
    fields was set loses that field, a field set after its section keeps the new value."""
    merged = merge_patches({"optim.lr": 0.1, "optim": {"kind": "sgd"}}, {"optim.lr": 0.2})
    assert list(merged) == ["optim", "optim.lr"] and merged["optim.lr"] == 0.2
    cfg = load_config("debug", merged)
    assert cfg.optim.kind == "sgd" and cfg.optim.lr == 0.2
    replaced = load_config("debug", merge_patches({"optim.lr": 0.1}, {"optim": {"kind": "sgd"}}))
    assert replaced.optim.lr == 3e-3  # the section's default: the later section wrote over the field


def test_a_size_fragment_is_a_patch_of_its_leaves():
    patch = fragment_patch("scales/mini")
    assert patch and all(not isinstance(v, dict) for v in patch.values())
    assert load_config("retro", patch).model.n_layer == patch["model.n_layer"]
    assert as_patch(["model.n_layer=3"]) == {"model.n_layer": 3}
