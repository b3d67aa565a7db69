"""A preset's learning-rate sweep, budgets per parameter, what a preset claims, and measured wall
times (lit_algos.studies.tuning / expand, lit_algos.reports.render; issue 24 item 5).

Known answer: in the fake engine, each arm's final loss is lowest at its own learning rate
(arm a at twice retro's, arm b at half modern's), so the sweep must choose x2 and x0.5 and every
other run of those arms must train at that rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lit_algos.analysis.synthetic import synthetic_record
from lit_algos.errors import ConfigError
from lit_algos.studies.expand import Expansion, expand
from lit_algos.studies.spec import parse_study

STUDY = """\
sizes: {mini: {scale: scales/mini}, tiny: {scale: scales/tiny}}
experiments: {e: {kind: grid, arms: {a: retro, b: modern}}}
presets:
  p:
    sizes: [mini, tiny]
    seeds: 2
    tokens: {mini: 65536, tiny: 65536}
    evals: 4
    tune: {size: mini, lr_scale: [0.5, 1, 2]}
  quick: {sizes: [mini], seeds: 2, tokens: {mini: 65536}, evals: 4, claims: directions}
analyses: [{kind: ceg, experiment: e, reference: a}]
"""
BEST_LR = {"a": 2 * 3.0e-3, "b": 0.5 * 3.0e-3}  # retro's and modern's AdamW rate is 3e-3


def toy(tmp_path, text=STUDY):
    import yaml

    path = tmp_path / "toy.yaml"
    path.write_text(text)
    return parse_study(yaml.safe_load(text), "toy", str(path)), path


def fake_engine(study, calls):
    """A sweep engine that writes one synthetic record per spec: the loss curve of a run is worse
    the further its learning rate is from its arm's best one (in e-folds)."""

    def run_sweep(specs, *, runs_dir, **kwargs):
        calls.append([s.tags.get("role", "main") for s in specs])
        hashes = Expansion(study, None, list(specs))
        for spec in specs:
            cfg = spec.config()
            arm = spec.tags["arm"]
            miss = abs(math.log(cfg.optim.lr / BEST_LR[arm]))
            k = 2.0 if arm == "b" else 1.0
            rec = synthetic_record(
                f"{spec.name}-{hashes.config_hash(spec)}-s{spec.seed}",
                recipe=spec.name,
                seed=spec.seed,
                flops=list(np.geomspace(1e12, 1e14, 8)),
                loss_fn=lambda f, k=k, miss=miss, s=spec.seed: (
                    10 - 0.2 * math.log(k * f * (1 + 1e-6 * s)) + 0.1 * miss
                ),
            )
            rec.config, rec.config_hash = cfg.to_dict(), hashes.config_hash(spec)
            rec.save(runs_dir / rec.run_id / "record.json")
        return {s.name: runs_dir for s in specs}

    return run_sweep


def test_the_sweep_runs_first_and_every_other_run_of_an_arm_uses_its_choice(tmp_path, monkeypatch):
    from lit_algos import sweeps
    from lit_algos.cli import main

    study, path = toy(tmp_path)
    calls = []
    monkeypatch.setattr(sweeps, "run_sweep", fake_engine(study, calls), raising=False)
    runs = tmp_path / "runs"
    assert main(["study", str(path), "--preset", "p", "--runs-dir", str(runs), "--no-progress"]) == 0
    # first call: the sweep only (2 arms x 3 multipliers x 1 seed); then the study's runs
    assert calls[0] == ["tuning"] * 6 and len(calls) == 2
    from lit_algos.studies.tuning import chosen_scales, sweep_results

    sweeps_done = sweep_results(study, study.preset("p"), runs)
    assert chosen_scales(sweeps_done) == {("e", "a"): 2.0, ("e", "b"): 0.5}
    expansion = expand(study, "p", chosen_scales(sweeps_done))
    for spec in expansion.runs:
        cfg = spec.config()
        assert cfg.optim.lr == pytest.approx(BEST_LR[spec.tags["arm"]])
        if spec.tags["arm"] == "b":  # Muon's rate scales with the sweep's multiplier too
            assert cfg.optim.muon_lr == pytest.approx(0.5 * 0.02)
    report = (runs / "studies" / "toy" / "report.md").read_text()
    assert "Learning-rate sweep (every tuned arm the same way)" in report
    assert "| e | a | 3.691 | 3.622 | 3.553 * | x2 | 0.006 |" in report and "| e | b |" in report
    assert "Preset p is sized for verdicts" in report
    assert "Measured wall time of `lit-algos study`" in report
    # b is 2x more compute-efficient at its own best rate: the CEG reads the tuned runs
    assert "| b | mini | 2× [2, 2] |" in report and "| b | tiny | 2× [2, 2] |" in report


