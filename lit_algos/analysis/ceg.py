"""Compute-equivalent gain (CEG): how much less compute a new recipe needs to reach a loss.

``CEG = C_ref(L*) / C_new(L*)`` (Sanderson et al. 2025), reported in FLOPs, training seconds
and tokens. Two rules for C(L*):

- ``interp`` (default, docs/design.md §7): the monotone curve (running minimum); C interpolated
  linearly in (log C, loss) between the two evaluations that bracket L*.
- ``paper``: the rule of the paper's own analysis notebook (see ``paper_pair``).

Curves are first made robust (``curves.robust_curve``): an evaluation far outside its
neighbours' range is set aside as an outlier, then each loss is replaced by a local quadratic
fit in (ln FLOPs, loss) over a window chosen by leave-one-out cross-validation (``--smooth N``
fixes it; 1 = raw evaluations), so eval noise biases neither L* nor C(L*), one spike does not
move a CEG, and a noise-free curve is left as it is, however sharply it bends. Every run whose
crossing the grid cannot resolve, and every outlier, is named in ``CEGSummary.warnings``.

One common L* for every seed (``summarize``): with a ``target``, that loss; else the *primary*
L* = the highest of the reference seeds' (smoothed) final losses, which every reference seed
reaches; if a new seed ends above it, the *auxiliary* L* = the highest of the new seeds' final
losses, which every complete run of both sides reaches. A run whose cost the evaluation grid cannot resolve is *censored*: never reached L*
(cost > its total spend) or already below L* at its first evaluation (cost <= that
evaluation's). A CEG built on a censored cost is a bound (``>= x`` or ``<= x``), never a number.

Several seeds: the geometric mean CEG with a Student-t interval on log costs (paired by seed
when both sides hold the same seeds; Welch unpaired otherwise), ``stats.log_ratio_interval``.

Time decomposition: ``time speedup = FLOP CEG x throughput ratio``. The throughput ratio is
*measured* (the runs' training FLOP/s = tokens/s x FLOPs per token), so the identity is a check:
``CEGSummary.identity`` holds its relative gap.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from lit_algos.analysis.censoring import (
    RATIO_BOUND,
    RunCost,
    describe_censor,
    pair_bound,
    run_cost,
    sparse_grid_warning,
)
from lit_algos.analysis.curves import (
    UNITS,
    first_index_at_or_below,
    outliers,
    robust_curve,
    running_min,
    trailing_mean,
)
from lit_algos.analysis.runs import check_comparable, distinct_runs
from lit_algos.analysis.stats import Estimate, log_ratio_interval
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
    bound: str | None = None  # ">=" / "<=": the CEG is a bound (a censored cost), not a number
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


def interp_pair(
    ref: RunRecord, new: RunRecord, target: float | None = None, smooth: int | None = None
) -> PairCEG:
    """docs/design.md §7 rule for one pair: smoothed monotone curves, C interpolated in (log C, loss)."""
    summary = summarize([ref], [new], target, "interp", smooth)
    return summary.pairs[0]


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
    units = ("evals", *UNITS)
    if not (np.isfinite(r).any() and np.isfinite(n).any()):  # a run that diverged from the start
        who = " and ".join(w for w, v in (("reference", r), ("new", n)) if not np.isfinite(v).any())
        pair.note = f"{who} has no finite smoothed loss (diverged)"
        pair.cost_ref = pair.cost_new = {u: None for u in units}
        pair.ceg = _ratios(pair.cost_ref, pair.cost_new)
        return pair
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
    return interp_pair(ref, new, target, smooth)


@dataclass
class CEGSummary:
    """The CEG over seeds at one common L*, in every unit."""

    measure: str  # "primary" (the L* = reference-final rule, auxiliary where needed) or "target"
    kind: str  # primary | auxiliary | target | undefined
    loss: float | None  # the common L*
    paired: bool
    estimates: dict[str, Estimate]  # unit -> geometric mean with interval (or a bound)
    pairs: list[PairCEG]
    runs: dict[str, list[RunCost]] = field(default_factory=dict)  # "ref"/"new" -> cost of each run at L*
    excluded: list[str] = field(default_factory=list)  # runs left out, each with its reason
    censored: list[str] = field(default_factory=list)  # runs whose cost is only a bound, with why
    identity: dict | None = None  # speedup vs FLOP CEG x measured throughput ratio
    note: str = ""
    warnings: list[str] = field(default_factory=list)  # sparse grids, outliers, raw-read crossings

    def to_dict(self) -> dict:
        return {
            "warnings": self.warnings,
            "measure": self.measure,
            "kind": self.kind,
            "loss": self.loss,
            "paired": self.paired,
            "ceg": {u: e.to_dict() for u, e in self.estimates.items()},
            "pairs": [p.to_dict() for p in self.pairs],
            "runs": {side: [c.to_dict() for c in costs] for side, costs in self.runs.items()},
            "excluded": self.excluded,
            "censored": self.censored,
            "identity": self.identity,
            "note": self.note,
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


def smoothed(record: RunRecord, smooth: int | None):
    """The record's curve as CEG reads it (smoothed; cached, as attribution reads a run many times)."""
    key = (tuple(dataclasses.astuple(p) for p in record.curve), smooth)
    hit = _SMOOTH_CACHE.get(key)
    if hit is None:
        hit = robust_curve(record.curve, None if smooth is None else max(1, int(smooth)))
        if len(_SMOOTH_CACHE) > 4096:
            _SMOOTH_CACHE.clear()
        _SMOOTH_CACHE[key] = hit
    return list(hit)


