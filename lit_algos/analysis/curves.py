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
OUTLIER_SIGMAS = 4.0  # an evaluation this many robust noise scales beyond its neighbours is an outlier


def _xy(curve: list[EvalPoint]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.array([math.log(p.flops) if p.flops > 0 else math.nan for p in curve])
    y = np.array([p.val_loss for p in curve], dtype=float)
    return x, y, np.isfinite(x) & np.isfinite(y)


def _window_bounds(i: int, n: int, window: int) -> tuple[int, int]:
    """The ``window`` evaluations around i, shifted (not shrunk) at the ends."""
    lo = min(max(0, i - window // 2), max(0, n - window))
    return lo, min(n, lo + window)


def _local_quadratic(
    x: np.ndarray, y: np.ndarray, use: np.ndarray, window: int, leave_out: bool, min_points: int = DEGREE + 2
) -> np.ndarray:
    """Value at each finite x[i] of a quadratic fitted to the usable (``use``) evaluations among
    the ``window`` around i (shifted at the ends); ``leave_out``: without point i itself (its
    leave-one-out prediction). NaN where fewer than ``min_points`` usable points. Batched normal
    equations, one 3x3 system per point."""
    n = x.size
    finite = np.isfinite(x)
    idx = np.array([np.arange(*_window_bounds(i, n, window)) for i in range(n)])  # (n, window)
    w = use[idx].astype(float)
    if leave_out:
        w[idx == np.arange(n)[:, None]] = 0.0
    dx = np.where(w > 0, x[idx] - np.where(finite, x, 0.0)[:, None], 0.0)  # centred at x[i]
    design = np.stack([np.ones_like(dx), dx, dx**2], axis=2) * w[..., None]  # (n, window, 3)
    yy = np.where(w > 0, y[idx], 0.0)
    gram = np.einsum("nwi,nwj->nij", design, design)
    rhs = np.einsum("nwi,nw->ni", design, yy)
    enough = (w.sum(axis=1) >= min_points) & finite
    out = np.full(n, np.nan)
    if enough.any():
        gram_ok = gram[enough] + 1e-12 * np.eye(3)
        out[enough] = np.linalg.solve(gram_ok, rhs[enough][..., None])[:, 0, 0]
    return out


def _neighbour_prediction(x: np.ndarray, y: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Each evaluation predicted from its three nearest usable neighbours (a quadratic through
    them): the leave-one-out prediction of the raw curve."""
    return _local_quadratic(x, y, use, 4, leave_out=True, min_points=DEGREE + 1)


def outliers(curve: list[EvalPoint]) -> np.ndarray:
    """Evaluations that stand out of the curve: a point is an outlier when it lies beyond the
    range of its two neighbours (for an end point: above its neighbour, the wrong way for a
    falling loss) by more than ``OUTLIER_SIGMAS`` robust noise scales, and its prediction from
    its neighbours misses it by as much. The scale is the median absolute leave-one-out residual.
    Points are set aside one at a time, the worst first, so a spike does not drag its
    neighbours out with it; at most a tenth of the curve.

    Why this shape: a noise-free falling curve never lies beyond its neighbours' range, however
    sharply it bends (a bend is not an outlier), and a noisy one does so only by its noise; a
    spike (a bad evaluation batch, a transient instability) does so by far more. A falling end
    point is never flagged: a last evaluation far below the one before is the cool-down of a
    warmup-stable-decay schedule as often as it is noise."""
    x, y, ok = _xy(curve)
    flagged = np.zeros(len(curve), dtype=bool)
    for _ in range(max(1, len(curve) // 10)):
        pos = np.flatnonzero(ok & ~flagged)
        if pos.size < 5:
            break
        worst = _worst_outlier(x[pos], y[pos])
        if worst is None:
            break
        flagged[pos[worst]] = True
    return flagged


def _worst_outlier(x: np.ndarray, y: np.ndarray) -> int | None:
    resid = y - _neighbour_prediction(x, y, np.ones(x.size, dtype=bool))
    good = np.isfinite(resid)
    scale = 1.4826 * float(np.median(np.abs(resid[good]))) if good.any() else 0.0
    limit = OUTLIER_SIGMAS * max(scale, 1e-9 * float(np.abs(y).max()))
    excess = np.zeros(x.size)
    excess[1:-1] = np.maximum(y[1:-1] - np.maximum(y[:-2], y[2:]), np.minimum(y[:-2], y[2:]) - y[1:-1])
    excess[0] = y[1] - y[0]  # a first evaluation below the second (a falling loss starts high)
    excess[-1] = y[-1] - y[-2]  # a last evaluation above the one before
    candidate = (excess > limit) & (np.abs(np.nan_to_num(resid)) > limit)
    return int(np.argmax(np.where(candidate, excess, -np.inf))) if candidate.any() else None


def auto_window(curve: list[EvalPoint], skip: np.ndarray | None = None) -> int:
    """The smoothing window chosen by leave-one-out cross-validation among 3 (the raw curve: a
    quadratic through three points is the points themselves) and odd windows from 5 up to two
    thirds of the curve: the window whose local quadratic fits predict each held-out evaluation
    best. A noise-free curve keeps the raw values or the smallest window (no bias from
    smoothing, even at a sharp bend); a noisy one gets a wide window. ``skip``: evaluations
    (outliers) left out of every fit and of the error. Fewer than 7 evaluations: 1 (raw)."""
    n = len(curve)
    if n < 7:
        return 1
    x, y, ok = _xy(curve)
    use = ok & ~(skip if skip is not None else np.zeros(n, dtype=bool))
    # the end points' held-out predictions are extrapolations, which no smoothed value is
    interior = np.zeros(n, dtype=bool)
    interior[np.flatnonzero(use)[1:-1]] = True
    best, best_err = 1, math.inf
    top = max(5, 2 * n // 3)
    for window in [3, *sorted({w | 1 for w in np.geomspace(5, top, 10).astype(int)})]:
        if window == 3:
            pred = _neighbour_prediction(x, y, use)
        else:
            pred = _local_quadratic(x, y, use, min(window + 1, n), leave_out=True)
        good = np.isfinite(pred) & use & interior
        err = float(np.mean((pred[good] - y[good]) ** 2)) if good.any() else math.inf
        if err < best_err * (1 - 1e-9):  # ties (e.g. an exactly quadratic curve) keep the smaller window
            best, best_err = window, err
    return best


def robust_curve(curve: list[EvalPoint], window: int | None = None) -> list[EvalPoint]:
    """The curve as CEG reads it: outlying evaluations (``outliers``) replaced by the local fit of
    the others, then each loss replaced by a local quadratic fit in (ln FLOPs, loss) over
    ``window`` evaluations (None: chosen by ``auto_window``; 3: the raw values; 1: the raw curve,
    outliers included).

    Why: the minimum of a noisy curve is biased low and a running minimum crosses a loss early
    on a lucky evaluation, so L* and C(L*) read off raw evaluations are biased (truth 2.0 came
    back 1.908 at eval noise sd 0.01); and one spike spread over a wide window moved a true 2.0x
    to 0.98x. A noise-free curve comes back unchanged (the raw window wins the cross-validation),
    however sharply it bends. Non-finite losses and zero-cost points are left as they are and kept
    out of every fit.
    """
    if window is not None and window <= 1 or len(curve) < 3:
        return curve
    x, y, ok = _xy(curve)
    skip = outliers(curve)
    if window is None:
        window = auto_window(curve, skip)
    use = ok & ~skip
    if window <= 3:
        fitted = np.where(skip, _neighbour_prediction(x, y, use), y)
    else:
        fitted = _local_quadratic(x, y, use, min(window, len(curve)), leave_out=False)
        fitted = np.where(np.isfinite(fitted) | ~skip, fitted, _neighbour_prediction(x, y, use))
    fitted = np.where(ok, fitted, np.nan)
    return [dataclasses.replace(p, val_loss=float(v)) if np.isfinite(v) else p for p, v in zip(curve, fitted)]


SPARSE_GAP = 0.02  # a crossing whose cost moves more than this between interpolation rules is unresolved


def crossing_gap(curve: list[EvalPoint], loss: float) -> tuple[float, float, float] | None:
    """How well the evaluation grid resolves the cost at which the monotone curve reaches
    ``loss``: (relative gap, cost before, cost after), where the gap is how far that cost moves
    when the straight line in (ln FLOPs, loss) between the two bracketing evaluations is
    replaced by the quadratic through them and the next evaluation. A curve that is straight in
    ln C between evaluations gives 0; a sparse grid over a bending curve gives percent. None when
    there is no bracket (never reached, or reached at the first evaluation)."""
    x, y, ok = _xy(curve)
    keep = np.flatnonzero(ok)
    x, y = x[keep], running_min(y[keep])
    below = np.flatnonzero(y <= loss)
    if not below.size or below[0] == 0 or y[below[0] - 1] == y[below[0]]:
        return None
    i = int(below[0])
    third = i + 1 if i + 1 < x.size else i - 2
    if third < 0:
        return None
    x_lin = x[i - 1] + (y[i - 1] - loss) / (y[i - 1] - y[i]) * (x[i] - x[i - 1])
    xs, ys = x[[i - 1, i, third]], y[[i - 1, i, third]]
    a, b, c = np.polyfit(xs - x[i - 1], ys - loss, 2)
    roots = np.roots([a, b, c]) if abs(a) > 1e-15 else np.array([-c / b])
    span = x[i] - x[i - 1]
    inside = [
        r.real + x[i - 1]
        for r in np.atleast_1d(roots)
        if abs(r.imag) < 1e-12 and -1e-9 <= r.real <= span + 1e-9
    ]
    if not inside:
        return None
    x_quad = min(inside, key=lambda r: abs(r - x_lin))
    return abs(math.expm1(x_quad - x_lin)), math.exp(x[i - 1]), math.exp(x[i])
