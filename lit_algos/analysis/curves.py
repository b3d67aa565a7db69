"""Validation-loss curves as functions of cost, and the cost at which a curve reaches a loss.

A curve is a run record's evaluations: validation loss against cost, where the cost is one
of ``UNITS`` (the ``EvalPoint`` fields). Analysis works on the monotone curve (the running
minimum of the loss), so a noisy uptick never makes a loss "unreached" again. The cost at
which a curve reaches a loss is interpolated linearly in (log cost, loss) between the two
evaluations that bracket it; that rule lives in ``lit_algos.records.interpolate_to_target``
so the run record's own ``to_target`` and every CEG use the same arithmetic.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lit_algos.records import EvalPoint, RunRecord, interpolate_to_target

UNITS = ("flops", "train_seconds", "tokens")  # the costs every CEG is reported in
UNIT_NAMES = {
    "flops": "FLOPs",
    "train_seconds": "seconds",
    "tokens": "tokens",
    "evals": "evaluations",  # the paper method's step-index cost
    "throughput": "throughput ratio",  # derived: time speedup / FLOP CEG
}


def losses(record: RunRecord) -> np.ndarray:
    return np.array([p.val_loss for p in record.curve], dtype=float)


def running_min(values: np.ndarray) -> np.ndarray:
    """The monotone curve; NaN (a diverged evaluation) never lowers the minimum."""
    clean = np.where(np.isnan(values), np.inf, values)
    return np.minimum.accumulate(clean)


def best_loss(record: RunRecord) -> float:
    """The lowest validation loss of the run, i.e. the final value of its monotone curve."""
    values = losses(record)
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else math.inf


def final_loss(record: RunRecord) -> float:
    """The loss of the last evaluation (what the leaderboard's t-test uses)."""
    point = record.final or (record.curve[-1] if record.curve else None)
    return point.val_loss if point else math.inf


def final_bpb(record: RunRecord) -> float:
    point = record.final or (record.curve[-1] if record.curve else None)
    return point.val_bpb if point else math.inf


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``min(i + 1, window)`` values at each index (the paper's smoothing)."""
    if window <= 1:
        return values.astype(float)
    cums = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - window, 0)
    return (cums[idx] - cums[start]) / (idx - start)


def smoothed_curve(curve: list[EvalPoint], window: int) -> list[EvalPoint]:
    """The curve with its losses replaced by their trailing mean (``window <= 1``: unchanged)."""
    if window <= 1:
        return curve
    smooth = trailing_mean(np.array([p.val_loss for p in curve], dtype=float), window)
    return [dataclasses.replace(p, val_loss=float(v)) for p, v in zip(curve, smooth)]


def cost_at_loss(curve: list[EvalPoint], loss: float) -> dict[str, float] | None:
    """Cost (in every unit) at which the monotone curve first reaches ``loss``; None if never."""
    hit = interpolate_to_target(curve, loss)
    if hit is None:
        return None
    return {unit: float(getattr(hit, unit)) for unit in UNITS}


def first_index_at_or_below(values: np.ndarray, loss: float) -> int | None:
    """Index of the first evaluation whose (raw) loss is <= ``loss``; None if there is none."""
    mask = values <= loss
    return int(np.argmax(mask)) if mask.any() else None


DEGREE = 2  # local quadratic: follows a curve's bend in ln C, so a noise-free curve keeps its values


def _xy(curve: list[EvalPoint]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.array([math.log(p.flops) if p.flops > 0 else math.nan for p in curve])
    y = np.array([p.val_loss for p in curve], dtype=float)
    return x, y, np.isfinite(x) & np.isfinite(y)


def _window_bounds(i: int, n: int, window: int) -> tuple[int, int]:
    """The ``window`` evaluations around i, shifted (not shrunk) at the ends."""
    lo = min(max(0, i - window // 2), max(0, n - window))
    return lo, min(n, lo + window)


def _local_quadratic(
    x: np.ndarray, y: np.ndarray, ok: np.ndarray, window: int, leave_out: bool
) -> np.ndarray:
    """Value at each x[i] of a quadratic fitted to the ``window`` evaluations around i (shifted
    at the ends); ``leave_out``: without point i itself (its leave-one-out prediction). NaN
    where fewer than 4 usable points. Batched normal equations, one 3x3 system per point."""
    n = x.size
    idx = np.array([np.arange(*_window_bounds(i, n, window)) for i in range(n)])  # (n, window)
    w = ok[idx].astype(float)
    if leave_out:
        w[idx == np.arange(n)[:, None]] = 0.0
    dx = np.where(w > 0, x[idx] - np.where(ok, x, 0.0)[:, None], 0.0)  # centred at x[i]
    design = np.stack([np.ones_like(dx), dx, dx**2], axis=2) * w[..., None]  # (n, window, 3)
    yy = np.where(w > 0, y[idx], 0.0)
    gram = np.einsum("nwi,nwj->nij", design, design)
    rhs = np.einsum("nwi,nw->ni", design, yy)
    enough = (w.sum(axis=1) >= DEGREE + 2) & ok
    out = np.full(n, np.nan)
    if enough.any():
        gram_ok = gram[enough] + 1e-12 * np.eye(3)
        out[enough] = np.linalg.solve(gram_ok, rhs[enough][..., None])[:, 0, 0]
    return out


def auto_window(curve: list[EvalPoint]) -> int:
    """The smoothing window chosen by leave-one-out cross-validation: the odd window (5 up to
    two thirds of the curve) whose local quadratic fits predict each held-out evaluation best.
    A noise-free curve keeps the smallest window (no bias from smoothing); a noisy one gets a
    wide window. Fewer than 7 evaluations: 1 (the raw curve)."""
    n = len(curve)
    if n < 7:
        return 1
    x, y, ok = _xy(curve)
    best, best_err = 1, math.inf
    top = max(5, 2 * n // 3)
    for window in sorted({w | 1 for w in np.geomspace(5, top, 10).astype(int)}):
        pred = _local_quadratic(x, y, ok, min(window + 1, n), leave_out=True)
        good = np.isfinite(pred)
        err = float(np.mean((pred[good] - y[good]) ** 2)) if good.any() else math.inf
        if err < best_err * (1 - 1e-9):  # ties (e.g. an exactly quadratic curve) keep the smaller window
            best, best_err = window, err
    return best


def local_linear_curve(curve: list[EvalPoint], window: int) -> list[EvalPoint]:
    """The curve with each loss replaced by a local quadratic fit in (ln FLOPs, loss) over the
    ``window`` evaluations centred on it (shifted inwards at the ends).

    Why: the minimum of a noisy curve is biased low and a running minimum crosses a loss early
    on a lucky evaluation, so L* and C(L*) read off raw evaluations are biased (truth 2.0 came
    back 1.908 at eval noise sd 0.01). A curve that is quadratic in ln C is returned unchanged,
    so exact synthetic answers stay exact. Non-finite losses and zero-cost points are left as they
    are and kept out of every fit.
    """
    if window < 3 or len(curve) < 3:
        return curve
    x, y, ok = _xy(curve)
    fitted = _local_quadratic(x, y, ok, min(window, len(curve)), leave_out=False)
    return [dataclasses.replace(p, val_loss=float(v)) if np.isfinite(v) else p for p, v in zip(curve, fitted)]
