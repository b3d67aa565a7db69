"""Analysis of run records: CEG, seed statistics, attribution, scaling-law fits.

Every function here reads ``RunRecord`` objects (``lit_algos.records``); nothing is hard-coded.

Names load lazily (on first use): importing one submodule, such as the CLI's
``lit_algos.analysis.curves``, does not pull in scipy through the others.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_API = {
    "HoffmannFit": "lit_algos.analysis.allocation",
    "allocation_multiplier": "lit_algos.analysis.allocation",
    "fit_hoffmann": "lit_algos.analysis.allocation",
    "Attribution": "lit_algos.analysis.attribution",
    "ComponentShare": "lit_algos.analysis.attribution",
    "attribute": "lit_algos.analysis.attribution",
    "shapley_values": "lit_algos.analysis.attribution",
    "CEGReport": "lit_algos.analysis.ceg",
    "CEGSummary": "lit_algos.analysis.ceg",
    "PairCEG": "lit_algos.analysis.ceg",
    "ceg_value": "lit_algos.analysis.ceg",
    "compare": "lit_algos.analysis.ceg",
    "pair_ceg": "lit_algos.analysis.ceg",
    "UNITS": "lit_algos.analysis.curves",
    "cost_at_loss": "lit_algos.analysis.curves",
    "check_comparable": "lit_algos.analysis.runs",
    "recipe_hash": "lit_algos.analysis.runs",
    "resolve_runs": "lit_algos.analysis.runs",
    "ComputeDependence": "lit_algos.analysis.scaling",
    "ScalingFit": "lit_algos.analysis.scaling",
    "compute_dependence": "lit_algos.analysis.scaling",
    "degenerate_reasons": "lit_algos.analysis.scaling",
    "fit_scaling_law": "lit_algos.analysis.scaling",
    "multiplier": "lit_algos.analysis.scaling",
    "scaling_points": "lit_algos.analysis.scaling",
    "Estimate": "lit_algos.analysis.stats",
    "bootstrap_geomean": "lit_algos.analysis.stats",
    "log_ratio_interval": "lit_algos.analysis.stats",
    "mean_interval": "lit_algos.analysis.stats",
    "ttest_below": "lit_algos.analysis.stats",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'lit_algos.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return __all__
