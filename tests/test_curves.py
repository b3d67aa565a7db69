"""Robust curve smoothing, the grid's resolution at a crossing, and a target at a final loss
(lit_algos.analysis.curves / censoring; issue 24, item 2).

Known answers: the new recipe's curve is the reference's at twice the compute,
``L_new(F) = L_ref(2 F)``, so the true CEG is 2.0 at every L* the curves resolve.
- one +0.3 (or -0.3) spike on an otherwise clean or noisy curve must move it by <= 5%
  (before: a spike at the new run's crossing gave 0.976x, the raw evaluations 1.41x);
- a noise-free curve that bends sharply (slope 0.3 -> 0.02 nats per e-fold) must come through
  within 1% (before: 1.36x-1.40x when the bend sat near the reference's end);
- eval noise sd 0.01 / 0.03 on a 32-evaluation grid: within 1% / 2% on average over 200 draws.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lit_algos.analysis.ceg import compare, pair_ceg
from lit_algos.analysis.curves import crossing_gap, outliers, robust_curve
from lit_algos.analysis.synthetic import synthetic_record

GRID = np.geomspace(1e12, 1e15, 32)


def line(f: float) -> float:
    return 10.0 - 0.1 * math.log(f)


def bend(knee: float, sharpness: float):
    """Slope 0.3 nats per e-fold of compute, bending into slope 0.02 at ``knee``."""

    def loss(f: float) -> float:
        x = math.log(f / knee)
        return 4.0 - 0.02 * x + 0.28 * float(np.logaddexp(0.0, -sharpness * x)) / sharpness

    return loss


def pair(loss_fn, grid=GRID, ref_noise=None, new_noise=None):
    ref = synthetic_record("r", flops=list(grid), losses=[loss_fn(f) for f in grid])
    new = synthetic_record("n", recipe="new", flops=list(grid), losses=[loss_fn(2 * f) for f in grid])
    return with_noise(ref, ref_noise), with_noise(new, new_noise)


def with_noise(record, noise):
    if noise is None:
        return record
    curve = [dataclasses.replace(p, val_loss=p.val_loss + float(e)) for p, e in zip(record.curve, noise)]
    return dataclasses.replace(record, curve=curve, final=curve[-1])


def spike_at(flops: float, size: float) -> np.ndarray:
    out = np.zeros(GRID.size)
    out[int(np.searchsorted(GRID, flops))] = size
    return out


@pytest.mark.parametrize(
    "side, where, size",
    [
        ("new", 5e14, 0.3),  # at the new run's crossing of L* (it crosses at 5e14)
        ("new", 5e14, -0.3),  # a lucky evaluation there
        ("new", 1e14, 0.3),
        ("ref", 3e14, 0.3),
        ("ref", 1e15, 0.3),  # the reference's last evaluation, which sets L*
    ],
)
def test_one_spike_moves_a_true_2x_by_at_most_5_percent(side, where, size):
    spike = spike_at(where, size)
    clean = pair(line, **{f"{side}_noise": spike})
    assert pair_ceg(*clean).ceg["flops"] == pytest.approx(2.0, rel=0.05)
    rng = np.random.default_rng(0)
    values = []
    for _ in range(20):  # and on curves with eval noise sd 0.01 around it
        ref_noise, new_noise = rng.normal(0, 0.01, GRID.size), rng.normal(0, 0.01, GRID.size)
        noisy = pair(
            line,
            ref_noise=ref_noise + (spike if side == "ref" else 0),
            new_noise=new_noise + (spike if side == "new" else 0),
        )
        values.append(math.log(pair_ceg(*noisy).ceg["flops"]))
    assert math.exp(np.mean(values)) == pytest.approx(2.0, rel=0.05)


def test_a_spike_is_named_as_an_outlier_and_a_bend_is_not():
    spiky = pair(line, new_noise=spike_at(5e14, 0.3))[1]
    assert np.flatnonzero(outliers(spiky.curve)).tolist() == [int(np.searchsorted(GRID, 5e14))]
    assert not outliers(pair(bend(6e14, 200.0))[0].curve).any()
    warnings = compare(*[[r] for r in pair(line, new_noise=spike_at(5e14, 0.3))]).summaries[0].warnings
    assert any("new n: the evaluation at step" in w and "outlier" in w for w in warnings)


@pytest.mark.parametrize("knee", [1e14, 3e14, 6e14])
@pytest.mark.parametrize("sharpness", [5.0, 30.0, 200.0])
def test_a_noise_free_sharp_bend_comes_through_within_1_percent(knee, sharpness):
    ref, new = pair(bend(knee, sharpness))
    raw = pair_ceg(ref, new, smooth=1).ceg["flops"]
    assert raw == pytest.approx(2.0, rel=0.012)  # what the grid itself resolves
    assert pair_ceg(ref, new).ceg["flops"] == pytest.approx(raw, rel=0.01)
    assert pair_ceg(ref, new).ceg["flops"] == pytest.approx(2.0, rel=0.012)


def test_a_noise_free_curve_is_left_unchanged():
    record = pair(bend(6e14, 30.0))[0]
    assert [p.val_loss for p in robust_curve(record.curve)] == pytest.approx(
        [p.val_loss for p in record.curve], abs=1e-12
    )


@pytest.mark.parametrize("sd, tolerance", [(0.01, 0.01), (0.03, 0.02)])
def test_noisy_curves_keep_their_accuracy(sd, tolerance):
    ref, new = pair(line)
    rng = np.random.default_rng(1)
    logs = [
        math.log(
            pair_ceg(
                with_noise(ref, rng.normal(0, sd, GRID.size)), with_noise(new, rng.normal(0, sd, GRID.size))
            ).ceg["flops"]
        )
        for _ in range(200)
    ]
    assert math.exp(np.mean(logs)) == pytest.approx(2.0, rel=tolerance)


def test_a_sparse_grid_is_warned_about_and_a_dense_one_is_not():
    curve_fn = bend(3e13, 2.0)  # bends across the middle of the range
    sparse = pair(curve_fn, grid=np.geomspace(1e12, 1e15, 4))
    summary = compare([sparse[0]], [sparse[1]]).summaries[0]
    assert any("too sparse to resolve" in w and "new n" in w for w in summary.warnings)
    dense = pair(curve_fn, grid=np.geomspace(1e12, 1e15, 64))
    assert not [w for w in compare([dense[0]], [dense[1]]).summaries[0].warnings if "sparse" in w]
    assert crossing_gap(dense[1].curve, dense[0].curve[-1].val_loss)[0] < 0.002


def test_a_straight_curve_has_no_interpolation_gap():
    ref, new = pair(line, grid=np.geomspace(1e12, 1e15, 4))
    assert crossing_gap(new.curve, ref.curve[-1].val_loss)[0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("sd", [0.0, 0.01])
def test_a_target_equal_to_a_final_loss_is_reached_not_censored(sd):
    rng = np.random.default_rng(3)
    ref, new = pair(line, ref_noise=rng.normal(0, sd, GRID.size), new_noise=rng.normal(0, sd, GRID.size))
    target = ref.curve[-1].val_loss
    summary = compare([ref], [new], targets=[target]).summaries[1]
    assert summary.censored == [] and summary.estimates["flops"].bound is None
    assert summary.estimates["flops"].value == pytest.approx(2.0, rel=0.1)
