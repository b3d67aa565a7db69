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

    def loss(self, N, D):
        return self.E + self.A / np.power(N, self.alpha) + self.B / np.power(D, self.beta)

    def params_for(self, compute, rule: str = "chinchilla"):
        """N for a compute budget under ``rule`` (D = C / 6N)."""
        c = np.asarray(compute, dtype=float)
        if rule == "chinchilla":
            g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
            return g * np.power(c / 6.0, self.beta / (self.alpha + self.beta))
        if rule == "kaplan":
            return 1.3e9 * np.power(c / PF_DAY, 0.73)
        raise LitAlgosError(f"Unknown allocation rule {rule!r}. Allowed: {', '.join(RULES)}.")

    def loss_at(self, compute, rule: str = "chinchilla"):
        n = self.params_for(compute, rule)
        return self.loss(n, np.asarray(compute, dtype=float) / (6.0 * n))

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def fit_hoffmann(N, D, loss) -> HoffmannFit:
    """Least squares on ln L over (E, ln A, ln B, alpha, beta), from a grid of starts (the
    surface has flat valleys, as Hoffmann et al. note); at least 6 points, 2 sizes, 2 lengths."""
    n, d, y = (np.asarray(v, dtype=float) for v in (N, D, loss))
    if y.size < 6 or np.unique(n).size < 2 or np.unique(d).size < 2:
        raise LitAlgosError(
            f"An L(N, D) fit has 5 parameters and needs at least 6 points over at least two model sizes and two "
            f"training lengths; got {y.size} points, {np.unique(n).size} size(s), {np.unique(d).size} length(s)."
        )
    ln_n, ln_d, ln_y = np.log(n), np.log(d), np.log(y)

    def resid(p):
        e, la, lb, a, b = p
        return np.log(e + np.exp(la - a * ln_n) + np.exp(lb - b * ln_d)) - ln_y

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
    return HoffmannFit(float(e), math.exp(la), math.exp(lb), float(a), float(b), n=int(y.size))


def allocation_multiplier(fit: HoffmannFit, compute, old: str = "kaplan", new: str = "chinchilla"):
    """M(C) = C_old(L_new(C)) / C: the compute rule ``old`` needs to match rule ``new`` at C."""
    out = []
    for c in np.atleast_1d(np.asarray(compute, dtype=float)):
        want = float(fit.loss_at(c, new))

        def gap(log_c, want=want):
            return float(fit.loss_at(math.exp(log_c), old)) - want

        lo, hi = math.log(c) - 20.0, math.log(c) + 60.0
        if gap(lo) * gap(hi) > 0:
            out.append(math.nan)  # rule ``old`` never reaches that loss in the bracket
            continue
        out.append(math.exp(optimize.brentq(gap, lo, hi, xtol=1e-12)) / c)
    arr = np.array(out)
    return float(arr[0]) if np.ndim(compute) == 0 else arr


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
