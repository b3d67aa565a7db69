"""Censored costs: what the evaluation grid cannot resolve, and the bounds it leaves (issue 14).

A run's cost at L* is *censored* when the run never reached L* (the cost is more than its whole
spend: censor "above") or was already at or below L* at its first evaluation (the cost is at
most that evaluation's: censor "below"). A ratio built on a censored cost is a bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from lit_algos.analysis.curves import SPARSE_GAP, UNITS, cost_at_loss, crossing_gap
from lit_algos.records import RunRecord


@dataclass
class RunCost:
    """One run's cost at the common L*; ``censor`` says what the grid could not resolve."""

    run_id: str
    seed: int
    status: str
    cost: dict[str, float | None]
    censor: str | None = None  # None | "above" (never reached: cost > value) | "below" (cost <= value)
    flop_per_s: float | None = None  # measured training throughput of the whole run
    note: str = ""  # how the cost was read when not from the smoothed curve
    gap: tuple[float, float, float] | None = None  # crossing_gap: (relative gap, cost before, cost after)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _measured_flop_per_s(record: RunRecord) -> float | None:
    fpt = (record.flops_per_token or {}).get("analytic")
    tps = record.tokens_per_second
    return float(tps * fpt) if tps and fpt and tps > 0 and fpt > 0 else None


def run_cost(record: RunRecord, curve, loss: float) -> RunCost:
    """Cost of one (smoothed) curve at ``loss``, with its censoring."""
    out = RunCost(record.run_id, record.seed, record.status, {u: None for u in UNITS})
    out.flop_per_s = _measured_flop_per_s(record)
    hit = cost_at_loss(curve, loss)
    if hit is None and (raw := cost_at_loss(record.curve, loss)) is not None:
        # the smoothed curve ends a little above L* (e.g. L* is this run's own final evaluation)
        # but the evaluations reached it: that is a crossing, read off the evaluations
        hit, curve = raw, record.curve
        out.note = "the smoothed curve ends above L*; the cost is read off the raw evaluations"
    if hit is None:
        last = curve[-1]
        out.cost, out.censor = {u: float(getattr(last, u)) for u in UNITS}, "above"
    elif curve[0].val_loss <= loss:
        out.cost, out.censor = hit, "below"
    else:
        out.cost = hit
        out.gap = crossing_gap(curve, loss)
    return out


def sparse_grid_warning(c: RunCost, side: str, loss: float) -> str | None:
    """A warning when the grid cannot resolve this run's crossing to within ``SPARSE_GAP``."""
    if c.gap is None or c.gap[0] <= SPARSE_GAP:
        return None
    gap, lo, hi = c.gap
    return (
        f"{side} {c.run_id}: L*={loss:.4f} is crossed between evaluations at {lo:.3g} and {hi:.3g} FLOPs "
        f"({hi / lo:.2g}x apart) and that crossing moves {gap:.1%} between linear and quadratic "
        "interpolation: the grid is too sparse to resolve it (evaluate more often: train.eval_every_tokens)"
    )


# ratio = C_ref / C_new: a censored cost turns the ratio into a bound in this direction
RATIO_BOUND = {
    ("ref", "above"): ">=",
    ("ref", "below"): "<=",
    ("new", "above"): "<=",
    ("new", "below"): ">=",
}


def pair_bound(ref: RunCost, new: RunCost) -> tuple[str | None, bool]:
    """(bound, ok): the direction of the pair's bound; ok=False when the two sides disagree."""
    dirs = {RATIO_BOUND[(side, c.censor)] for side, c in (("ref", ref), ("new", new)) if c.censor}
    if len(dirs) > 1:
        return None, False
    return (dirs.pop() if dirs else None), True


def describe_censor(c: RunCost, side: str, loss: float) -> str:
    what = (
        f"never reached L*={loss:.4f} (status {c.status})"
        if c.censor == "above"
        else f"already at or below L*={loss:.4f} at its first evaluation"
    )
    return f"{side} {c.run_id}: {what}"
