"""CEG intervals that cover, censoring stated, L* robust to eval noise (issue 14, items 3-4).

Known answers: per-seed lognormal compute multipliers around a true CEG of 2.0; a true CEG of
5000 that the evaluation grid resolves only as ">= 1000"; eval noise sd 0.01 on a curve of
slope 0.1 nats per e-fold of compute (the raw-minimum rule returned ~1.92 for a truth of 2.0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lit_algos.analysis.ceg import compare, pair_ceg
from lit_algos.analysis.stats import log_ratio_interval
from lit_algos.analysis.synthetic import log_linear_loss, synthetic_record

TRUE_CEG = 2.0
SIGMA = 0.15  # per-seed sd of ln(compute multiplier)
GRID = list(np.geomspace(1e12, 1e15, 16))


def coverage(n: int, paired: bool, trials: int = 2000, seed: int = 0) -> float:
    """Share of trials whose 95% interval holds TRUE_CEG; ln costs as the CEG code sees them."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        log_ref = rng.normal(0.0, SIGMA, n)  # ln C_ref(L*) per seed (up to a common constant)
        log_new = rng.normal(-math.log(TRUE_CEG), SIGMA, n)
        if paired:
            est = log_ratio_interval(paired_logs=log_ref - log_new)
        else:
            est = log_ratio_interval(log_ref, log_new)
        hits += est.low <= TRUE_CEG <= est.high
    return hits / trials


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("n", [3, 5, 8])
def test_intervals_cover_at_least_93_percent(n, paired):
    # the percentile bootstrap covered 74% / 84% / 89% at 3 / 5 / 8 seeds; the t interval is exact
    # for normal ln costs, so about 95% (2000 trials: binomial sd 0.5 points)
    assert coverage(n, paired) >= 0.93


def noisy_runs(n: int, k: float, seed: int, paired: bool):
    rng = np.random.default_rng(seed)
    u, v = np.exp(rng.normal(0, SIGMA, n)), np.exp(rng.normal(0, SIGMA, n))
    refs = [
        synthetic_record(f"r{i}", seed=i, flops=GRID, loss_fn=log_linear_loss(k=float(u[i])))
        for i in range(n)
    ]
    news = [
        synthetic_record(
            f"n{i}",
            recipe="new",
            seed=i if paired else 100 + i,
            flops=GRID,
            loss_fn=log_linear_loss(k=k * float(v[i])),
        )
        for i in range(n)
    ]
    return refs, news, np.log(1 / u), np.log(1 / (k * v))  # ln C at any common L* (up to a constant)


@pytest.mark.parametrize("paired", [True, False])
def test_the_record_path_computes_the_same_interval(paired):
    refs, news, log_ref, log_new = noisy_runs(4, TRUE_CEG, seed=7, paired=paired)
    est = compare(refs, news).summaries[0].estimates["flops"]
    want = (
        log_ratio_interval(paired_logs=log_ref - log_new) if paired else log_ratio_interval(log_ref, log_new)
    )
    assert (est.value, est.low, est.high) == pytest.approx((want.value, want.low, want.high), rel=1e-6)
    assert ("paired" if paired else "Welch") in est.method and est.n == (4 if paired else 8)


def test_null_control_contains_one():
    # sdpa vs manual attention: the same math, so the same per-seed curves up to seed noise
    refs, news, *_ = noisy_runs(3, 1.0, seed=3, paired=True)
    est = compare(refs, news).summaries[0].estimates["flops"]
    assert est.low < 1.0 < est.high


def test_a_single_pair_says_why_there_is_no_interval():
    refs, news, *_ = noisy_runs(1, TRUE_CEG, seed=1, paired=True)
    est = compare(refs, news).summaries[0].estimates["flops"]
    assert est.low is None and "one pair" in est.note