_SMOOTH_CACHE: dict = {}


def final_smoothed_loss(curve) -> float:
    return float(running_min(np.array([p.val_loss for p in curve], dtype=float))[-1])


def common_loss(
    ref_curves, new_curves, target: float | None, ref_ok=None, new_ok=None
) -> tuple[str, float | None]:
    """The one L* every pair is compared at, and its kind (module docstring). Only complete runs
    (``*_ok``) choose L*: a diverged run's best loss says nothing about the recipe.

    Primary: the highest reference seed's final (smoothed, best-so-far) loss. When a complete new
    seed ends above it, auxiliary: the highest new seed's final loss, which every complete run of
    both sides reaches. So no complete seed is censored for ending a little above the others (a
    null control, sdpa against manual attention, read "<= 1x" on the seed that did) and seeds
    never get different L*s."""
    if target is not None:
        return "target", float(target)
    ref_ok = ref_ok or [True] * len(ref_curves)
    new_ok = new_ok or [True] * len(new_curves)
    ref_finals = [final_smoothed_loss(c) for c, ok in zip(ref_curves, ref_ok) if ok or not any(ref_ok)]
    ref_finals = [v for v in ref_finals if math.isfinite(v)]
    if not ref_finals:
        return "undefined", None
    primary = max(ref_finals)
    new_finals = [final_smoothed_loss(c) for c, ok in zip(new_curves, new_ok) if ok]
    new_finals = [v for v in new_finals if math.isfinite(v)]
    if not new_finals or max(new_finals) <= primary:
        return "primary", primary
    return "auxiliary", max(new_finals)


def _estimate(
    ref_costs: list[RunCost],
    new_costs: list[RunCost],
    index_pairs,
    paired: bool,
    value_of,
    confidence: float,
) -> Estimate:
    """Geometric-mean ratio ref/new of ``value_of(cost)`` with its t interval, or a bound."""
    lr = np.array([math.log(v) if (v := value_of(c)) and v > 0 else np.nan for c in ref_costs])
    ln = np.array([math.log(v) if (v := value_of(c)) and v > 0 else np.nan for c in new_costs])
    bounds = set()
    for side, costs in (("ref", ref_costs), ("new", new_costs)):
        bounds |= {RATIO_BOUND[(side, c.censor)] for c in costs if c.censor}
    if len(bounds) > 1:
        return Estimate(None, n=len(index_pairs), note="censored in both directions: no bound either")
    if paired:
        est = log_ratio_interval(
            paired_logs=np.array([lr[i] - ln[j] for i, j in index_pairs]), confidence=confidence
        )
    else:
        est = log_ratio_interval(lr, ln, confidence=confidence)
    if bounds and est.value is not None:
        est.bound, est.low, est.high = bounds.pop(), None, None
        est.note = "a bound: some costs are censored (see the censored runs)"
    return est


