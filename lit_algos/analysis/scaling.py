"""Scaling laws L(C) = E + A * C^(-alpha) and the scale-dependent multiplier of Gundlach et al. 2025.

Fits work in x = ln C with a = ln A, which keeps A (often 1e10 or more) well conditioned.
With ``fit_E=False`` the law is a power law (E = 0), fitted by least squares on ln L.

``M(C) = C_ref(L_new(C)) / C`` is the compute the reference needs to match the new recipe
at compute C; its log-log slope says whether the gain grows with scale. For E = 0 the slope
is ``alpha_new / alpha_ref - 1`` everywhere, and
``M = (A_ref / A_new)^(1/alpha_ref) * C^(alpha_new/alpha_ref - 1)``. Intervals come from the fits' covariances:
parameters are drawn from their normal approximation (seeded) and the slope recomputed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from lit_algos.analysis.curves import running_min
from lit_algos.errors import LitAlgosError
from lit_algos.records import RunRecord

LABELS = ("compute-dependent", "compute-independent", "inconclusive")


def scaling_points(records: list[RunRecord], mode: str = "final") -> tuple[np.ndarray, np.ndarray]:
    """(FLOPs, loss) points to fit: each run's final point (``final``: last evaluation's FLOPs and
    the monotone final loss) or the Pareto frontier of every evaluation of every run (``frontier``)."""
    if mode == "final":
        pts = [
            (r.curve[-1].flops, float(running_min(np.array([p.val_loss for p in r.curve]))[-1]))
            for r in records
            if r.curve
        ]
    elif mode == "frontier":
        pts, best = [], math.inf
        for c, loss in sorted(
            (p.flops, p.val_loss) for r in records for p in r.curve if math.isfinite(p.val_loss)
        ):
            if loss < best:
                pts.append((c, loss))
                best = loss
    else:
        raise LitAlgosError(f"Unknown scaling point mode {mode!r}. Allowed: final, frontier.")
    pts = [(c, loss) for c, loss in pts if c > 0 and math.isfinite(loss)]
    c, loss = (np.array(v, dtype=float) for v in zip(*pts)) if pts else (np.array([]), np.array([]))
    return c, loss


@dataclass
class ScalingFit:
    E: float
    A: float
    alpha: float
    n: int
    fit_E: bool
    cov: np.ndarray | None = None  # covariance of (E, ln A, alpha), or of (ln A, alpha) when E = 0
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    @property
    def params(self) -> np.ndarray:
        a = math.log(self.A)
        return np.array([self.E, a, self.alpha]) if self.fit_E else np.array([a, self.alpha])

    def loss(self, compute: float | np.ndarray) -> float | np.ndarray:
        return self.E + self.A * np.power(compute, -self.alpha)

    def compute_for_loss(self, loss: float | np.ndarray) -> float | np.ndarray:
        """The compute at which the law reaches ``loss``; inf at or below the floor E."""
        gap = np.asarray(loss, dtype=float) - self.E
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(gap > 0, np.power(self.A / np.where(gap > 0, gap, 1.0), 1.0 / self.alpha), np.inf)
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        return {
            "E": self.E,
            "A": self.A,
            "alpha": self.alpha,
            "n": self.n,
            "fit_E": self.fit_E,
            "intervals": {k: list(v) if v else None for k, v in self.intervals.items()},
        }


def _from_params(params: np.ndarray, fit_E: bool) -> tuple[float, float, float]:
    if fit_E:
        return float(params[0]), float(params[1]), float(params[2])
    return 0.0, float(params[0]), float(params[1])


def fit_scaling_law(compute, loss, fit_E: bool = True, confidence: float = 0.95) -> ScalingFit:
    """Least-squares fit of L = E + A C^-alpha; intervals are Student-t over the fit's covariance."""
    c, y = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    n_params = 3 if fit_E else 2
    if c.size < n_params:
        raise LitAlgosError(
            f"A scaling fit with {n_params} parameters needs at least {n_params} points; got {c.size}."
        )
    x = np.log(c)
    if fit_E:
        e0 = 0.5 * float(y.min())
        slope, intercept = np.polyfit(x, np.log(y - e0), 1)
        p0 = (e0, intercept, max(-slope, 1e-3))

        def model(x, e, a, alpha):
            return e + np.exp(a - alpha * x)

        bounds = ([0.0, -np.inf, 1e-6], [float(y.min()), np.inf, 10.0])
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", optimize.OptimizeWarning
            )  # no covariance: reported as no interval
            params, cov = optimize.curve_fit(model, x, y, p0=p0, bounds=bounds, maxfev=20_000)
        dof = c.size - 3
    else:  # ordinary least squares on ln L = a - alpha x
        design = np.stack([np.ones_like(x), -x], axis=1)  # (n, 2)
        params, *_ = np.linalg.lstsq(design, np.log(y), rcond=None)
        dof = c.size - 2
        resid = np.log(y) - design @ params
        cov = (resid @ resid / dof) * np.linalg.inv(design.T @ design) if dof > 0 else None
    cov = cov if cov is not None and dof > 0 and np.all(np.isfinite(cov)) else None
    E, a, alpha = _from_params(params, fit_E)
    fit = ScalingFit(E=E, A=math.exp(a), alpha=alpha, n=int(c.size), fit_E=fit_E, cov=cov)
    names = ["E", "lnA", "alpha"] if fit_E else ["lnA", "alpha"]
    tq = stats.t.ppf(0.5 + confidence / 2, dof) if dof > 0 else math.nan
    for k, name in enumerate(names):
        if cov is None:
            fit.intervals[name] = None
        else:
            half = tq * math.sqrt(max(cov[k, k], 0.0))
            fit.intervals[name] = (float(params[k] - half), float(params[k] + half))
    lna = fit.intervals.get("lnA")
    fit.intervals["A"] = (math.exp(lna[0]), math.exp(lna[1])) if lna else None
    return fit


