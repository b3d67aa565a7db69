"""Study files (lit_algos.studies): every shipped study parses and expands, bad fields give the
field/value/allowed error, and the ``study`` command's wiring (dry run, sweep, report) with a fake
sweep engine."""

from __future__ import annotations

import textwrap

import pytest

from lit_algos.errors import ConfigError
from lit_algos.studies.expand import expand
from lit_algos.studies.spec import list_studies, load_study, parse_study

# distinct runs per preset: arms x sizes x seeds (gundlach: ablation arms at its sizes, plus the
# ladder; retro_ladder-m and modern_ladder-m are shared by both experiments and trained once). The
# learning-rate sweeps' runs are not in the expansion (lit_algos.studies.tuning).
EXPECTED = {
    ("sanderson", "quick"): (28, 28),  # 7 variants x 2 sizes x 2 seeds
    ("sanderson", "full"): (63, 63),  # x 3 sizes x 3 seeds
    ("sanderson", "gpu-compact"): (21, 21),
    ("sanderson", "gpu-full"): (21, 21),
    ("gundlach", "quick"): (44, 40),  # ablation 16 arms x 2 + ladder 3 x 2 sizes x 2; 4 shared
    ("gundlach", "full"): (75, 69),  # ablation 16 x 3 + ladder 3 x 3 x 3; 6 shared
    ("moe", "quick"): (8, 8),
    ("moe", "full"): (18, 18),
}


def test_every_shipped_study_parses_and_expands_to_the_expected_counts():
    assert {"sanderson", "gundlach", "moe"} <= set(list_studies())
    for (name, preset), (total, unique) in EXPECTED.items():
        exp = expand(load_study(name), preset)
        assert (len(exp.runs), len(exp.unique())) == (total, unique), (name, preset)


def test_research_runs_train_a_fixed_budget_without_a_target():
    from lit_algos.model import param_counts

    exp = expand(load_study("sanderson"), "quick")
    budgets = {}
    for spec in exp.unique():
        cfg = spec.config()
        assert (
            cfg.train.target_loss is None and cfg.train.batch_size == 8 and cfg.data.tokenizer == "bpe:1024"
        )
        size = spec.tags["size"]
        assert cfg.train.eval_every_tokens == cfg.train.max_tokens // 6
        assert cfg.model.n_embd == {"ladder-s": 48, "ladder-m": 64}[size]
        if spec.tags["arm"] == "baseline":  # 2 tokens per non-embedding parameter of the baseline
            assert 2 * param_counts(cfg.model)["non_embedding"] <= cfg.train.max_tokens
        budgets.setdefault(size, set()).add(cfg.train.max_tokens)
    assert all(len(v) == 1 for v in budgets.values()) and max(budgets["ladder-m"]) > max(budgets["ladder-s"])
    gpu = expand(load_study("sanderson"), "gpu-compact").runs[0]
    assert gpu.recipe.startswith("paper/compact/") and gpu.config().model.n_embd == 384


def test_ablation_arms_swap_one_component():
    exp = expand(load_study("gundlach"), "quick")
    by_name = {s.name: s for s in exp.runs}
    retro_rope = by_name["retro+position_ladder-s"].config()
    modern_learned = by_name["modern-position_ladder-s"].config()
    assert retro_rope.model.position.kind == "rope" and retro_rope.model.norm.kind == "layernorm"
    assert modern_learned.model.position.kind == "learned" and modern_learned.optim.kind == "muon"


STUDY = """\
sizes: {mini: {scale: scales/mini}}
experiments: {e: {kind: grid, arms: {a: retro, b: modern}}}
presets: {quick: {sizes: [mini], seeds: 2, tokens: {mini: 65536}}}
analyses: [{kind: ceg, experiment: e, reference: a}]
"""


@pytest.mark.parametrize(
    "patch, field, value",
    [
        (("seeds: 2", "seeds: 0"), "presets.quick.seeds", 0),
        (("sizes: [mini]", "sizes: [huge]"), "presets.quick.sizes.e[0]", "huge"),
        (("reference: a", "reference: z"), "analyses[0].reference", "z"),
        (("kind: ceg", "kind: magic"), "analyses[0].kind", "magic"),
        (("b: modern", "b: no-such-recipe"), "experiments.e.arms.b", "no-such-recipe"),
        (("kind: grid", "kind: lattice"), "experiments.e.kind", "lattice"),
        (("tokens: {mini: 65536}", "tokens: {mini: -5}"), "presets.quick.tokens.mini", -5),
        (("sizes: {mini", "sizez: {mini"), "sizez", None),
        (
            ("b: modern", "b: {recipe: modern, overrides: [train.batch_size]}"),
            "experiments.e.arms.b.overrides[0]",
            "train.batch_size",
        ),
        (("b: modern", "b: {recipe: modern, sets: []}"), "experiments.e.arms.b.sets", []),
        (
            (
                "kind: ceg, experiment: e, reference: a",
                "kind: scaling, experiment: e, pairs: [[a, b]], points: best",
            ),
            "analyses[0].points",
            "best",
        ),
    ],
)
def test_a_malformed_study_names_the_field_the_value_and_what_is_allowed(tmp_path, patch, field, value):
    path = tmp_path / "bad.yaml"
    path.write_text(STUDY.replace(*patch))
    with pytest.raises(ConfigError) as err:
        load_study(str(path))
    assert err.value.field == field
    if value is not None:
        assert err.value.value == value
    text = str(err.value)
    assert field in text and ("Allowed" in text or "Expected" in text or "valid keys" in text)
    assert str(path) in text