def summarize(
    refs: list[RunRecord],
    news: list[RunRecord],
    target: float | None = None,
    method: str = "interp",
    smooth: int | None = None,
    confidence: float = 0.95,
    **_ignored,
) -> CEGSummary:
    """CEG of ``news`` over ``refs`` at one common L* (module docstring)."""
    excluded = [f"{r.run_id}: no evaluation curve (status {r.status})" for r in [*refs, *news] if not r.curve]
    refs, news = [r for r in refs if r.curve], [n for n in news if n.curve]
    paired, index_pairs = pair_up(refs, news)
    units = UNITS
    if method == "paper":
        return _summarize_paper(refs, news, target, smooth, confidence, paired, index_pairs, excluded)
    ref_curves, new_curves = [smoothed(r, smooth) for r in refs], [smoothed(n, smooth) for n in news]
    kind, loss = common_loss(
        ref_curves, new_curves, target, [r.complete for r in refs], [n.complete for n in news]
    )
    measure = "target" if target is not None else "primary"
    if loss is None or not refs or not news:
        return CEGSummary(
            measure,
            "undefined",
            None,
            paired,
            {u: Estimate(None) for u in (*units, "throughput")},
            [],
            excluded=excluded,
            note="no finite validation loss",
        )
    ref_costs = [run_cost(r, c, loss) for r, c in zip(refs, ref_curves)]
    new_costs = [run_cost(n, c, loss) for n, c in zip(news, new_curves)]
    estimates = {
        u: _estimate(ref_costs, new_costs, index_pairs, paired, lambda c, u=u: c.cost.get(u), confidence)
        for u in units
    }
    estimates["throughput"] = _throughput(ref_costs, new_costs, index_pairs, paired, confidence)
    pairs = _pairs(ref_costs, new_costs, index_pairs, kind, loss)
    censored = [
        describe_censor(c, side, loss)
        for side, costs in (("ref", ref_costs), ("new", new_costs))
        for c in costs
        if c.censor
    ]
    warnings = curve_warnings({"ref": refs, "new": news}, {"ref": ref_costs, "new": new_costs}, loss, smooth)
    return CEGSummary(
        measure=measure,
        kind=kind,
        loss=loss,
        paired=paired,
        estimates=estimates,
        pairs=pairs,
        runs={"ref": ref_costs, "new": new_costs},
        excluded=excluded,
        censored=censored,
        identity=identity_check(estimates),
        warnings=warnings,
    )


def _throughput(ref_costs, new_costs, index_pairs, paired: bool, confidence: float) -> Estimate:
    """Measured throughput: new FLOP/s over ref FLOP/s (the ratio of ref/new "seconds per FLOP")."""
    plain = [RunCost(c.run_id, c.seed, c.status, {}, None, c.flop_per_s) for c in ref_costs]
    plain_new = [RunCost(c.run_id, c.seed, c.status, {}, None, c.flop_per_s) for c in new_costs]
    return _estimate(
        plain,
        plain_new,
        index_pairs,
        paired,
        lambda c: 1.0 / c.flop_per_s if c.flop_per_s else None,
        confidence,
    )


def _pairs(ref_costs, new_costs, index_pairs, kind: str, loss: float) -> list[PairCEG]:
    """The CEG of each (ref, new) pair of runs, a bound where one side is censored."""
    pairs = []
    for i, j in index_pairs:
        r, n = ref_costs[i], new_costs[j]
        pair = PairCEG(r.run_id, n.run_id, r.seed, n.seed, kind, loss, cost_ref=r.cost, cost_new=n.cost)
        pair.bound, ok = pair_bound(r, n)
        pair.ceg = _ratios(r.cost, n.cost)
        if r.flop_per_s and n.flop_per_s:
            pair.ceg["throughput"] = n.flop_per_s / r.flop_per_s
        notes = [describe_censor(c, side, loss) for side, c in (("reference", r), ("new", n)) if c.censor]
        pair.note = "; ".join(notes) + ("" if ok else " (no bound: censored both ways)")
        if not ok:
            pair.ceg = {u: None for u in pair.ceg}
        pairs.append(pair)
    return pairs