def multiplier(ref: ScalingFit, new: ScalingFit, compute: float | np.ndarray) -> float | np.ndarray:
    """M(C) = C_ref(L_new(C)) / C: how many times more compute the reference needs."""
    return ref.compute_for_loss(new.loss(compute)) / np.asarray(compute, dtype=float)


def _log_slope(ref: ScalingFit, new: ScalingFit, c_lo: float, c_hi: float) -> float:
    if math.isclose(c_lo, c_hi):
        c_lo, c_hi = c_lo / 1.01, c_hi * 1.01
    m_lo, m_hi = multiplier(ref, new, c_lo), multiplier(ref, new, c_hi)
    if not (np.isfinite(m_lo) and np.isfinite(m_hi)) or m_lo <= 0 or m_hi <= 0:
        return math.nan
    return (math.log(m_hi) - math.log(m_lo)) / (math.log(c_hi) - math.log(c_lo))


@dataclass
class ComputeDependence:
    slope: float  # d ln M / d ln C averaged over [c_lo, c_hi]
    interval: tuple[float, float] | None
    label: str  # one of LABELS
    c_lo: float
    c_hi: float
    m_lo: float
    m_hi: float
    note: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__, interval=list(self.interval) if self.interval else None)


def compute_dependence(
    ref: ScalingFit,
    new: ScalingFit,
    c_lo: float,
    c_hi: float,
    margin: float = 0.05,
    confidence: float = 0.95,
    n_samples: int = 4000,
    seed: int = 0,
) -> ComputeDependence:
    """Classify the new recipe's gain over [c_lo, c_hi]:

    - compute-dependent: the slope of ln M against ln C is positive and its interval excludes 0;
    - compute-independent: the interval lies within +-``margin`` (M changes by less than
      10^margin per decade of compute), or it is entirely negative (the gain shrinks with scale);
    - inconclusive: no interval (too few points to fit) or one too wide to tell.
    """
    slope = _log_slope(ref, new, c_lo, c_hi)
    out = ComputeDependence(
        slope=slope,
        interval=None,
        label="inconclusive",
        c_lo=c_lo,
        c_hi=c_hi,
        m_lo=float(multiplier(ref, new, c_lo)),
        m_hi=float(multiplier(ref, new, c_hi)),
    )
    if ref.cov is None or new.cov is None:
        out.note = "no interval: each fit needs more points than parameters"
        return out
    rng = np.random.default_rng(seed)
    draws_ref = rng.multivariate_normal(ref.params, ref.cov, size=n_samples)
    draws_new = rng.multivariate_normal(new.params, new.cov, size=n_samples)
    slopes = np.array(
        [_log_slope(_refit(ref, pr), _refit(new, pn), c_lo, c_hi) for pr, pn in zip(draws_ref, draws_new)]
    )
    slopes = slopes[np.isfinite(slopes)]
    if slopes.size < n_samples // 2:
        out.note = "no interval: most parameter draws put the loss below the reference's floor E"
        return out
    tail = 100 * (1 - confidence) / 2
    low, high = (float(v) for v in np.percentile(slopes, [tail, 100 - tail]))
    out.interval = (low, high)
    if low > 0:
        out.label = "compute-dependent"
    elif high < 0:
        out.label, out.note = "compute-independent", "the gain shrinks as compute grows"
    elif -margin <= low and high <= margin:
        out.label = "compute-independent"
    return out


def _refit(fit: ScalingFit, params: np.ndarray) -> ScalingFit:
    E, a, alpha = _from_params(params, fit.fit_E)
    return ScalingFit(E=E, A=math.exp(min(a, 700.0)), alpha=max(alpha, 1e-9), n=fit.n, fit_E=fit.fit_E)