def test_a_second_study_run_trains_nothing_new(tmp_path, monkeypatch):
    from lit_algos import sweeps
    from lit_algos.cli import main

    study, path = toy(tmp_path)
    calls = []
    monkeypatch.setattr(sweeps, "run_sweep", fake_engine(study, calls), raising=False)
    runs = tmp_path / "runs"
    argv = ["study", str(path), "--preset", "p", "--runs-dir", str(runs), "--no-progress"]
    assert main(argv) == 0 and main(argv) == 0
    # the second invocation finds the sweep complete: one engine call, with the same specs as before
    assert len(calls) == 3 and calls[2] == calls[1]
    meta = (runs / "studies" / "toy" / "study.json").read_text()
    assert meta.count('"seconds"') == 2  # both invocations' wall times are kept


def test_a_directions_preset_says_so(tmp_path, monkeypatch):
    from lit_algos import sweeps
    from lit_algos.cli import main

    study, path = toy(tmp_path)
    monkeypatch.setattr(sweeps, "run_sweep", fake_engine(study, []), raising=False)
    runs = tmp_path / "runs"
    assert main(["study", str(path), "--quick", "--runs-dir", str(runs), "--no-progress"]) == 0
    report = (runs / "studies" / "toy-quick" / "report.md").read_text()
    assert "shows directions, not verdicts" in report and "Learning-rate sweep" not in report


def test_budgets_per_parameter_grow_with_the_size():
    from lit_algos.model import param_counts

    text = STUDY.replace("tokens: {mini: 65536, tiny: 65536}", "tokens_per_param: {ratio: 20, recipe: retro}")
    study = parse_study(__import__("yaml").safe_load(text), "toy")
    budgets = {}
    for spec in expand(study, "p").runs:
        cfg = spec.config()
        step = cfg.train.batch_size * cfg.model.block_size * 4
        if spec.tags["arm"] == "a":  # arm a is retro, the recipe whose parameters set the budget
            n = param_counts(cfg.model)["non_embedding"]
            assert cfg.train.max_tokens % step == 0 and 20 * n <= cfg.train.max_tokens < 20 * n + step
        budgets.setdefault(spec.tags["size"], set()).add(cfg.train.max_tokens)
    assert all(len(v) == 1 for v in budgets.values())  # every arm of a size the same tokens
    assert budgets["tiny"].pop() > 4 * budgets["mini"].pop()


@pytest.mark.parametrize(
    "tune, field",
    [
        ("{size: huge, lr_scale: [0.5, 1]}", "presets.p.tune.size"),
        ("{size: mini, lr_scale: [0.5, 2]}", "presets.p.tune.lr_scale"),  # 1 must be a candidate
        ("{size: mini, lr_scale: [1]}", "presets.p.tune.lr_scale"),
        ("{size: mini, lr_scale: [1, -2]}", "presets.p.tune.lr_scale[1]"),
        ("{size: mini, lr_scale: [1, 2], experiments: [nope]}", "presets.p.tune.experiments[0]"),
        ("{size: mini, lr_scale: [1, 2], rate: 3}", "presets.p.tune.rate"),
    ],
)
def test_a_bad_sweep_names_its_field(tune, field):
    import yaml

    text = STUDY.replace("tune: {size: mini, lr_scale: [0.5, 1, 2]}", f"tune: {tune}")
    with pytest.raises(ConfigError) as err:
        parse_study(yaml.safe_load(text), "toy")
    assert field in str(err.value)