def test_an_unknown_ablation_component_is_refused():
    import yaml

    bad = yaml.safe_load(STUDY)
    bad["experiments"]["e"] = {"kind": "ablation", "ref": "retro", "new": "modern", "components": ["wings"]}
    with pytest.raises(ConfigError, match="experiments.e.components"):
        parse_study(bad)


def test_an_arm_with_its_own_overrides_gets_them_after_the_scale_and_the_preset():
    import yaml

    study = yaml.safe_load(STUDY)
    study["experiments"]["e"]["arms"]["b"] = {"recipe": "lstm", "overrides": ["train.batch_size=8",
                                                                             "model.init_std=1.0"]}  # fmt: skip
    study["presets"]["quick"]["overrides"] = ["train.batch_size=16"]
    exp = expand(parse_study(study), "quick")
    by_arm = {s.tags["arm"]: s for s in exp.runs}
    lstm, retro = by_arm["b"].config(), by_arm["a"].config()
    assert lstm.model.mixer.kind == "lstm" and lstm.model.n_embd == 64  # the mini scale still applies
    assert lstm.train.batch_size == 8 and lstm.model.init_std == 1.0  # the arm's own win
    assert retro.train.batch_size == 16 and retro.model.init_std == 0.02  # the other arm: untouched


def test_the_gundlach_ladder_trains_every_arm_alike_but_the_lstm_keeps_its_input_embedding():
    exp = expand(load_study("gundlach"), "full")
    ladder = {
        (s.tags["arm"], s.tags["size"]): s.config() for s in exp.runs if s.tags["experiment"] == "ladder"
    }
    tokens = []
    for size in ("ladder-s", "ladder-m", "ladder-l"):
        lstm, retro = ladder[("lstm", size)], ladder[("retro", size)]
        assert lstm.train.batch_size == retro.train.batch_size == 8
        assert lstm.train.max_tokens == retro.train.max_tokens == ladder[("modern", size)].train.max_tokens
        assert lstm.model.init_std == 1.0 and not lstm.model.tie_embeddings  # architecture, not tuning
        assert lstm.optim.lr == retro.optim.lr  # the rates come from the same sweep (studies.tuning)
        tokens.append(retro.train.max_tokens)
    assert tokens == sorted(tokens) and tokens[-1] > 4 * tokens[0]  # budgets grow with the size
    tune = load_study("gundlach").preset("full").tune
    assert tune.size == "ladder-m" and tune.lr_scale == (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


# ---- the study command -------------------------------------------------------------------------


def _write(tmp_path, text=STUDY):
    path = tmp_path / "toy.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_dry_run_builds_no_model_and_prepares_no_data(tmp_path, monkeypatch, capsys):
    import lit_algos.data.prepare as prepare
    import lit_algos.model as model
    from lit_algos import sweeps
    from lit_algos.cli import main

    def forbidden(*a, **k):
        raise AssertionError("a dry run must not build a model or prepare data")

    monkeypatch.setattr(model.GPT, "__init__", forbidden)
    for name in dir(prepare):
        if name.startswith("prepare"):
            monkeypatch.setattr(prepare, name, forbidden)
    monkeypatch.setattr(sweeps, "run_sweep", forbidden, raising=False)
    code = main(
        [
            "study",
            str(_write(tmp_path)),
            "--preset",
            "quick",
            "--dry-run",
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "a_mini" in out and "b_mini" in out and "4 runs" in out
    assert not (tmp_path / "runs").exists()


def test_study_command_runs_the_sweep_then_writes_the_report(tmp_path, monkeypatch):
    from lit_algos import sweeps
    from lit_algos.analysis.synthetic import log_linear_loss
    from lit_algos.cli import main
    from tests.test_reports import _num, _row, write_records

    calls = []

    def fake_run_sweep(
        specs, *, runs_dir, executor="local", workers=1, threads=None, slurm=None, progress=True, console=None
    ):
        calls.append({"n": len(specs), "executor": executor, "workers": workers, "threads": threads})
        exp = expand(load_study(str(tmp_path / "toy.yaml")), "quick")
        # the "trained" runs: b is 2x more compute-efficient than a
        write_records(exp, runs_dir, lambda arm, size, seed: log_linear_loss(k=2.0 if arm == "b" else 1.0))
        return {}

    monkeypatch.setattr(sweeps, "run_sweep", fake_run_sweep, raising=False)
    runs = tmp_path / "runs"
    args = [
        "study",
        str(_write(tmp_path)),
        "--preset",
        "quick",
        "--runs-dir",
        str(runs),
        "--workers",
        "3",
        "--no-progress",
    ]
    assert main(args) == 0
    assert calls == [{"n": 4, "executor": "local", "workers": 3, "threads": None}]
    report = (runs / "studies" / "toy" / "report.md").read_text()
    assert _num(_row(report, "b", "mini")[2]) == pytest.approx(2.0, rel=1e-3)
    assert (runs / "studies" / "toy" / "plots" / "ceg-e.png").stat().st_size > 5000
    # report regenerates from the directory alone, with no training
    (runs / "studies" / "toy" / "report.md").unlink()
    assert main(["report", str(runs / "studies" / "toy")]) == 0
    assert (runs / "studies" / "toy" / "report.md").is_file() and len(calls) == 1


def test_a_bad_preset_exits_2(tmp_path, capsys):
    from lit_algos.cli import main

    assert main(["study", str(_write(tmp_path)), "--preset", "nope", "--dry-run"]) == 2
    assert "preset" in capsys.readouterr().err
