"""Analysis of run records: CEG, seed statistics, attribution, scaling-law fits.

Every function here reads ``RunRecord`` objects (``lit_algos.records``); nothing is hard-coded.
"""

from lit_algos.analysis.allocation import HoffmannFit, allocation_multiplier, fit_hoffmann
from lit_algos.analysis.attribution import Attribution, ComponentShare, attribute, shapley_values
from lit_algos.analysis.ceg import CEGReport, CEGSummary, PairCEG, ceg_value, compare, pair_ceg
from lit_algos.analysis.curves import UNITS, cost_at_loss
from lit_algos.analysis.runs import check_comparable, recipe_hash, resolve_runs
from lit_algos.analysis.scaling import (
    ComputeDependence,
    ScalingFit,
    compute_dependence,
    degenerate_reasons,
    fit_scaling_law,
    multiplier,
    scaling_points,
)
from lit_algos.analysis.stats import (
    Estimate,
    bootstrap_geomean,
    log_ratio_interval,
    mean_interval,
    ttest_below,
)

__all__ = [
    "UNITS",
    "Attribution",
    "CEGReport",
    "CEGSummary",
    "ComponentShare",
    "HoffmannFit",
    "ComputeDependence",
    "Estimate",
    "PairCEG",
    "ScalingFit",
    "allocation_multiplier",
    "attribute",
    "bootstrap_geomean",
    "ceg_value",
    "check_comparable",
    "compare",
    "compute_dependence",
    "degenerate_reasons",
    "cost_at_loss",
    "fit_hoffmann",
    "fit_scaling_law",
    "log_ratio_interval",
    "mean_interval",
    "multiplier",
    "pair_ceg",
    "recipe_hash",
    "resolve_runs",
    "scaling_points",
    "shapley_values",
    "ttest_below",
]
