"""The analyses the ``ceg`` command and the sweeps print: CEG with attribution, scaling-law
comparison, allocation. Each returns one object whose ``to_dict()`` is the ``--json`` output and
from which ``lit_algos.analysis.tables`` builds the printed tables, so both show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lit_algos.analysis.allocation import (
    allocation_multiplier,
    allocation_points,
    extrapolation,
    fit_hoffmann,
    multiplier_interval,
)
from lit_algos.analysis.attribution import attribute
from lit_algos.analysis.ceg import compare
from lit_algos.analysis.runs import check_comparable, distinct_runs, single_recipe
from lit_algos.analysis.scaling import (
    compute_dependence,
    degenerate_reasons,
    fit_scaling_law,
    model_sizes,
    scaling_basis,
    scaling_points,
)
from lit_algos.errors import LitAlgosError
from lit_algos.records import RunRecord


@dataclass
class CEGResult:
    report: object  # lit_algos.analysis.ceg.CEGReport
    attribution: object | None = None  # lit_algos.analysis.attribution.Attribution

    def to_dict(self) -> dict:
        return {
            **self.report.to_dict(),
            "attribution": self.attribution.to_dict() if self.attribution else None,
        }


def ceg_with_attribution(
    refs: list[RunRecord],
    news: list[RunRecord],
    *,
    targets: list[float] = (),
    add: dict[str, list[RunRecord]] | None = None,
    remove: dict[str, list[RunRecord]] | None = None,
    unit: str = "flops",
    shapley: bool = False,
    method: str = "interp",
    smooth: int | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> CEGResult:
    """CEG of ``news`` over ``refs`` (one recipe each) and, with ``add`` / ``remove`` groups, the
    attribution (names with "+" in ``add`` are subsets, for Shapley shares)."""

    single_recipe(refs, "--ref")
    single_recipe(news, "--new")
    kwargs = dict(method=method, smooth=smooth, confidence=confidence, n_resamples=n_resamples, seed=seed)
    report = compare(refs, news, targets=list(targets), **kwargs)
    attribution = None
    if add or remove:
        add = add or {}
        attribution = attribute(
            refs,
            news,
            {k: v for k, v in add.items() if "+" not in k},
            remove or {},
            unit=unit,
            subsets={k: v for k, v in add.items() if "+" in k},
            shapley=shapley,
            **kwargs,
        )
    return CEGResult(report, attribution)


@dataclass
class ScalingComparison:
    points: str  # "final" or "frontier"
    confidence: float
    fits: dict  # side ("ref", "new") -> ScalingFit
    dependence: object  # ComputeDependence

    def to_dict(self) -> dict:
        return {
            "ref_fit": self.fits["ref"].to_dict(),
            "new_fit": self.fits["new"].to_dict(),
            "compute_dependence": self.dependence.to_dict(),
        }


def compare_scaling(
    refs: list[RunRecord],
    news: list[RunRecord],
    *,
    points: str = "final",
    fit_E: bool = True,
    E: float | None = None,
    confidence: float = 0.95,
    margin: float = 0.05,
    seed: int = 0,
) -> ScalingComparison:
    """``L(C) = E + A C^-alpha`` per side over a size ladder and the compute dependence of M(C).
    E fitted needs three model sizes per side; with two, E must be fixed (``E``) and the verdict
    says it rests on that value."""

    check_comparable(refs + news)
    refs, news = distinct_runs(refs, "--ref"), distinct_runs(news, "--new")
    fit_E = fit_E and E is None
    n_params = 3 if fit_E else 2
    fits, reasons, new_c = {}, [], None
    for side, runs in (("ref", refs), ("new", news)):
        if fit_E and len(model_sizes(runs)) == 2:
            raise LitAlgosError(
                f"The {side} runs span 2 model sizes: a scaling fit with E fitted needs at least three (E + A·C^-alpha "
                "cannot be determined from two computes; it gave confident verdicts of the wrong sign). Fix E with "
                "--E VALUE (e.g. --E 1.9 as Gundlach et al.), and the verdict rests on that value, or train a third size."
            )
        c, loss = scaling_points(runs, points)
        reasons += [f"{side}: {r}" for r in degenerate_reasons(runs, points, n_params)]
        if c.size < n_params:
            raise LitAlgosError(
                f"The {side} side gives {c.size} point(s) for a {n_params}-parameter scaling fit; "
                + "; ".join(reasons)
                + ". Train more sizes or seeds (lit-algos sweep scaling)."
            )
        fits[side] = fit_scaling_law(
            c, loss, fit_E=fit_E, confidence=confidence, E=E if E is not None else None
        )
        new_c = c
    basis = scaling_basis(news, points, None if fit_E else (E if E is not None else 0.0))
    dep = compute_dependence(
        fits["ref"],
        fits["new"],
        float(new_c.min()),
        float(new_c.max()),
        margin=margin,
        confidence=confidence,
        seed=seed,
        reasons=reasons,
        basis=basis,
    )
    return ScalingComparison(points, confidence, fits, dep)


@dataclass
class AllocationSummary:
    fit: object  # HoffmannFit
    n_runs: int
    compute: list[float] = field(default_factory=list)
    kaplan_to_chinchilla: list[float] = field(default_factory=list)
    interval: list[tuple[float, float] | None] = field(default_factory=list)  # of each multiplier
    extrapolated: list[str] = field(default_factory=list)  # why each multiplier is an extrapolation, or ""
    optimal_params: list[float] = field(default_factory=list)  # Chinchilla-optimal N at each compute
    kaplan_params: list[float] = field(default_factory=list)
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return {
            "fit": self.fit.to_dict(),
            "compute": self.compute,
            "kaplan_to_chinchilla": self.kaplan_to_chinchilla,
            "interval": [list(iv) if iv else None for iv in self.interval],
            "extrapolated": self.extrapolated,
            "confidence": self.confidence,
        }


def allocation_summary(
    refs: list[RunRecord], n_points: int = 4, confidence: float = 0.95, seed: int = 0
) -> AllocationSummary:
    """``L(N, D) = E + A/N^a + B/D^b`` over every evaluation of ``refs`` and the Kaplan ->
    Chinchilla multiplier at ``n_points`` computes across their range, each with its interval
    and a flag where the rules' (N, D) leave the runs' range."""

    n, d, loss = allocation_points(distinct_runs(refs, "--ref"))
    fit = fit_hoffmann(n, d, loss)
    compute = 6.0 * n * d
    grid = np.geomspace(compute.min(), compute.max(), n_points)
    mult = np.atleast_1d(allocation_multiplier(fit, grid))
    band = multiplier_interval(fit, grid, confidence=confidence, seed=seed)
    return AllocationSummary(
        fit,
        len(refs),
        grid.tolist(),
        mult.tolist(),
        [(float(lo), float(hi)) for lo, hi in zip(*band)] if band else [None] * len(grid),
        [extrapolation(fit, float(c), float(m)) for c, m in zip(grid, mult)],
        [float(fit.params_for(c, "chinchilla")) for c in grid],
        [float(fit.params_for(c, "kaplan")) for c in grid],
        confidence,
    )
