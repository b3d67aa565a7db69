"""Compute allocation: a Hoffmann et al. (2022) fit L(N, D) = E + A / N^alpha + B / D^beta and the
compute multiplier between two rules for splitting a budget C = 6 N D into parameters and tokens.

A single L(C) law cannot measure an allocation change (Kaplan -> Chinchilla): it has no N and D.
With the Hoffmann law, a rule gives N(C), hence a loss L_rule(C) = L(N(C), C / (6 N(C))), and the
multiplier of rule B over rule A at compute C is ``M(C) = C_A(L_B(C)) / C``: how much more compute
rule A needs to reach the loss rule B reaches with C. Rules:

- ``chinchilla``: the compute-optimal split of the fitted law,
  ``N_opt = G (C/6)^(beta/(alpha+beta))`` with ``G = (alpha A / (beta B))^(1/(alpha+beta))``;
- ``kaplan``: Kaplan et al. (2020), ``N = 1.3e9 (C / 1 PF-day)^0.73`` (1 PF-day = 8.64e19 FLOPs).

With Hoffmann's published fit (E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28) the
Kaplan -> Chinchilla multiplier is 1.067x at 1e18 FLOPs and 26.1x at 1e23.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from lit_algos.errors import LitAlgosError
from lit_algos.records import RunRecord

PF_DAY = 8.64e19  # FLOPs in one petaFLOP/s-day
RULES = ("chinchilla", "kaplan")


@dataclass
class HoffmannFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    n: int = 0
    cov: np.ndarray | None = None  # covariance of (E, ln A, ln B, alpha, beta); None: no interval
    n_range: tuple[float, float] | None = None  # the fitted points' parameter counts (min, max)
    d_range: tuple[float, float] | None = None  # and token counts

    @property
    def params(self) -> np.ndarray:
        return np.array([self.E, math.log(self.A), math.log(self.B), self.alpha, self.beta])

    def loss(self, N, D):
        return self.E + self.A / np.power(N, self.alpha) + self.B / np.power(D, self.beta)

    def params_for(self, compute, rule: str = "chinchilla"):
        """N for a compute budget under ``rule`` (D = C / 6N)."""
        c = np.asarray(compute, dtype=float)
        return np.exp(_log_n(self.params[None, :], np.log(c.ravel()), rule))[0].reshape(c.shape)

    def loss_at(self, compute, rule: str = "chinchilla"):
        n = self.params_for(compute, rule)
        return self.loss(n, np.asarray(compute, dtype=float) / (6.0 * n))

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("E", "A", "B", "alpha", "beta", "n")}
        out.update(n_range=list(self.n_range) if self.n_range else None)
        out.update(d_range=list(self.d_range) if self.d_range else None)
        return out


def _columns(params: np.ndarray) -> list[np.ndarray]:
    """The five parameter columns (E, ln A, ln B, alpha, beta), each shaped (rows, 1)."""
    return [params[:, k : k + 1] for k in range(5)]


def _log_n(params: np.ndarray, log_c, rule: str) -> np.ndarray:
    """ln N under ``rule`` at ln C: params (rows, 5), ln C (k,) or (rows, k) -> (rows, k)."""
    log_c = np.atleast_1d(np.asarray(log_c, dtype=float))
    log_c = np.broadcast_to(log_c, (params.shape[0], log_c.shape[-1]))
    if rule == "kaplan":
        return math.log(1.3e9) + 0.73 * (log_c - math.log(PF_DAY))
    if rule != "chinchilla":
        raise LitAlgosError(f"Unknown allocation rule {rule!r}. Allowed: {', '.join(RULES)}.")
    _, la, lb, a, b = _columns(params)
    # N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta))
    log_g = (np.log(a) + la - np.log(b) - lb) / (a + b)
    return log_g + b / (a + b) * (log_c - math.log(6.0))


def _loss_at(params: np.ndarray, log_c, rule: str) -> np.ndarray:
    """L(N, D) along ``rule``'s split of compute C: (rows, k)."""
    log_n = _log_n(params, log_c, rule)
    log_d = np.broadcast_to(log_c, log_n.shape) - math.log(6.0) - log_n
    e, la, lb, a, b = _columns(params)
    return e + np.exp(la - a * log_n) + np.exp(lb - b * log_d)


def fit_hoffmann(N, D, loss) -> HoffmannFit:
    """Least squares in L over (E, ln A, ln B, alpha, beta), from a grid of starts (the
    surface has flat valleys, as Hoffmann et al. note); at least 6 points, 2 sizes, 2 lengths.
    The covariance is the Gauss-Newton one at the optimum (None where a bound is active or the
    Jacobian is singular)."""
    n, d, y = (np.asarray(v, dtype=float) for v in (N, D, loss))
    if y.size < 6 or np.unique(n).size < 2 or np.unique(d).size < 2:
        raise LitAlgosError(
            f"An L(N, D) fit has 5 parameters and needs at least 6 points over at least two model sizes and two "
            f"training lengths; got {y.size} points, {np.unique(n).size} size(s), {np.unique(d).size} length(s)."
        )
    ln_n, ln_d = np.log(n), np.log(d)

    def resid(p):  # in the loss, where seed noise is (ln L weighted the high-loss runs' noise down)
        e, la, lb, a, b = p
        return e + np.exp(la - a * ln_n) + np.exp(lb - b * ln_d) - y

    lo, hi = [0.0, -5.0, -5.0, 0.01, 0.01], [float(y.min()), 30.0, 30.0, 2.0, 2.0]
    best = None
    for e0 in (0.0, 0.5 * y.min(), 0.9 * y.min()):
        for a0 in (0.2, 0.5):
            for b0 in (0.2, 0.5):
                p0 = [e0, math.log(max(y.max() - e0, 1e-3)) + a0 * ln_n.min(), 5.0, a0, b0]
                p0 = np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
                res = optimize.least_squares(resid, p0, bounds=(lo, hi), xtol=1e-15, ftol=1e-15, gtol=1e-15)
                if best is None or res.cost < best.cost:
                    best = res
    e, la, lb, a, b = best.x
    fit = HoffmannFit(float(e), math.exp(la), math.exp(lb), float(a), float(b), n=int(y.size))
    fit.n_range, fit.d_range = (float(n.min()), float(n.max())), (float(d.min()), float(d.max()))
    dof = y.size - 5
    if dof > 0 and not np.any(best.active_mask):
        jac = best.jac
        with np.errstate(all="ignore"):
            try:
                cov = np.linalg.inv(jac.T @ jac) * (2.0 * best.cost / dof)
            except np.linalg.LinAlgError:
                cov = None
        fit.cov = cov if cov is not None and np.all(np.isfinite(cov)) and np.all(np.diag(cov) >= 0) else None
    return fit


