"""CEG on synthetic curves with known answers (lit_algos.analysis.ceg / curves / runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lit_algos.analysis.ceg import compare, pair_ceg, pair_up
from lit_algos.analysis.curves import UNITS, trailing_mean
from lit_algos.analysis.runs import check_comparable, recipe_hash, resolve_runs
from lit_algos.analysis.synthetic import log_linear_loss, synthetic_record
from lit_algos.errors import LitAlgosError


def ref_new(k: float, seed: int = 0, jitter: float = 0.0, **new_kwargs):
    """A pair with CEG k; ``jitter`` shifts both curves by e^jitter in compute (distinct seeds
    have distinct curves: a copy of a record is not another seed)."""
    u = math.exp(jitter)
    ref = synthetic_record(f"ref-{seed}", recipe="ref", seed=seed, loss_fn=log_linear_loss(k=u))
    new = synthetic_record(
        f"new-{seed}", recipe="new", seed=seed, loss_fn=log_linear_loss(k=k * u), **new_kwargs
    )
    return ref, new


@pytest.mark.parametrize("k", [1.0, 1.7, 4.0])
def test_constant_multiplier_gives_ceg_k_in_every_unit(k):
    ref, new = ref_new(k)
    pair = pair_ceg(ref, new)
    assert pair.kind == "primary"
    assert pair.loss == pytest.approx(ref.curve[-1].val_loss)
    for unit in UNITS:
        assert pair.ceg[unit] == pytest.approx(k, rel=1e-7), unit
    assert pair.ceg["throughput"] == pytest.approx(1.0)


def test_auxiliary_ceg_when_new_never_reaches_reference_final_loss():
    k = 0.4  # the new recipe is worse: it never reaches the reference's final loss
    ref, new = ref_new(k)
    pair = pair_ceg(ref, new)
    assert pair.kind == "auxiliary"
    assert pair.loss == pytest.approx(new.curve[-1].val_loss)  # L* = the new recipe's best loss
    assert pair.cost_new["flops"] == pytest.approx(new.curve[-1].flops)
    for unit in UNITS:
        assert pair.ceg[unit] == pytest.approx(k, rel=1e-7)


def test_non_monotone_curves_use_the_running_minimum():
    k = 2.0
    ref, new = ref_new(k)
    ref.curve[-1].val_loss += 0.5  # the last reference evaluation ticks up: L* is its best loss
    for i in (3, 9, 14):  # spikes in the new curve must not un-reach a loss
        new.curve[i].val_loss += 1.0
    pair = pair_ceg(ref, new, smooth=1)  # raw evaluations: the running-minimum rule itself
    assert pair.kind == "primary"
    assert pair.loss == pytest.approx(ref.curve[-2].val_loss)
    assert pair.cost_ref["flops"] == pytest.approx(ref.curve[-2].flops)
    assert pair.ceg["flops"] == pytest.approx(k, rel=1e-7)


def test_an_early_dip_counts_as_reaching_the_loss():
    grid = [1.0, 2.0, 4.0, 8.0]
    ref = synthetic_record("r", flops=grid, losses=[5.0, 4.0, 3.5, 3.0])
    new = synthetic_record(
        "n", recipe="new", flops=grid, losses=[5.0, 2.9, 3.4, 3.2]
    )  # dips below 3.0 at F=2
    pair = pair_ceg(ref, new, smooth=1)
    # L* = 3.0, reached between F=1 (5.0) and F=2 (2.9): ln F = ln 2 * (5 - 3) / (5 - 2.9)
    c_new = math.exp(math.log(2.0) * 2.0 / 2.1)
    assert pair.cost_new["flops"] == pytest.approx(c_new)
    assert pair.ceg["flops"] == pytest.approx(8.0 / c_new)


def test_ceg_at_a_user_target():
    k = 3.0
    ref, new = ref_new(k)
    target = 0.5 * (ref.curve[5].val_loss + ref.curve[6].val_loss)
    report = compare([ref], [new], targets=[target, 0.1])
    at_target, unreachable = report.summaries[1], report.summaries[2]
    assert at_target.kind == "target" and at_target.loss == pytest.approx(target)
    assert at_target.estimates["tokens"].value == pytest.approx(k)
    assert unreachable.estimates["flops"].value is None
    assert "never reached" in unreachable.pairs[0].note


def test_time_speedup_is_flop_ceg_times_throughput_ratio():
    k = 2.0
    ref, new = ref_new(k, flops_per_second=3e9)  # the new recipe also runs 3x more FLOP/s
    pair = pair_ceg(ref, new)
    assert pair.ceg["flops"] == pytest.approx(k)
    assert pair.ceg["train_seconds"] == pytest.approx(6.0)
    assert pair.ceg["throughput"] == pytest.approx(3.0)
    assert pair.ceg["train_seconds"] == pytest.approx(pair.ceg["flops"] * pair.ceg["throughput"])


def test_seeds_are_paired_when_both_sides_share_them():
    k = 2.0
    refs, news = zip(*(ref_new(k, seed=s, jitter=0.01 * (s - 1)) for s in (0, 1, 2)))
    paired, pairs = pair_up(list(refs), list(reversed(news)))
    assert paired and sorted(pairs) == [(0, 2), (1, 1), (2, 0)]
    summary = compare(list(refs), list(news)).summaries[0]
    assert summary.paired and len(summary.pairs) == 3
    est = summary.estimates["flops"]
    assert est.value == pytest.approx(k) and est.low == pytest.approx(k) and est.high == pytest.approx(k)


def test_unpaired_seeds_use_every_combination():
    refs = [ref_new(2.0, seed=s, jitter=j)[0] for s, j in ((0, -0.005), (1, 0.005))]
    news = [ref_new(2.0, seed=s, jitter=j)[1] for s, j in ((5, -0.01), (6, 0.0), (7, 0.01))]
    summary = compare(refs, news).summaries[0]
    assert not summary.paired and len(summary.pairs) == 6
    assert summary.estimates["flops"].value == pytest.approx(2.0)


def test_geometric_mean_over_seeds():
    refs, news = [], []
    for s, k in enumerate((1.0, 4.0)):
        r, n = ref_new(k, seed=s, jitter=0.01 * s)
        refs.append(r)
        news.append(n)
    est = compare(refs, news, n_resamples=500).summaries[0].estimates["flops"]
    assert est.value == pytest.approx(2.0)  # sqrt(1 * 4)
    assert est.low <= est.value <= est.high


def test_trailing_mean_matches_the_notebook_smoothing():
    values = np.array([8.0, 6.0, 4.0, 2.0])
    np.testing.assert_allclose(trailing_mean(values, 2), [8.0, 7.0, 5.0, 3.0])
    np.testing.assert_allclose(trailing_mean(values, 8), [8.0, 7.0, 6.0, 5.0])
    np.testing.assert_allclose(trailing_mean(values, 1), values)


def test_paper_method_on_a_hand_made_example():
    grid = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    ref = synthetic_record("r", flops=grid, losses=[5.0, 4.0, 3.5, 3.2, 3.0, 3.1])
    new = synthetic_record("n", recipe="new", flops=grid[:4], losses=[5.0, 3.8, 3.05, 2.9])
    pair = pair_ceg(ref, new, method="paper", smooth=1)
    # L* = the reference's final loss 3.1 (no running minimum); first index <= 3.1: ref 4, new 2
    assert pair.kind == "primary" and pair.loss == pytest.approx(3.1)
    assert pair.cost_ref["evals"] == 5 and pair.cost_new["evals"] == 3
    assert pair.ceg["evals"] == pytest.approx(5 / 3)
    assert pair.ceg["flops"] == pytest.approx(50.0 / 30.0)  # read at the same evaluations, no interpolation
    # the interpolating rule differs: L* = 3.0 (running minimum) and interpolated costs
    assert pair_ceg(ref, new).ceg["flops"] != pytest.approx(pair.ceg["flops"])


def test_paper_method_auxiliary_case():
    grid = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    ref = synthetic_record("r", flops=grid, losses=[5.0, 4.0, 3.5, 3.2, 3.0, 3.1])
    new = synthetic_record("n", recipe="new", flops=grid, losses=[5.0, 4.6, 4.1, 3.9, 3.95, 3.92])
    pair = pair_ceg(ref, new, method="paper", smooth=1)
    # never <= 3.1: L* = its minimum 3.9 at index 3 (C_new = 4); the reference first gets there at index 2
    assert pair.kind == "auxiliary" and pair.loss == pytest.approx(3.9)
    assert pair.cost_new["evals"] == 4 and pair.cost_ref["evals"] == 3
    assert pair.ceg["evals"] == pytest.approx(0.75)


def test_paper_method_smooths_with_window_8_by_default():
    ref, new = ref_new(2.0)
    smoothed = pair_ceg(ref, new, method="paper")
    raw = pair_ceg(ref, new, method="paper", smooth=1)
    assert smoothed.loss == pytest.approx(float(np.mean([p.val_loss for p in ref.curve[-8:]])))
    assert raw.loss == pytest.approx(ref.curve[-1].val_loss)


def test_different_validation_sets_are_refused():
    ref, new = ref_new(2.0)
    new.data["val_fingerprint"] = "other"
    with pytest.raises(LitAlgosError, match="val_fingerprint"):
        compare([ref], [new])
    new.data["val_fingerprint"] = None
    with pytest.raises(LitAlgosError, match="no data.val_fingerprint"):
        check_comparable([ref, new])


def test_recipe_hash_ignores_the_seed_only():
    a = synthetic_record("a", seed=0)
    b = synthetic_record("b", seed=1)
    c = synthetic_record("c", seed=0, config={"model": {"n_layer": 3}})
    assert recipe_hash(a.config) == recipe_hash(b.config) != recipe_hash(c.config)


def test_resolve_runs_by_path_directory_and_recipe_name(tmp_path):
    runs = tmp_path / "runs"
    for i, recipe in enumerate(("retro", "retro", "modern")):
        synthetic_record(f"run{i}", recipe=recipe, seed=i).save(runs / f"run{i}" / "record.json")
    synthetic_record("live", recipe="retro", status="running").save(runs / "live" / "record.json")
    by_name = resolve_runs(["retro"], runs_dir=runs)
    assert sorted(r.run_id for r in by_name) == ["run0", "run1"]  # the running one is not complete
    assert [r.run_id for r in resolve_runs([str(runs / "run2" / "record.json")])] == ["run2"]
    assert [r.run_id for r in resolve_runs([str(runs / "run2")])] == ["run2"]
    assert len(resolve_runs([str(runs)])) == 4
    with pytest.raises(LitAlgosError, match="Recipes with complete records there: modern, retro"):
        resolve_runs(["nope"], runs_dir=runs)


def test_attribution_of_independent_components_has_no_interaction():
    from lit_algos.analysis.attribution import attribute

    def runs(recipe, k):
        return [
            synthetic_record(
                f"{recipe}-{s}", recipe=recipe, seed=s, loss_fn=log_linear_loss(k=k * math.exp(0.01 * s))
            )
            for s in (0, 1)
        ]

    # components multiply: rope x2, swiglu x3, so modern = x6 and modern - rope = x3
    retro, modern = runs("retro", 1.0), runs("modern", 6.0)
    add = {"rope": runs("retro+rope", 2.0), "swiglu": runs("retro+swiglu", 3.0)}
    remove = {"rope": runs("modern-rope", 3.0), "swiglu": runs("modern-swiglu", 2.0)}
    attr = attribute(retro, modern, add, remove, unit="tokens", n_resamples=200)
    assert attr.whole.value == pytest.approx(6.0)
    by_name = {c.component: c for c in attr.components}
    assert by_name["rope"].add_one.value == pytest.approx(2.0)
    assert by_name["rope"].remove_one.value == pytest.approx(2.0)
    assert by_name["swiglu"].add_share.value == pytest.approx(math.log(3) / math.log(6))
    assert attr.product_add_one == pytest.approx(6.0) and attr.interaction_add.value == pytest.approx(1.0)
    assert attr.interaction_remove.value == pytest.approx(1.0)
