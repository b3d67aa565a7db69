"""Scaling laws L(C) = E + A * C^(-alpha) and the scale-dependent multiplier of Gundlach et al. 2025.

Fits work in x = ln C with a = ln A, which keeps A (often 1e10 or more) well conditioned.
``E`` may be fixed (``E=1.9`` as Gundlach et al. fit L - 1.9; ``fit_E=False`` is E = 0): the law
is then a power law in L - E, fitted by least squares on ln(L - E). Fixing E wrongly biases
the slope (a true +0.2 came back negative with E = 0 on a loss with a floor), so it is a choice
to state, not a default.

Verdicts (``compute_dependence``): the slope of ln M against ln C with its interval gives one of
four labels: "gain grows" (interval above 0), "gain shrinks" (below 0), "gain flat" (inside
+-margin), "inconclusive" (anything else, or a degenerate input, with the reason).

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

LABELS = ("gain grows", "gain flat", "gain shrinks", "inconclusive")


def degenerate_reasons(records: list[RunRecord], mode: str, n_params: int) -> list[str]:
    """Why a fit over these runs cannot support a verdict (empty when it can)."""
    sizes = {
        (r.params or {}).get("total") or repr(sorted(((r.config or {}).get("model") or {}).items()))
        for r in records
    }
    reasons = []
    if len(sizes) < 2:
        what = "a frontier built from one size's checkpoints" if mode == "frontier" else "one model size"
        reasons.append(f"{what}: a scaling law needs at least two model sizes")
    c, loss = scaling_points(records, mode)
    n_points = c.size
    flat = plateau_reason(c, loss)
    if flat:
        reasons.append(flat)
    if n_points < n_params + 1:
        reasons.append(
            f"{n_points} point(s) for a {n_params}-parameter fit: an interval needs more points than parameters"
        )
    return reasons


def plateau_reason(compute: np.ndarray, loss: np.ndarray) -> str:
    """Why L(C) cannot be a falling power law over these points, or "" when it can: the mean loss
    at the largest compute is not below the mean at the smallest (e.g. every size still sits on
    the unigram plateau). A fit through such points returns an arbitrary A and alpha."""
    c, y = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    if c.size == 0 or np.unique(c).size < 2:
        return ""
    lo, hi = y[c == c.min()].mean(), y[c == c.max()].mean()
    if hi < lo:
        return ""
    return (
        f"the loss does not fall with compute (mean {lo:.4g} at {c.min():.3g} FLOPs, {hi:.4g} at "
        f"{c.max():.3g}): the runs sit on a plateau and no power law can be fitted"
    )


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
    cov: np.ndarray | None = None  # covariance of (E, ln A, alpha), or of (ln A, alpha) when E is fixed
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
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # overflow: inf compute
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


def _from_params(params: np.ndarray, fit_E: bool, fixed_E: float = 0.0) -> tuple[float, float, float]:
    if fit_E:
        return float(params[0]), float(params[1]), float(params[2])
    return fixed_E, float(params[0]), float(params[1])


def fit_scaling_law(
    compute, loss, fit_E: bool = True, confidence: float = 0.95, E: float | None = None
) -> ScalingFit:
    """Least-squares fit of L = E + A C^-alpha; intervals are Student-t over the fit's covariance.
    ``E`` given: fixed at that value (``fit_E=False`` without ``E``: fixed at 0)."""
    c, y = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    if E is not None:
        fit_E = False
        if y.size and not np.all(y > E):
            raise LitAlgosError(
                f"--E {E}: every loss must lie above the fixed irreducible loss, but the lowest is {float(y.min()):.4g}."
            )
    fixed_E = float(E) if E is not None else 0.0
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
    else:  # ordinary least squares on ln(L - E) = a - alpha x
        design = np.stack([np.ones_like(x), -x], axis=1)  # (n, 2)
        params, *_ = np.linalg.lstsq(design, np.log(y - fixed_E), rcond=None)
        dof = c.size - 2
        resid = np.log(y - fixed_E) - design @ params
        cov = (resid @ resid / dof) * np.linalg.inv(design.T @ design) if dof > 0 else None
    cov = cov if cov is not None and dof > 0 and np.all(np.isfinite(cov)) else None
    E, a, alpha = _from_params(params, fit_E, fixed_E)
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
    # A = e^lnA: an ill-determined lnA (hundreds wide) overflows a float; that bound is unbounded.
    fit.intervals["A"] = (_exp_or_inf(lna[0]), _exp_or_inf(lna[1])) if lna else None
    return fit


def _exp_or_inf(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


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
    m_lo_interval: tuple[float, float] | None = None  # interval of M(c_lo)
    m_hi_interval: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        for k in ("interval", "m_lo_interval", "m_hi_interval"):
            out[k] = list(out[k]) if out[k] else None
        return out


def compute_dependence(
    ref: ScalingFit,
    new: ScalingFit,
    c_lo: float,
    c_hi: float,
    margin: float = 0.05,
    confidence: float = 0.95,
    n_samples: int = 4000,
    seed: int = 0,
    reasons: list[str] | None = None,
) -> ComputeDependence:
    """The new recipe's gain over [c_lo, c_hi], labelled from the slope of ln M against ln C:
    "gain grows" (interval > 0), "gain shrinks" (interval < 0), "gain flat" (interval within
    +-``margin``: M changes by less than 10^margin per decade), else "inconclusive". Intervals
    (slope and M at both ends) come from seeded draws of the fits' parameters. ``reasons``:
    why the input is degenerate (``degenerate_reasons``); any reason makes it inconclusive."""
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
    if reasons:
        out.note = "; ".join(reasons)
        return out
    if ref.cov is None or new.cov is None:
        out.note = "no interval: each fit needs more points than parameters"
        return out
    rng = np.random.default_rng(seed)
    draws_ref = rng.multivariate_normal(ref.params, ref.cov, size=n_samples)
    draws_new = rng.multivariate_normal(new.params, new.cov, size=n_samples)
    pairs = [(_refit(ref, pr), _refit(new, pn)) for pr, pn in zip(draws_ref, draws_new)]
    slopes = np.array([_log_slope(r, n, c_lo, c_hi) for r, n in pairs])
    ok = np.isfinite(slopes)
    if ok.sum() < n_samples // 2:
        out.note = "no interval: most parameter draws put the loss below the reference's floor E"
        return out
    tail = 100 * (1 - confidence) / 2

    def interval(values: np.ndarray) -> tuple[float, float]:
        lo, hi = np.percentile(values[np.isfinite(values)], [tail, 100 - tail])
        return float(lo), float(hi)

    low, high = interval(slopes)
    out.interval = (low, high)
    m_draws = np.array([[float(multiplier(r, n, c)) for c in (c_lo, c_hi)] for r, n in pairs])  # (draws, 2)
    out.m_lo_interval, out.m_hi_interval = interval(m_draws[:, 0]), interval(m_draws[:, 1])
    if low > 0:
        out.label = "gain grows"
    elif high < 0:
        out.label = "gain shrinks"
    elif -margin <= low and high <= margin:
        out.label = "gain flat"
    else:
        out.note = f"the slope interval straddles 0 and is wider than +-{margin}"
    return out


def _refit(fit: ScalingFit, params: np.ndarray) -> ScalingFit:
    E, a, alpha = _from_params(params, fit.fit_E, fit.E)
    return ScalingFit(E=E, A=math.exp(min(a, 700.0)), alpha=max(alpha, 1e-9), n=fit.n, fit_E=fit.fit_E)
