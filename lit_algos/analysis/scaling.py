"""Scaling laws L(C) = E + A * C^(-alpha) and the scale-dependent multiplier of Gundlach et al. 2025.

Fits work in x = ln C with a = ln A, which keeps A (often 1e10 or more) well conditioned.
``E`` may be fixed (``E=1.9`` as Gundlach et al. fit L - 1.9; ``fit_E=False`` is E = 0): the law
is then a power law in L - E, started from least squares on ln(L - E). Fixing E wrongly biases
the slope (a true +0.2 came back negative with E = 0 on a loss with a floor), so it is a choice
to state, not a default.

Verdicts (``compute_dependence``): the slope of ln M against ln C with its interval gives one of
four labels, the flat band first: "gain flat" (interval inside +-margin), "gain grows" / "gain
shrinks" (fewer than 0.5% of the parameter draws give the other sign), "inconclusive" (anything
else, or a degenerate input, with the reason). E fitted needs three distinct model sizes; with
two, only a fixed E is allowed, and the verdict's ``basis`` says it rests on that value.

``M(C) = C_ref(L_new(C)) / C`` is the compute the reference needs to match the new recipe
at compute C; its log-log slope says whether the gain grows with scale. For E = 0 the slope
is ``alpha_new / alpha_ref - 1`` everywhere, and
``M = (A_ref / A_new)^(1/alpha_ref) * C^(alpha_new/alpha_ref - 1)``. Both fits are least squares
in the loss (where seed noise lives); intervals come from seeded draws of their parameters from
a multivariate Student-t with each fit's residual degrees of freedom (normal draws covered 82-92%
with few points; these cover ~95% in ``tests/test_scaling_verdicts.py``).
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


def model_sizes(records: list[RunRecord]) -> set:
    """The distinct model sizes among the runs (total parameters, else the model config)."""
    return {
        (r.params or {}).get("total") or repr(sorted(((r.config or {}).get("model") or {}).items()))
        for r in records
    }


def degenerate_reasons(records: list[RunRecord], mode: str, n_params: int) -> list[str]:
    """Why a fit over these runs cannot support a verdict (empty when it can). ``n_params`` 3
    means E is fitted, which needs three distinct model sizes: E + A C^-alpha has three unknowns
    and seeds of one size add no new compute (with two sizes it bent a true "grows" into a
    confident "shrinks" in 168 of 200 draws)."""
    n_sizes = len(model_sizes(records))
    reasons = []
    if n_sizes < 2:
        what = "a frontier built from one size's checkpoints" if mode == "frontier" else "one model size"
        reasons.append(f"{what}: a scaling law needs at least two model sizes")
    elif n_params >= 3 and n_sizes < 3:
        reasons.append(
            f"E fitted from {n_sizes} model sizes: E + A·C^-alpha cannot be determined from two computes; fix E "
            "(--E VALUE, or E: in the study's analysis), and the verdict then rests on that value, or train a third size"
        )
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


def scaling_basis(records: list[RunRecord], mode: str, E: float | None) -> str:
    """What a verdict over these runs rests on: sizes, seeds, E fixed or fitted, the points."""
    sizes = model_sizes(records)
    seeds = len({r.seed for r in records})
    points = "each run's final point" if mode == "final" else "the frontier of every evaluation"
    if E is None:
        e_text = "E fitted"
    elif len(sizes) < 3:
        e_text = f"E fixed at {E:g} (assumed: two sizes cannot fit E; the verdict rests on this value)"
    else:
        e_text = f"E fixed at {E:g} (assumed)"
    return f"{len(sizes)} model sizes x {seeds} seeds, {e_text}, {points}"


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
    if fit_E and np.unique(c).size < 3:
        raise LitAlgosError(
            f"A scaling fit with E fitted needs at least three distinct compute values (model sizes); these "
            f"points have {np.unique(c).size}. Fix E (--E VALUE) or add a size."
        )
    params, cov, dof = _least_squares(np.log(c), y, fit_E, fixed_E)
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


SIGN_LEVEL = 0.005  # a "grows" / "shrinks" label: the slope's other sign has under 0.5% of the draws


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
    p_other_sign: float | None = None  # share of draws whose slope has the sign the label rules out
    basis: str = ""  # what the verdict rests on: sizes, seeds, E fixed or fitted, points

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        for k in ("interval", "m_lo_interval", "m_hi_interval"):
            out[k] = list(out[k]) if out[k] else None
        return out


def _least_squares(x: np.ndarray, y: np.ndarray, fit_E: bool, fixed_E: float):
    """(parameters, covariance or None, residual degrees of freedom) of L = E + e^(lnA - alpha x)
    at x = ln C: (E, lnA, alpha) with E fitted, else (lnA, alpha) with E = ``fixed_E``."""
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
        dof = x.size - 3
    else:  # least squares in the loss (where the seed noise is), from ordinary least squares on ln(L - E)
        design = np.stack([np.ones_like(x), -x], axis=1)  # (n, 2)
        start, *_ = np.linalg.lstsq(design, np.log(y - fixed_E), rcond=None)

        def model(x, a, alpha):
            return fixed_E + np.exp(a - alpha * x)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            try:
                params, cov = optimize.curve_fit(model, x, y, p0=start, maxfev=20_000)
            except RuntimeError:  # no convergence: the log-space solution, whose residuals set the covariance
                params, cov = start, None
        dof = x.size - 2
    return params, cov, dof


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
    basis: str = "",
) -> ComputeDependence:
    """The new recipe's gain over [c_lo, c_hi], labelled from the slope of ln M against ln C.

    Intervals (slope, M at both ends) are percentiles of draws of both fits' parameters from a
    multivariate Student-t with each fit's residual degrees of freedom (the small-sample
    widening: with 2 degrees of freedom a normal draw covered the slope 89% of the time). A draw
    whose law gives no M (a non-falling law, a loss below the reference's floor) counts against
    every claim: it widens both ends of the intervals and counts as the other sign.

    Labels, the flat band first: "gain flat" when the slope interval lies within +-``margin``
    (M changes by less than e^margin per e-fold of compute); else "gain grows" / "gain shrinks"
    when fewer than ``SIGN_LEVEL`` of the draws give the other sign (a one-sided test at 1%, so a
    label carries the wrong sign in at most ~1% of repeated studies, 2% for a truth exactly at
    0); else "inconclusive". ``reasons`` (``degenerate_reasons``): any reason makes it
    inconclusive. ``basis`` is carried into the result (``scaling_basis``)."""
    slope = _log_slope(ref, new, c_lo, c_hi)
    out = ComputeDependence(
        slope=slope,
        interval=None,
        label="inconclusive",
        c_lo=c_lo,
        c_hi=c_hi,
        m_lo=float(multiplier(ref, new, c_lo)),
        m_hi=float(multiplier(ref, new, c_hi)),
        basis=basis,
    )
    if reasons:
        out.note = "; ".join(reasons)
        return out
    if ref.cov is None or new.cov is None:
        out.note = "no interval: each fit needs more points than parameters"
        return out
    rng = np.random.default_rng(seed)
    draws_ref, draws_new = _t_draws(ref, n_samples, rng), _t_draws(new, n_samples, rng)
    if math.isclose(c_lo, c_hi):
        c_lo, c_hi = c_lo / 1.01, c_hi * 1.01
    log_m = np.stack([_log_multiplier(draws_ref, draws_new, c) for c in (c_lo, c_hi)], axis=1)  # (draws, 2)
    log_m = np.where(np.abs(log_m) < 700.0, log_m, np.nan)  # e^700: no multiplier a reader can use
    slopes = (log_m[:, 1] - log_m[:, 0]) / (math.log(c_hi) - math.log(c_lo))
    undefined = ~np.isfinite(slopes)
    if undefined.mean() > 0.5:
        out.note = "no interval: most parameter draws put the loss below the reference's floor E"
        return out
    out.interval = _conservative_interval(slopes, confidence)
    out.m_lo_interval, out.m_hi_interval = (_m_interval(log_m[:, k], confidence) for k in (0, 1))
    _label(out, slopes, undefined, margin)
    return out


def _m_interval(log_m: np.ndarray, confidence: float) -> tuple[float, float]:
    """The interval of M from draws of ln M. A multiplier is positive: an undefined draw (NaN)
    widens the interval to 0 below, not to -inf."""
    low, high = _conservative_interval(np.exp(log_m), confidence)
    return max(low, 0.0), high


def _label(out: ComputeDependence, slopes: np.ndarray, undefined: np.ndarray, margin: float) -> None:
    """The verdict from the slope interval and the draws' signs, the flat band first."""
    low, high = out.interval
    p_negative = float(np.mean(undefined | (slopes <= 0)))
    p_positive = float(np.mean(undefined | (slopes >= 0)))
    if -margin <= low and high <= margin:
        out.label = "gain flat"
    elif p_negative < SIGN_LEVEL:
        out.label, out.p_other_sign = "gain grows", p_negative
    elif p_positive < SIGN_LEVEL:
        out.label, out.p_other_sign = "gain shrinks", p_positive
    else:
        out.note = (
            f"the slope interval is wider than the flat band +-{margin} and {min(p_negative, p_positive):.0%} of "
            f"the draws give the other sign (a label needs under {SIGN_LEVEL:.1%})"
        )


def _t_draws(fit: ScalingFit, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) draws of (E, ln A, alpha) from a multivariate t around the fit (fixed E repeated)."""
    dof = max(fit.n - len(fit.params), 1)
    z = rng.multivariate_normal(np.zeros(len(fit.params)), fit.cov, size=n)
    draws = fit.params + z * np.sqrt(dof / rng.chisquare(dof, size=n))[:, None]
    if not fit.fit_E:
        draws = np.column_stack([np.full(n, fit.E), draws])
    return draws


def _log_multiplier(ref: np.ndarray, new: np.ndarray, compute: float) -> np.ndarray:
    """ln M(C) for each pair of parameter draws (columns E, ln A, alpha); NaN where undefined."""
    x = math.log(compute)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss_new = new[:, 0] + np.exp(np.minimum(new[:, 1] - new[:, 2] * x, 700.0))
        gap = loss_new - ref[:, 0]
        ok = (gap > 0) & (ref[:, 2] > 0) & (new[:, 2] > 0)
        out = (ref[:, 1] - np.log(np.where(ok, gap, 1.0))) / np.where(ok, ref[:, 2], 1.0) - x
    return np.where(ok, out, np.nan)


def _conservative_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval in which an undefined draw (NaN) counts as -inf for the lower bound
    and +inf for the upper one: it can only widen the interval."""
    tail = 100 * (1 - confidence) / 2
    bad = ~np.isfinite(values)
    # no interpolation between draws: it would turn -inf next to a number into NaN
    low = np.percentile(np.where(bad, -np.inf, values), tail, method="lower")
    high = np.percentile(np.where(bad, np.inf, values), 100 - tail, method="higher")
    return float(low), float(high)


def multiplier_band(
    ref: ScalingFit,
    new: ScalingFit,
    compute: np.ndarray,
    confidence: float = 0.95,
    n_samples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The interval of M(C) at each compute, from the draws ``compute_dependence`` makes (the
    same multivariate t, the same conservative percentiles); None without covariances."""
    if ref.cov is None or new.cov is None:
        return None
    rng = np.random.default_rng(seed)
    draws_ref, draws_new = _t_draws(ref, n_samples, rng), _t_draws(new, n_samples, rng)
    bands = []
    for c in np.asarray(compute, dtype=float):
        log_m = _log_multiplier(draws_ref, draws_new, float(c))
        log_m = np.where(np.abs(log_m) < 700.0, log_m, np.nan)
        bands.append(_conservative_interval(np.exp(log_m), confidence))
    lo, hi = (np.array(v) for v in zip(*bands))
    return lo, hi


@dataclass
class CEGTrend:
    """How a CEG measured at several sizes moves with compute: the slope of ln CEG against ln C."""

    slope: float | None
    interval: tuple[float, float] | None
    label: str
    n_sizes: int
    n_pairs: int
    note: str = ""

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["interval"] = list(self.interval) if self.interval else None
        return out


def ceg_trend(
    compute: list[float], pair_cegs: list[list[float]], margin: float = 0.05, confidence: float = 0.95
) -> CEGTrend:
    """The slope of ln CEG against ln C over sizes (``compute[i]``: the reference's compute at size
    i; ``pair_cegs[i]``: that size's per-pair CEGs), by least squares over every pair with a
    Student-t interval (n - 2 degrees of freedom), labelled as ``compute_dependence`` does: the
    flat band first, then the sign when the (1 - 2 x 0.5%) interval excludes 0. Fewer than three
    sizes: inconclusive (two sizes cannot tell a trend from the noise of either)."""
    x = np.concatenate([[], *(np.full(len(p), math.log(c)) for c, p in zip(compute, pair_cegs))])
    y = np.log(np.concatenate([[], *(np.asarray(p, dtype=float) for p in pair_cegs)]))
    n_sizes = sum(1 for p in pair_cegs if len(p))
    out = CEGTrend(None, None, "inconclusive", n_sizes, int(y.size))
    if n_sizes < 3:
        out.note = f"{n_sizes} size(s): a compute-dependence verdict needs three"
        if n_sizes == 2 and np.unique(x).size == 2:
            out.slope = float(np.polyfit(x, y, 1)[0])
        return out
    if y.size < 4:
        out.note = f"{y.size} pairs: an interval needs at least four"
        return out
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    dof = y.size - 2
    se = math.sqrt(float(resid @ resid) / dof / float(((x - x.mean()) ** 2).sum()))
    out.slope = float(slope)
    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
    out.interval = (float(slope - half), float(slope + half))
    sign_half = float(stats.t.ppf(1 - SIGN_LEVEL, dof)) * se
    if -margin <= out.interval[0] and out.interval[1] <= margin:
        out.label = "gain flat"
    elif slope - sign_half > 0:
        out.label = "gain grows"
    elif slope + sign_half < 0:
        out.label = "gain shrinks"
    else:
        out.note = f"the slope interval is wider than the flat band +-{margin} and holds 0 at one-sided {SIGN_LEVEL:.1%}"
    return out
