"""Analysis of run records: CEG, seed statistics, attribution, scaling-law fits.

Every function here reads ``RunRecord`` objects (``lit_algos.records``); nothing is hard-coded.
"""

from lit_algos.analysis.attribution import Attribution, ComponentShare, attribute
from lit_algos.analysis.ceg import CEGReport, CEGSummary, PairCEG, ceg_value, compare, pair_ceg
from lit_algos.analysis.curves import UNITS, cost_at_loss
from lit_algos.analysis.runs import check_comparable, recipe_hash, resolve_runs
from lit_algos.analysis.scaling import (
    ComputeDependence,
    ScalingFit,
    compute_dependence,
    fit_scaling_law,
    multiplier,
    scaling_points,
)
from lit_algos.analysis.stats import Estimate, bootstrap_geomean, mean_interval, ttest_below

__all__ = [
    "UNITS",
    "Attribution",
    "CEGReport",
    "CEGSummary",
    "ComponentShare",
    "ComputeDependence",
    "Estimate",
    "PairCEG",
    "ScalingFit",
    "attribute",
    "bootstrap_geomean",
    "ceg_value",
    "check_comparable",
    "compare",
    "compute_dependence",
    "cost_at_loss",
    "fit_scaling_law",
    "mean_interval",
    "multiplier",
    "pair_ceg",
    "recipe_hash",
    "resolve_runs",
    "scaling_points",
    "ttest_below",
]