def curve_warnings(records: dict, costs: dict, loss: float, smooth: int | None) -> list[str]:
    """What a reader must know about how each run's cost was read: evaluations set aside as
    outliers, crossings the grid cannot resolve, crossings read off the raw evaluations."""
    out = []
    for side, runs in records.items():
        for record, cost in zip(runs, costs[side]):
            if smooth is None or smooth >= 3:
                for i in np.flatnonzero(outliers(record.curve)):
                    p = record.curve[i]
                    out.append(
                        f"{side} {record.run_id}: the evaluation at step {p.step} (loss {p.val_loss:.4f}) stands "
                        "far out of its curve and was replaced by the fit of its neighbours (an outlier)"
                    )
            if cost.note:
                out.append(f"{side} {record.run_id}: {cost.note}")
            if (sparse := sparse_grid_warning(cost, side, loss)) is not None:
                out.append(sparse)
    return out


def identity_check(estimates: dict[str, Estimate]) -> dict | None:
    """speedup = FLOP CEG x throughput ratio, with the throughput *measured*: the relative gap."""
    speed, ceg, thr = (estimates.get(u) for u in ("train_seconds", "flops", "throughput"))
    if not (speed and ceg and thr) or None in (speed.value, ceg.value, thr.value) or speed.bound or ceg.bound:
        return None
    product = ceg.value * thr.value
    return {"speedup": speed.value, "ceg_x_throughput": product, "relative_gap": speed.value / product - 1.0}


def _summarize_paper(refs, news, target, smooth, confidence, paired, index_pairs, excluded) -> CEGSummary:
    """The paper rule is per pair (its L* is the pair's reference); t interval on pair log ratios."""
    window = PAPER_SMOOTH_WINDOW if smooth is None else smooth
    pairs = [paper_pair(refs[i], news[j], target, window) for i, j in index_pairs]
    estimates = {}
    for unit in ("evals", *UNITS, "throughput"):
        logs = np.array([math.log(v) if (v := p.ceg.get(unit)) and v > 0 else np.nan for p in pairs])
        if paired:
            estimates[unit] = log_ratio_interval(paired_logs=logs, confidence=confidence)
        else:  # ln CEG_ij ~ mu + r_i - n_j: Welch on the row means and the centred column means
            m = np.full((len(refs), len(news)), np.nan)
            for (i, j), v in zip(index_pairs, logs):
                m[i, j] = v
            if not np.isfinite(m).any():
                estimates[unit] = Estimate(None, note="no defined pair")
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a run with no defined pair is NaN
                row, col = np.nanmean(m, axis=1), np.nanmean(m, axis=0)
            estimates[unit] = log_ratio_interval(row, col - np.nanmean(col), confidence=confidence)
    kinds = {p.kind for p in pairs if p.kind != "undefined"}
    kind = kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "undefined")
    defined = [p.loss for p in pairs if p.loss is not None and p.kind != "undefined"]
    note = (
        "seeds disagree on primary vs auxiliary: the paper rule's L* differs per pair"
        if kind == "mixed"
        else ""
    )
    return CEGSummary(
        measure="target" if target is not None else "primary",
        kind=kind,
        loss=float(np.mean(defined)) if defined else None,
        paired=paired,
        estimates=estimates,
        pairs=pairs,
        excluded=excluded,
        note=note,
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
    refs, news = distinct_runs(refs, "--ref"), distinct_runs(news, "--new")
    kwargs = dict(method=method, smooth=smooth, confidence=confidence, n_resamples=n_resamples, seed=seed)
    summaries = [summarize(refs, news, None, **kwargs)]
    summaries += [summarize(refs, news, float(t), **kwargs) for t in targets]
    if all(not r.curve for r in refs) or all(not n.curve for n in news):
        raise LitAlgosError("CEG needs at least one reference run and one new run with an evaluation curve.")
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
    "RunCost",
    "ceg_value",
    "compare",
    "interp_pair",
    "pair_ceg",
    "pair_up",
    "paper_pair",
    "summarize",
]
