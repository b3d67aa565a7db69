"""Compute-equivalent gain (CEG): how much less compute a new recipe needs to reach a loss.

``CEG = C_ref(L*) / C_new(L*)`` (Sanderson et al. 2025), reported in FLOPs, training seconds
and tokens. Two rules for C(L*):

- ``interp`` (default, DESIGN §7): the monotone curve (running minimum); C interpolated
  linearly in (log C, loss) between the two evaluations that bracket L*.
- ``paper``: the rule of the paper's own analysis notebook (see ``paper_pair``).

L* is the reference's final loss (primary CEG); when the new recipe never reaches it, L* is
the new recipe's best loss and the CEG is *auxiliary*; with ``target`` it is that loss.

Several seeds: one CEG per pair of runs, their geometric mean, and a bootstrap interval.
Runs are paired by seed when both sides have the same set of seeds; otherwise every
(ref, new) combination is a pair and the two sides are resampled independently.

Time decomposition: ``time speedup = FLOP CEG x throughput ratio``, where the throughput
ratio (new over ref, in FLOPs per training second up to L*) is the systems part of a gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lit_algos.analysis.curves import (
    UNITS,
    cost_at_loss,
    first_index_at_or_below,
    running_min,
    smoothed_curve,
    trailing_mean,
)
from lit_algos.analysis.runs import check_comparable
from lit_algos.analysis.stats import Estimate, bootstrap_geomean
from lit_algos.errors import LitAlgosError
from lit_algos.records import RunRecord

METHODS = ("interp", "paper")
PAPER_SMOOTH_WINDOW = 8  # the notebook's moving-average window over evaluations


@dataclass
class PairCEG:
    """The CEG of one new run over one reference run, in every unit."""

    ref_run: str
    new_run: str
    ref_seed: int
    new_seed: int
    kind: str  # primary | auxiliary | target | undefined
    loss: float | None  # L*
    cost_ref: dict[str, float | None] = field(default_factory=dict)
    cost_new: dict[str, float | None] = field(default_factory=dict)
    ceg: dict[str, float | None] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _ratios(cost_ref: dict, cost_new: dict) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for unit in cost_ref:
        r, n = cost_ref.get(unit), cost_new.get(unit)
        out[unit] = r / n if r is not None and n is not None and r > 0 and n > 0 else None
    f, s = out.get("flops"), out.get("train_seconds")
    out["throughput"] = s / f if f and s else None  # = (F_new/T_new) / (F_ref/T_ref)
    return out


def interp_pair(ref: RunRecord, new: RunRecord, target: float | None = None, smooth: int = 1) -> PairCEG:
    """DESIGN §7 rule: monotone curves, C interpolated in (log C, loss)."""
    ref_curve, new_curve = smoothed_curve(ref.curve, smooth), smoothed_curve(new.curve, smooth)
    pair = PairCEG(ref.run_id, new.run_id, ref.seed, new.seed, "undefined", None)
    ref_best = float(running_min(np.array([p.val_loss for p in ref_curve]))[-1])
    new_best = float(running_min(np.array([p.val_loss for p in new_curve]))[-1])
    if target is not None:
        pair.kind, pair.loss = "target", float(target)
    elif cost_at_loss(new_curve, ref_best) is not None:
        pair.kind, pair.loss = "primary", ref_best
    else:  # the new recipe never reaches the reference's final loss: compare at its own best
        pair.kind, pair.loss = "auxiliary", new_best
    if not math.isfinite(pair.loss):
        pair.kind, pair.note = "undefined", "no finite validation loss"
        return pair
    c_ref, c_new = cost_at_loss(ref_curve, pair.loss), cost_at_loss(new_curve, pair.loss)
    if c_ref is None or c_new is None:
        who = " and ".join(w for w, c in (("reference", c_ref), ("new", c_new)) if c is None)
        pair.note = f"{who} never reached loss {pair.loss:.4f}"
        if pair.kind != "target":
            pair.kind = "undefined"
    pair.cost_ref = c_ref or {u: None for u in UNITS}
    pair.cost_new = c_new or {u: None for u in UNITS}
    pair.ceg = _ratios(pair.cost_ref, pair.cost_new)
    return pair


def paper_pair(
    ref: RunRecord, new: RunRecord, target: float | None = None, smooth: int = PAPER_SMOOTH_WINDOW
) -> PairCEG:
    """The rule of Sanderson et al.'s analysis notebook (``results.ipynb`` in
    github.com/jcksanderson/llm-algorithmic-progress), applied to evaluation indices:

    1. smooth each validation curve with a trailing mean over the last ``min(i+1, 8)`` evaluations;
    2. L* = the reference's final smoothed loss (no running minimum);
    3. C(L*) = 1 + the index of the first evaluation whose smoothed loss is <= L* (no
       interpolation); CEG = C_ref / C_new in this "evals" unit (the paper's table);
    4. if the new run never gets there: L* = its minimum smoothed loss, C_new = 1 + the index
       of that minimum, C_ref = 1 + the first reference index at or below it (auxiliary CEG);
       undefined when the reference never gets there either.

    FLOPs, seconds and tokens are read at the same evaluations (an extension: the paper
    reports step counts only; a zero cost there, e.g. an evaluation at step 0, is undefined).
    """
    r = trailing_mean(np.array([p.val_loss for p in ref.curve], dtype=float), smooth)
    n = trailing_mean(np.array([p.val_loss for p in new.curve], dtype=float), smooth)
    pair = PairCEG(ref.run_id, new.run_id, ref.seed, new.seed, "undefined", None)
    pair.kind, pair.loss = ("target", float(target)) if target is not None else ("primary", float(r[-1]))
    i_ref, i_new = first_index_at_or_below(r, pair.loss), first_index_at_or_below(n, pair.loss)
    if pair.kind == "primary" and i_new is None:
        pair.kind, pair.loss = "auxiliary", float(np.nanmin(n))
        i_new = int(np.nanargmin(n))
        i_ref = first_index_at_or_below(r, pair.loss)
    if i_ref is None or i_new is None:
        who = " and ".join(w for w, i in (("reference", i_ref), ("new", i_new)) if i is None)
        pair.note = f"{who} never reached smoothed loss {pair.loss:.4f}"
        if pair.kind != "target":
            pair.kind = "undefined"
    units = ("evals", *UNITS)

    def costs(curve, i):
        if i is None:
            return {u: None for u in units}
        return {"evals": float(i + 1), **{u: float(getattr(curve[i], u)) for u in UNITS}}

    pair.cost_ref, pair.cost_new = costs(ref.curve, i_ref), costs(new.curve, i_new)
    pair.ceg = _ratios(pair.cost_ref, pair.cost_new)
    return pair


def pair_ceg(
    ref: RunRecord,
    new: RunRecord,
    target: float | None = None,
    method: str = "interp",
    smooth: int | None = None,
) -> PairCEG:
    if method not in METHODS:
        raise LitAlgosError(f"Unknown CEG method {method!r}. Allowed: {', '.join(METHODS)}.")
    if method == "paper":
        return paper_pair(ref, new, target, PAPER_SMOOTH_WINDOW if smooth is None else smooth)
    return interp_pair(ref, new, target, 1 if smooth is None else smooth)


@dataclass
class CEGSummary:
    """The CEG over seeds at one L* rule (primary/auxiliary or a target), in every unit."""

    measure: str  # "primary" (the L* = reference-final rule, auxiliary where needed) or "target"
    kind: str  # primary | auxiliary | mixed | target | undefined
    loss: float | None  # mean L* over pairs
    paired: bool
    estimates: dict[str, Estimate]  # unit -> geometric mean with interval
    pairs: list[PairCEG]

    def to_dict(self) -> dict:
        return {
            "measure": self.measure,
            "kind": self.kind,
            "loss": self.loss,
            "paired": self.paired,
            "ceg": {u: e.to_dict() for u, e in self.estimates.items()},
            "pairs": [p.to_dict() for p in self.pairs],
        }


def pair_up(refs: list[RunRecord], news: list[RunRecord]) -> tuple[bool, list[tuple[int, int]]]:
    """Pair by seed when both sides hold the same set of distinct seeds; else all combinations."""
    ref_seeds, new_seeds = [r.seed for r in refs], [n.seed for n in news]
    if (
        len(set(ref_seeds)) == len(refs)
        and len(set(new_seeds)) == len(news)
        and set(ref_seeds) == set(new_seeds)
    ):
        where = {s: j for j, s in enumerate(new_seeds)}
        return True, [(i, where[s]) for i, s in enumerate(ref_seeds)]
    return False, [(i, j) for i in range(len(refs)) for j in range(len(news))]


def summarize(
    refs: list[RunRecord],
    news: list[RunRecord],
    target: float | None = None,
    method: str = "interp",
    smooth: int | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> CEGSummary:
    paired, index_pairs = pair_up(refs, news)
    pairs = [pair_ceg(refs[i], news[j], target, method, smooth) for i, j in index_pairs]
    units = (("evals",) if method == "paper" else ()) + UNITS + ("throughput",)
    estimates = {}
    for unit in units:
        logs = np.full((len(refs), len(news)), np.nan)
        for (i, j), p in zip(index_pairs, pairs):
            value = p.ceg.get(unit)
            if value is not None and value > 0:
                logs[i, j] = math.log(value)
        data = np.array([logs[i, j] for i, j in index_pairs]) if paired else logs
        estimates[unit] = bootstrap_geomean(
            data, paired=paired, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
    kinds = {p.kind for p in pairs if p.kind != "undefined"}
    kind = kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "undefined")
    defined = [p.loss for p in pairs if p.loss is not None and p.kind != "undefined"]
    return CEGSummary(
        measure="target" if target is not None else "primary",
        kind=kind,
        loss=float(np.mean(defined)) if defined else None,
        paired=paired,
        estimates=estimates,
        pairs=pairs,
    )


@dataclass
class CEGReport:
    ref: list[str]  # run ids
    new: list[str]
    ref_recipe: str
    new_recipe: str
    method: str
    val_fingerprint: str
    confidence: float
    summaries: list[CEGSummary]

    def to_dict(self) -> dict:
        return {
            "ref": {"recipe": self.ref_recipe, "runs": self.ref},
            "new": {"recipe": self.new_recipe, "runs": self.new},
            "method": self.method,
            "val_fingerprint": self.val_fingerprint,
            "confidence": self.confidence,
            "results": [s.to_dict() for s in self.summaries],
        }


def compare(
    refs: list[RunRecord],
    news: list[RunRecord],
    targets: list[float] | tuple[float, ...] = (),
    method: str = "interp",
    smooth: int | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> CEGReport:
    """Primary (or auxiliary) CEG of ``news`` over ``refs``, plus one CEG per extra target loss."""
    if not refs or not news:
        raise LitAlgosError("CEG needs at least one reference run and one new run.")
    fingerprint = check_comparable(refs + news)
    kwargs = dict(method=method, smooth=smooth, confidence=confidence, n_resamples=n_resamples, seed=seed)
    summaries = [summarize(refs, news, None, **kwargs)]
    summaries += [summarize(refs, news, float(t), **kwargs) for t in targets]
    return CEGReport(
        ref=[r.run_id for r in refs],
        new=[n.run_id for n in news],
        ref_recipe=", ".join(sorted({r.recipe for r in refs})),
        new_recipe=", ".join(sorted({n.recipe for n in news})),
        method=method,
        val_fingerprint=fingerprint,
        confidence=confidence,
        summaries=summaries,
    )


def ceg_value(refs: list[RunRecord], news: list[RunRecord], unit: str = "flops", **kwargs) -> Estimate:
    """Shorthand: the primary CEG estimate in one unit."""
    return compare(refs, news, **kwargs).summaries[0].estimates[unit]


__all__ = [
    "METHODS",
    "CEGReport",
    "CEGSummary",
    "PairCEG",
    "ceg_value",
    "compare",
    "interp_pair",
    "pair_ceg",
    "pair_up",
    "paper_pair",
    "summarize",
]