def multipliers(params: np.ndarray, compute, old: str = "kaplan", new: str = "chinchilla") -> np.ndarray:
    """M(C) = C_old(L_new(C)) / C for each row of ``params`` (E, ln A, ln B, alpha, beta) at each
    compute: (rows, computes). The old rule's loss falls with compute, so C_old is found by
    bisection on ln C over [ln C - 20, ln C + 60]; NaN where the old rule never gets there."""
    log_c = np.log(np.atleast_1d(np.asarray(compute, dtype=float)))
    with np.errstate(all="ignore"):
        want = _loss_at(params, log_c, new)  # (rows, computes)
        lo, hi = log_c - 20.0 + 0 * want, log_c + 60.0 + 0 * want
        reachable = (_loss_at(params, hi, old) <= want) & (_loss_at(params, lo, old) >= want)
        for _ in range(60):  # bisection to 80 / 2^60 in ln C
            mid = 0.5 * (lo + hi)
            above = _loss_at(params, mid, old) > want
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        return np.where(reachable, np.exp(0.5 * (lo + hi) - log_c), np.nan)


def allocation_multiplier(fit: HoffmannFit, compute, old: str = "kaplan", new: str = "chinchilla"):
    """M(C) = C_old(L_new(C)) / C: the compute rule ``old`` needs to match rule ``new`` at C."""
    arr = multipliers(fit.params[None, :], compute, old, new)[0]
    return float(arr[0]) if np.ndim(compute) == 0 else arr


def multiplier_interval(
    fit: HoffmannFit, compute, confidence: float = 0.95, n_samples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray] | None:
    """The interval of the Kaplan -> Chinchilla multiplier at each compute, from draws of the fit's
    parameters from a multivariate t with n - 5 degrees of freedom; a draw whose Kaplan rule never
    reaches the loss widens the upper end. None without a covariance."""
    if fit.cov is None:
        return None
    rng = np.random.default_rng(seed)
    dof = max(fit.n - 5, 1)
    z = rng.multivariate_normal(np.zeros(5), fit.cov, size=n_samples)
    draws = fit.params + z * np.sqrt(dof / rng.chisquare(dof, size=n_samples))[:, None]
    draws[:, 3:] = np.clip(draws[:, 3:], 1e-3, None)  # alpha, beta > 0: a law that falls
    m = multipliers(draws, compute)
    tail = 100 * (1 - confidence) / 2
    lo = np.percentile(np.where(np.isfinite(m), m, -np.inf), tail, axis=0, method="lower")
    hi = np.percentile(np.where(np.isfinite(m), m, np.inf), 100 - tail, axis=0, method="higher")
    return lo, hi


def extrapolation(fit: HoffmannFit, compute: float, multiplier: float | None) -> str:
    """Why the multiplier at ``compute`` is an extrapolation ("" when it is not): the
    compute-optimal (N, D) at C, or Kaplan's at the matching compute M·C, lies outside the
    (N, D) range of the runs the law was fitted on."""
    if fit.n_range is None or fit.d_range is None:
        return ""
    out = []
    points = [("compute-optimal", compute, "chinchilla")]
    if multiplier is not None and math.isfinite(multiplier):
        points.append(("Kaplan", compute * multiplier, "kaplan"))
    for name, c, rule in points:
        n = float(fit.params_for(c, rule))
        d = c / (6.0 * n)
        for what, value, (low, high) in (("N", n, fit.n_range), ("D", d, fit.d_range)):
            if not low * 0.999 <= value <= high * 1.001:
                out.append(f"{name} {what} = {value:.3g} is outside the runs' {low:.3g}-{high:.3g}")
    return "; ".join(out)


def allocation_points(records: list[RunRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D, loss) from every evaluation of every run: N = non-embedding parameters (else
    total), D = tokens seen. Each run gives one size and many lengths."""
    rows = []
    for r in records:
        n = (r.params or {}).get("non_embedding") or (r.params or {}).get("total")
        if not n:
            raise LitAlgosError(
                f"Run {r.run_id} records no parameter count (params.non_embedding); no L(N, D) fit."
            )
        rows += [
            (float(n), float(p.tokens), p.val_loss)
            for p in r.curve
            if p.tokens > 0 and math.isfinite(p.val_loss)
        ]
    if not rows:
        return np.array([]), np.array([]), np.array([])
    n, d, y = (np.array(v) for v in zip(*rows))
    return n, d, y
