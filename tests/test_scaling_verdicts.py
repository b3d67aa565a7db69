"""Scaling verdicts with their sign, M(C) intervals, fixed E, degenerate inputs, and allocation
(lit_algos.analysis.scaling / allocation; issue 14 item 5).

Known answers:
- ref 5 + 10 C^-0.1, new 5 + 6 C^-0.09: M(C) = (10/6)^10 C^-0.1, i.e. 16.5x at 1e10 down to 6.6x
  at 1e14, slope -0.1: the gain shrinks (it was labelled "compute-independent");
- ref 1.9 + 30 C^-0.1, new 1.9 + 30 C^-0.12: slope 0.12/0.1 - 1 = +0.2 (fixing E = 0 turned it
  into "shrinks");
- Hoffmann's L(N, D) (E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28): Kaplan -> Chinchilla
  multiplier 1.067x at 1e18 FLOPs and 26.1x at 1e23.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from lit_algos.analysis.allocation import HoffmannFit, allocation_multiplier, allocation_points, fit_hoffmann
from lit_algos.analysis.scaling import compute_dependence, degenerate_reasons, fit_scaling_law, plateau_reason
from lit_algos.analysis.synthetic import synthetic_record

C = np.geomspace(1e10, 1e14, 9)


def noisy(values: np.ndarray, seed: int, sd: float = 1e-4) -> np.ndarray:
    return values * np.exp(np.random.default_rng(seed).normal(0, sd, values.size))


def test_a_shrinking_gain_is_labelled_with_its_sign_and_m_has_intervals():
    ref = fit_scaling_law(C, noisy(5 + 10 * C**-0.1, 0))
    new = fit_scaling_law(C, noisy(5 + 6 * C**-0.09, 1))
    dep = compute_dependence(ref, new, 1e10, 1e14)
    assert dep.label == "gain shrinks"
    assert dep.slope == pytest.approx(-0.1, abs=0.01) and dep.interval[1] < 0
    truth = (10 / 6) ** 10
    assert dep.m_lo == pytest.approx(truth * 1e10**-0.1, rel=0.05)  # 16.5x
    assert dep.m_hi == pytest.approx(truth * 1e14**-0.1, rel=0.05)  # 6.6x
    assert dep.m_lo_interval[0] < truth * 1e10**-0.1 < dep.m_lo_interval[1]
    assert dep.m_hi_interval[0] < truth * 1e14**-0.1 < dep.m_hi_interval[1]


def test_fixing_e_recovers_a_growing_gain():
    ref_loss, new_loss = noisy(1.9 + 30 * C**-0.1, 2), noisy(1.9 + 30 * C**-0.12, 3)
    fixed = compute_dependence(
        fit_scaling_law(C, ref_loss, E=1.9), fit_scaling_law(C, new_loss, E=1.9), 1e10, 1e14
    )
    assert fixed.label == "gain grows" and fixed.slope == pytest.approx(0.2, abs=0.02)
    fitted = compute_dependence(fit_scaling_law(C, ref_loss), fit_scaling_law(C, new_loss), 1e10, 1e14)
    assert fitted.slope == pytest.approx(0.2, abs=0.05)
    zero = compute_dependence(
        fit_scaling_law(C, ref_loss, fit_E=False), fit_scaling_law(C, new_loss, fit_E=False), 1e10, 1e14
    )
    assert zero.slope < 0.1  # E = 0 on a loss with a floor of 1.9: the slope is wrong, hence --E


def test_a_fixed_e_above_a_loss_is_refused():
    with pytest.raises(Exception, match="above the fixed irreducible loss"):
        fit_scaling_law(C, 1.5 + C**-0.1, E=2.0)


def size_runs(sizes, seeds=(0,)):
    return [
        synthetic_record(
            f"s{n}-{s}",
            recipe="r",
            seed=s,
            config={"model": {"n_layer": n}},
            flops=[1e12 * n, 1e13 * n],
            losses=[5, 4 - 0.1 * n],
        )
        for n in sizes
        for s in seeds
    ]


def test_degenerate_inputs_are_named():
    one_size = degenerate_reasons(size_runs([2], seeds=(0, 1, 2, 3, 4)), "final", 3)
    assert one_size == ["one model size: a scaling law needs at least two model sizes"]
    frontier = degenerate_reasons(size_runs([2], seeds=(0,)), "frontier", 2)
    assert "a frontier built from one size's checkpoints" in frontier[0]
    too_few = degenerate_reasons(size_runs([1, 2, 3]), "final", 3)
    assert too_few == ["3 point(s) for a 3-parameter fit: an interval needs more points than parameters"]
    assert degenerate_reasons(size_runs([1, 2, 3], seeds=(0, 1)), "final", 3) == []
    ref = fit_scaling_law(C, noisy(5 + 10 * C**-0.1, 0))
    dep = compute_dependence(ref, ref, 1e10, 1e14, reasons=one_size)
    assert dep.label == "inconclusive" and "one model size" in dep.note


# An LSTM ladder that never left the unigram plateau (gundlach full, 2026-12-02): three sizes, three
# seeds, the loss at 4e12 FLOPs no lower than at 5e11. A free-E fit leaves ln A hundreds wide.
PLATEAU_C = np.repeat([5.154e11, 1.649e12, 4.020e12], 3)
PLATEAU_L = np.array([6.0631, 6.0710, 6.0635, 6.0647, 6.0755, 6.0621, 6.0804, 6.0874, 6.0756])


def test_a_plateau_is_named_and_its_fit_does_not_overflow():
    reason = plateau_reason(PLATEAU_C, PLATEAU_L)
    assert "the loss does not fall with compute" in reason and "6.066 at 5.15e+11" in reason
    assert plateau_reason(C, 5 + 10 * C**-0.1) == ""
    assert plateau_reason(np.array([1e12, 1e12]), np.array([5.0, 5.1])) == ""  # one compute: not this reason
    fit = fit_scaling_law(PLATEAU_C, PLATEAU_L)  # raised OverflowError from e^lnA's upper bound
    lo, hi = fit.intervals["A"]
    assert 0 <= lo <= fit.A <= hi  # the upper bound may be inf: A is not determined by these points
    runs = [
        synthetic_record(
            f"p{i}",
            recipe="r",
            seed=i % 3,
            config={"model": {"n_layer": 1 + i // 3}},
            flops=[c / 10, c],
            losses=[8.0, y],
        )  # fmt: skip
        for i, (c, y) in enumerate(zip(PLATEAU_C, PLATEAU_L))
    ]
    assert any("does not fall with compute" in r for r in degenerate_reasons(runs, "final", 3))


def test_sweep_scaling_defaults_give_params_plus_two_points_per_fit():
    from lit_algos.cli import sweep_cmds

    parser = argparse.ArgumentParser()
    sweep_cmds.register(parser.add_subparsers())
    args = parser.parse_args(["sweep", "scaling"])
    assert args.seeds * len(args.scales) >= 3 + 2  # E, A, alpha + 2
    assert len(set(args.scales)) >= 2


def test_hoffmann_fit_reproduces_the_kaplan_to_chinchilla_multiplier():
    truth = HoffmannFit(1.69, 406.4, 410.7, 0.34, 0.28)
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6)))
    fit = fit_hoffmann(n, d, truth.loss(n, d))  # noise-free synthetic ladder
    m = allocation_multiplier(fit, np.array([1e18, 1e23]))
    assert m[0] == pytest.approx(1.067, rel=0.05) and m[1] == pytest.approx(26.1, rel=0.05)
    c = 1e21  # compute-optimal split: 6 N D = C and dL/dN = 0 along it
    n_opt = float(fit.params_for(c))
    grid = n_opt * np.array([0.5, 1.0, 2.0])
    assert np.argmin(fit.loss(grid, c / (6 * grid))) == 1


def test_a_single_size_cannot_fit_l_of_n_and_d():
    records = size_runs([2], seeds=(0,))
    for r in records:
        r.params = {"non_embedding": 1000}
    with pytest.raises(Exception, match="at least two model sizes"):
        fit_hoffmann(*allocation_points(records))
