"""Statistics over seeds: Student-t intervals on log ratios, bootstrap intervals, one-sided t-tests.

CEG intervals (``log_ratio_interval``) are Student-t intervals on log costs: a ratio of
compute is log-normal-ish across seeds, so its logarithm is close to normal and the t interval
covers at its nominal level already at 3 seeds (the percentile bootstrap covered 74% there).
Paired seeds: one-sample t on the per-pair log ratios. Unpaired: Welch's t on the difference of
the mean log costs (Satterthwaite degrees of freedom). Everything random takes a ``seed``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Estimate:
    """A point estimate with an optional two-sided interval (None when it cannot be computed).

    ``bound`` marks a censored figure: ">=" (the value is a lower bound) or "<=" (an upper
    bound); a bound never carries an interval. ``method`` names how the interval was made and
    ``note`` says why there is none (e.g. a single pair).
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    method: str = ""
    bound: str | None = None
    note: str = ""

    def to_dict(self) -> dict:
        out = {"value": self.value, "low": self.low, "high": self.high, "n": self.n}
        out.update({k: getattr(self, k) for k in ("method", "bound", "note") if getattr(self, k)})
        return out

    def text(self, digits: int = 3, suffix: str = "") -> str:
        """'2.01× [1.9, 2.1]', '≥ 1000×', or '–'."""
        if self.value is None:
            return "–"
        head = {">=": "≥ ", "<=": "≤ "}.get(self.bound or "", "") + f"{self.value:.{digits}g}{suffix}"
        if self.low is not None and self.high is not None:
            head += f" [{self.low:.{digits}g}, {self.high:.{digits}g}]"
        return head


T_METHOD = "Student-t on log ratios"


def log_ratio_interval(
    log_ref: np.ndarray | None = None,
    log_new: np.ndarray | None = None,
    *,
    paired_logs: np.ndarray | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """exp of a mean log ratio with a Student-t interval.

    Paired: ``paired_logs`` holds ln(ratio) per seed pair; one-sample t with n - 1 df.
    Unpaired: ``log_ref`` / ``log_new`` hold ln(cost) per run; the ratio is exp(mean ln ref -
    mean ln new) with Welch's t interval. No interval (with the reason in ``note``) for a single
    pair or a side with a single run.
    """
    if paired_logs is not None:
        d = np.asarray(paired_logs, dtype=float)
        d = d[np.isfinite(d)]
        n = int(d.size)
        if n == 0:
            return Estimate(None, n=0, note="no defined pair")
        est = Estimate(math.exp(d.mean()), n=n, method=f"{T_METHOD}, paired (n={n} pairs)")
        if n < 2:
            est.note = "one pair: no interval over seeds (it needs at least two)"
            return est
        sem, df = float(d.std(ddof=1)) / math.sqrt(n), n - 1
        centre = float(d.mean())
    else:
        a = np.asarray(log_ref, dtype=float)
        b = np.asarray(log_new, dtype=float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if a.size == 0 or b.size == 0:
            return Estimate(None, n=0, note="no defined run on one side")
        centre = float(a.mean() - b.mean())
        n = int(a.size + b.size)
        est = Estimate(
            math.exp(centre), n=n, method=f"{T_METHOD}, Welch unpaired (n={a.size} ref, {b.size} new)"
        )
        if a.size < 2 or b.size < 2:
            est.note = "a side with one run: no interval over seeds (each side needs at least two)"
            return est
        va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
        sem = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if sem > 0 else 1.0
    if sem == 0:
        est.low = est.high = est.value
        return est
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * sem
    est.low, est.high = math.exp(centre - half), math.exp(centre + half)
    return est


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float] | None:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_geomean(
    log_values: np.ndarray,
    *,
    paired: bool = True,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Estimate:
    """Geometric mean of ratios with a percentile bootstrap interval over seeds.

    ``paired``: ``log_values`` is a vector, one log-ratio per seed pair; seeds are resampled.
    Unpaired: ``log_values`` is an (n_ref, n_new) matrix of log-ratios for every combination;
    reference and new runs are resampled independently (a two-sample bootstrap) and the
    statistic is the mean over the resampled block. NaN marks an undefined ratio and is left
    out of every mean. The interval needs at least two runs on some resampled side.
    """
    rng = np.random.default_rng(seed)
    values = np.asarray(log_values, dtype=float)
    if paired:
        values = values[np.isfinite(values)]
        n = int(values.size)
        if n == 0:
            return Estimate(None, n=0)
        point = math.exp(values.mean())
        if n < 2:
            return Estimate(point, n=n)
        idx = rng.integers(0, n, size=(n_resamples, n))
        means = values[idx].mean(axis=1)  # (n_resamples,)
    else:
        if values.ndim != 2:
            raise ValueError("unpaired bootstrap needs an (n_ref, n_new) matrix")
        n = int(np.isfinite(values).sum())
        if n == 0:
            return Estimate(None, n=0)
        point = math.exp(np.nanmean(values))
        n_ref, n_new = values.shape
        if max(n_ref, n_new) < 2:
            return Estimate(point, n=n)
        rows = rng.integers(0, n_ref, size=(n_resamples, n_ref))
        cols = rng.integers(0, n_new, size=(n_resamples, n_new))
        block = values[rows[:, :, None], cols[:, None, :]]  # (n_resamples, n_ref, n_new)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN resample is simply skipped
            means = np.nanmean(block.reshape(n_resamples, -1), axis=1)
    interval = _percentile_interval(means, confidence)
    if interval is None:
        return Estimate(point, n=n)
    return Estimate(point, math.exp(interval[0]), math.exp(interval[1]), n=n)


def mean_interval(values: list[float] | np.ndarray, confidence: float = 0.95) -> Estimate:
    """Mean with a Student-t interval over seeds (no interval with fewer than two values)."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return Estimate(None, n=0)
    mean = float(arr.mean())
    if arr.size < 2:
        return Estimate(mean, n=1)
    sem = float(arr.std(ddof=1)) / math.sqrt(arr.size)
    if sem == 0:
        return Estimate(mean, mean, mean, n=int(arr.size))
    low, high = stats.t.interval(confidence, arr.size - 1, loc=mean, scale=sem)
    return Estimate(mean, float(low), float(high), n=int(arr.size))


def ttest_below(values: list[float] | np.ndarray, target: float) -> tuple[float | None, float | None]:
    """One-sided one-sample t-test of "mean < target": returns (t, p); (None, None) for n < 2.

    Identical values make the t statistic infinite; the p-value is then 0 when the common
    value is below the target and 1 otherwise.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None, None
    if np.ptp(arr) == 0:
        below = arr[0] < target
        return (-math.inf if below else (math.inf if arr[0] > target else 0.0)), (0.0 if below else 1.0)
    res = stats.ttest_1samp(arr, target, alternative="less")
    return float(res.statistic), float(res.pvalue)
