"""Seed statistics (lit_algos.analysis.stats) and scaling-law fits (lit_algos.analysis.scaling)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from lit_algos.analysis.scaling import compute_dependence, fit_scaling_law, multiplier
from lit_algos.analysis.stats import bootstrap_geomean, mean_interval, ttest_below

TRUE_CEG = 2.5


def noisy_log_cegs(n: int, seed: int = 0, sigma: float = 0.15) -> np.ndarray:
    return math.log(TRUE_CEG) + np.random.default_rng(seed).normal(0.0, sigma, n)


def test_bootstrap_interval_contains_the_true_value_on_noisy_data():
    est = bootstrap_geomean(noisy_log_cegs(12), n_resamples=4000)
    assert est.n == 12
    assert est.low < est.value < est.high
    assert est.low < TRUE_CEG < est.high


def test_bootstrap_interval_shrinks_with_more_seeds():
    few = bootstrap_geomean(noisy_log_cegs(4, seed=1), n_resamples=4000)
    many = bootstrap_geomean(noisy_log_cegs(64, seed=1), n_resamples=4000)
    for est in (few, many):
        assert math.isfinite(est.low) and math.isfinite(est.high) and est.low <= est.value <= est.high
    assert many.high / many.low < few.high / few.low


def test_bootstrap_is_reproducible_and_seeded():
    data = noisy_log_cegs(8)
    a, b = bootstrap_geomean(data, seed=3), bootstrap_geomean(data, seed=3)
    c = bootstrap_geomean(data, seed=4)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)


def test_bootstrap_edge_cases():
    assert bootstrap_geomean(np.array([math.log(3.0)])).to_dict() == {
        "value": pytest.approx(3.0),
        "low": None,
        "high": None,
        "n": 1,
    }
    assert bootstrap_geomean(np.array([np.nan, np.nan])).value is None
    const = bootstrap_geomean(np.full(5, math.log(2.0)))
    assert const.low == pytest.approx(2.0) and const.high == pytest.approx(2.0)


def test_unpaired_bootstrap_resamples_both_sides():
    rng = np.random.default_rng(0)
    matrix = math.log(TRUE_CEG) + rng.normal(0, 0.1, (3, 1)) - rng.normal(0, 0.1, (1, 4))  # (3 ref, 4 new)
    matrix[0, 1] = np.nan  # an undefined pair is left out
    est = bootstrap_geomean(matrix, paired=False, n_resamples=2000)
    assert est.n == 11
    assert est.value == pytest.approx(math.exp(np.nanmean(matrix)))
    assert est.low < est.value < est.high


def test_mean_interval_is_the_student_t_interval():
    values = [3.1, 3.2, 3.3, 3.25]
    est = mean_interval(values)
    low, high = sps.t.interval(0.95, 3, loc=np.mean(values), scale=sps.sem(values))
    assert (est.value, est.low, est.high) == pytest.approx((np.mean(values), low, high))
    assert mean_interval([3.0]).low is None


def test_one_sided_ttest():
    t, p = ttest_below([3.20, 3.22, 3.21, 3.19, 3.23], 3.28)
    assert t < 0 and p < 0.001
    t, p = ttest_below([3.27, 3.29, 3.30], 3.28)
    assert p > 0.5
    assert ttest_below([3.0], 3.28) == (None, None)
    assert ttest_below([3.0, 3.0], 3.28) == (-math.inf, 0.0)
    assert ttest_below([3.5, 3.5], 3.28)[1] == 1.0


# ---- scaling -------------------------------------------------------------------------------
COMPUTE = np.geomspace(1e15, 1e19, 9)


def test_power_law_fit_recovers_parameters():
    loss = 40.0 * COMPUTE**-0.05
    fit = fit_scaling_law(COMPUTE, loss, fit_E=False)
    assert fit.A == pytest.approx(40.0, rel=1e-6) and fit.alpha == pytest.approx(0.05, rel=1e-6)
    assert fit.compute_for_loss(fit.loss(1e17)) == pytest.approx(1e17, rel=1e-6)


def test_fit_with_irreducible_loss_and_intervals():
    rng = np.random.default_rng(0)
    loss = 1.8 + 300.0 * COMPUTE**-0.15 + rng.normal(0, 0.002, COMPUTE.size)
    fit = fit_scaling_law(COMPUTE, loss, fit_E=True)
    assert fit.E == pytest.approx(1.8, abs=0.1) and fit.alpha == pytest.approx(0.15, abs=0.03)
    low, high = fit.intervals["alpha"]
    assert low < fit.alpha < high


def test_multiplier_matches_the_closed_form_for_zero_floor():
    ref = fit_scaling_law(COMPUTE, 40.0 * COMPUTE**-0.05, fit_E=False)
    new = fit_scaling_law(COMPUTE, 30.0 * COMPUTE**-0.06, fit_E=False)
    for c in (1e16, 1e18):
        # M = (A_ref / A_new)^(1/alpha_ref) * C^(alpha_new/alpha_ref - 1)  (docs/design.md §7)
        closed = (40.0 / 30.0) ** (1 / 0.05) * c ** (0.06 / 0.05 - 1)
        assert multiplier(ref, new, c) == pytest.approx(closed, rel=1e-5)


def test_compute_dependence_classification():
    rng = np.random.default_rng(1)

    def fit(A, alpha):
        return fit_scaling_law(
            COMPUTE, A * COMPUTE**-alpha * np.exp(rng.normal(0, 0.002, COMPUTE.size)), fit_E=False
        )

    ref = fit(40.0, 0.05)
    dependent = compute_dependence(ref, fit(40.0, 0.07), 1e15, 1e19)
    assert dependent.label == "gain grows"
    assert dependent.slope == pytest.approx(0.07 / 0.05 - 1, abs=0.05)
    independent = compute_dependence(ref, fit(30.0, 0.05), 1e15, 1e19)
    assert independent.label == "gain flat" and abs(independent.slope) < 0.05
    three_points = fit_scaling_law(COMPUTE[:3], 1.5 + 40.0 * COMPUTE[:3] ** -0.1, fit_E=True)
    assert three_points.cov is None
    assert compute_dependence(three_points, three_points, 1e15, 1e16).label == "inconclusive"