def test_first_evaluation_below_l_star_is_a_lower_bound():
    ref = synthetic_record("r", flops=GRID, loss_fn=log_linear_loss())
    new = synthetic_record("n", recipe="new", flops=GRID, loss_fn=log_linear_loss(k=5000.0))  # truth 5000
    summary = compare([ref], [new]).summaries[0]
    est = summary.estimates["flops"]
    # the new curve's first evaluation (1e12 FLOPs) is already below L*: all we know is >= 1e15/1e12
    assert est.bound == ">=" and est.value == pytest.approx(1000.0) and est.value <= 5000.0
    assert est.text() == "≥ 1e+03" and "first evaluation" in summary.censored[0]


def test_seeds_that_disagree_share_one_l_star_that_every_run_reaches():
    u = [1.0, 1 + 1e-6, 1 + 2e-6]  # seeds differ by a tiny compute shift both sides share
    refs = [synthetic_record(f"r{s}", seed=s, flops=GRID, loss_fn=log_linear_loss(k=u[s])) for s in (0, 1, 2)]
    news = [
        synthetic_record(f"n{s}", recipe="new", seed=s, flops=GRID, loss_fn=log_linear_loss(k=k * u[s]))
        for s, k in ((0, 2.0), (1, 2.0), (2, 0.5))  # seed 2 ends above the reference's final loss
    ]
    summary = compare(refs, news).summaries[0]
    # auxiliary L* = seed 2's final loss, which every run of both sides reaches: no seed is censored
    # for ending above the others (it read "<= 1.59x" with seed 2 at its bound)
    assert summary.kind == "auxiliary" and summary.loss == pytest.approx(news[2].curve[-1].val_loss)
    est = summary.estimates["flops"]
    assert est.bound is None and summary.censored == []
    assert est.value == pytest.approx((2 * 2 * 0.5) ** (1 / 3), rel=1e-4) and est.low < est.value < est.high


def test_a_null_control_is_a_number_whose_interval_holds_one():
    """Same math on both sides (sdpa against manual attention): each new seed ends a hair above or
    below its reference seed; no seed may be censored for it, and the interval must hold 1."""
    rng = np.random.default_rng(4)
    refs, news = [], []
    for s in range(3):
        k = math.exp(rng.normal(0, SIGMA))  # the seed's own luck, shared by both sides (paired)
        jitter = [math.exp(rng.normal(0, 0.02)) for _ in range(2)]
        refs.append(synthetic_record(f"r{s}", seed=s, flops=GRID, loss_fn=log_linear_loss(k=k * jitter[0])))
        news.append(
            synthetic_record(
                f"n{s}", recipe="new", seed=s, flops=GRID, loss_fn=log_linear_loss(k=k * jitter[1])
            )
        )
    summary = compare(refs, news).summaries[0]
    est = summary.estimates["flops"]
    assert est.bound is None and summary.censored == [] and est.low < 1.0 < est.high


def test_diverged_seeds_are_listed_not_dropped():
    ref = synthetic_record("r", flops=GRID, loss_fn=log_linear_loss())
    bad = synthetic_record(
        "n", recipe="new", flops=GRID[:5], loss_fn=log_linear_loss(k=2.0), status="diverged"
    )
    summary = compare([ref], [bad]).summaries[0]
    assert summary.estimates["flops"].bound == "<="
    assert "status diverged" in summary.censored[0]


def noisy_pair(seed: int, sd: float, slope: float = 0.1):
    rng = np.random.default_rng(seed)
    grid = np.geomspace(1e12, 1e15, 100)

    def loss(f, k):
        return 10.0 - slope * math.log(k * f)

    ref = synthetic_record("r", flops=grid, losses=[loss(f, 1.0) + rng.normal(0, sd) for f in grid])
    new = synthetic_record(
        "n", recipe="new", flops=grid, losses=[loss(f, 2.0) + rng.normal(0, sd) for f in grid]
    )
    return ref, new


def test_l_star_is_robust_to_eval_noise():
    def mean_ceg(smooth):
        vals = [pair_ceg(*noisy_pair(s, 0.01), smooth=smooth).ceg["flops"] for s in range(60)]
        return math.exp(np.mean(np.log(vals)))

    assert mean_ceg(None) == pytest.approx(2.0, rel=0.02)  # the default, local-linear smoothing
    assert mean_ceg(1) < 1.95  # raw evaluations: the minimum of noise biases L* (and the CEG) low
