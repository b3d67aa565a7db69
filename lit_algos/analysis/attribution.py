"""Attribution: how much of a whole stack's gain each component carries, and how much is interaction.

For a "retro" stack and a "modern" stack (docs/design.md §7), every CEG here is read at **one common
L*** (the retro seeds' primary L*, or the highest final loss of any arm's seeds when one ends
above it, so that every complete run reaches it: ``ceg.common_loss``), so parts and whole compare the same loss
level (remove-one CEGs at each ablated stack's own final loss showed a spurious interaction of
0.939 for two independent components):

- add-one CEG of component c: CEG of (retro + c) over retro;
- remove-one CEG of c: CEG of modern over (modern - c), i.e. what c adds on top of the rest;
- whole-stack CEG: modern over retro; interaction = whole / product of single CEGs
  (> 1: the parts help each other; < 1: they overlap);
- log-share of a part: ln(part) / ln(whole); add-one log-shares need not sum to 1;
- Shapley shares (``shapley=True``, needs a run group for every subset of the components; with
  two components add-one and remove-one are all of them): the average marginal ln-gain of c
  over every order of adding the components, divided by ln(whole); they sum to 1 exactly.

CEGs carry the Student-t interval of ``ceg.summarize``. Interaction and shares are linear
combinations (or ratios of them) of the groups' mean log costs at L*, so they get Student-t
intervals with Welch-Satterthwaite degrees of freedom (ratios by the delta method), L* held
fixed. A percentile bootstrap was the first choice, but over 3 seeds per group it is too narrow
(it covered a true interaction of 1 less often than stated, as it did for CEGs).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from lit_algos.analysis.ceg import common_loss, smoothed, summarize
from lit_algos.analysis.censoring import describe_censor, run_cost
from lit_algos.analysis.runs import distinct_runs
from lit_algos.analysis.stats import Estimate
from lit_algos.errors import LitAlgosError
from lit_algos.records import RunRecord


@dataclass
class ComponentShare:
    component: str
    add_one: Estimate | None = None
    remove_one: Estimate | None = None
    add_share: Estimate | None = None
    remove_share: Estimate | None = None
    shapley_share: Estimate | None = None

    def to_dict(self) -> dict:
        return {k: (v.to_dict() if isinstance(v, Estimate) else v) for k, v in self.__dict__.items()}


@dataclass
class Attribution:
    unit: str
    loss: float | None  # the common L*
    whole: Estimate
    components: list[ComponentShare] = field(default_factory=list)
    product_add_one: float | None = None
    product_remove_one: float | None = None
    interaction_add: Estimate | None = None  # whole / product of add-one CEGs
    interaction_remove: Estimate | None = None  # whole / product of remove-one CEGs
    censored: list[str] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict:
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, Estimate):
                v = v.to_dict()
            elif k == "components":
                v = [c.to_dict() for c in v]
            out[k] = v
        return out


def log_share(part: float | None, whole: float | None) -> float | None:
    if not part or not whole or part <= 0 or whole <= 0 or math.isclose(whole, 1.0):
        return None
    return math.log(part) / math.log(whole)


def shapley_values(values: dict[frozenset, float], components: list[str]) -> dict[str, float]:
    """Exact Shapley values of the game v(S) (v(empty) = 0) over ``components``."""
    n = len(components)
    out = {}
    for c in components:
        others = [o for o in components if o != c]
        total = 0.0
        for k in range(n):
            weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for subset in itertools.combinations(others, k):
                s = frozenset(subset)
                total += weight * (values[s | {c}] - values[s])
        out[c] = total
    return out


def _combo_interval(
    num: dict[frozenset, float],
    den: dict[frozenset, float] | None,
    log_costs: dict[frozenset, np.ndarray],
    confidence: float,
    transform=lambda v: v,
) -> Estimate:
    """A linear combination of group mean log costs (``num``), or the ratio of two (``num / den``),
    with a Student-t interval: Welch-Satterthwaite degrees of freedom, and for a ratio the delta
    method (linearised around the estimate, as Fieller's interval is for small errors)."""
    means = {g: float(v.mean()) for g, v in log_costs.items()}
    var = {g: (float(v.var(ddof=1)) / v.size if v.size > 1 else math.nan) for g, v in log_costs.items()}
    x = sum(c * means[g] for g, c in num.items())
    if den is None:
        point, coefs, scale = x, dict(num), 1.0
    else:
        w = sum(c * means[g] for g, c in den.items())
        if math.isclose(w, 0.0, abs_tol=1e-12):
            return Estimate(None, note="the whole-stack gain is 1: no share")
        point = x / w
        coefs = {g: num.get(g, 0.0) - point * den.get(g, 0.0) for g in set(num) | set(den)}
        scale = abs(w)
    terms = {g: (c**2) * var[g] for g, c in coefs.items() if c != 0}
    method = "Student-t, Welch-Satterthwaite" + (", delta method" if den is not None else "")
    est = Estimate(transform(point), n=sum(log_costs[g].size for g in terms), method=method)
    if any(math.isnan(t) for t in terms.values()):
        est.note = "a group with one run: no interval"
        return est
    total = sum(terms.values())
    if total == 0:
        est.low = est.high = est.value
        return est
    df = total**2 / sum(t**2 / (log_costs[g].size - 1) for g, t in terms.items() if t > 0)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(total) / scale
    est.low, est.high = transform(point - half), transform(point + half)
    return est


def attribute(
    retro: list[RunRecord],
    modern: list[RunRecord],
    add_one: dict[str, list[RunRecord]] | None = None,
    remove_one: dict[str, list[RunRecord]] | None = None,
    unit: str = "flops",
    subsets: dict[str, list[RunRecord]] | None = None,
    shapley: bool = False,
    smooth: int | None = None,
    confidence: float = 0.95,
    **_ignored,
) -> Attribution:
    """Add-one / remove-one CEGs per component against the whole-stack CEG at one common L*.
    ``subsets``: run groups named "a+b" (retro plus those components), for Shapley shares."""
    retro, modern = distinct_runs(retro, "reference"), distinct_runs(modern, "new")
    add_one = {c: distinct_runs(runs, f"add-one {c}") for c, runs in (add_one or {}).items()}
    remove_one = {c: distinct_runs(runs, f"remove-one {c}") for c, runs in (remove_one or {}).items()}
    subsets = {name: distinct_runs(runs, name) for name, runs in (subsets or {}).items()}
    components, groups = _run_groups(retro, modern, add_one, remove_one, subsets, shapley)
    full = frozenset(components)
    # one L* that every complete run of every group reaches: the highest final loss among them
    # (the retro seeds' primary L* unless an arm ends above it, which would leave that arm a bound)
    others = [r for key, runs in groups.items() if key for r in runs]
    _, loss = common_loss(
        [smoothed(r, smooth) for r in retro], [smoothed(r, smooth) for r in others], None,
        [r.complete for r in retro], [r.complete for r in others],
    )  # fmt: skip
    if loss is None:
        raise LitAlgosError("Attribution needs retro runs with a finite final loss to fix the common L*.")

    def ceg(refs, news) -> Estimate:
        return summarize(refs, news, target=loss, smooth=smooth, confidence=confidence).estimates[unit]

    out = Attribution(unit, loss, ceg(retro, modern))
    log_costs, out.censored = _log_costs(groups, smooth, loss, unit)
    if out.censored:
        out.note = "some costs are censored at L*: the figures built on them are bounds"
    whole_w = _gain(full)
    for c in components:
        share = ComponentShare(c)
        if c in add_one:
            share.add_one = ceg(retro, add_one[c])
            share.add_share = _combo_interval(_gain(frozenset([c])), whole_w, log_costs, confidence)
        if c in remove_one:
            share.remove_one = ceg(remove_one[c], modern)
            part = _combo((1.0, whole_w), (-1.0, _gain(full - {c})))
            share.remove_share = _combo_interval(part, whole_w, log_costs, confidence)
        out.components.append(share)
    _interactions(out, components, len(add_one), len(remove_one), log_costs, confidence)
    if shapley:
        # Shapley values are linear in v, so each is a weighted sum of group means: compute the
        # weights by running the formula on one indicator vector per group
        keys = list(groups)
        basis = {k: np.array([(1.0 if k == g else 0.0) for g in keys]) for k in keys}
        weights = shapley_values({k: basis[frozenset()] - basis[k] for k in keys}, components)
        for share in out.components:
            phi = {g: float(w) for g, w in zip(keys, weights[share.component]) if w != 0}
            share.shapley_share = _combo_interval(phi, whole_w, log_costs, confidence)
    return out


def _run_groups(retro, modern, add_one: dict, remove_one: dict, subsets: dict, shapley: bool):
    """The components and the runs of each stack, keyed by its set of components (retro: the
    empty set); with ``shapley`` every subset must have runs (refused before any work)."""
    components = list(dict.fromkeys([*add_one, *remove_one]))
    full = frozenset(components)
    groups: dict[frozenset, list[RunRecord]] = {frozenset(): retro, full: modern}
    for c, runs in add_one.items():
        groups[frozenset([c])] = runs
    for c, runs in remove_one.items():
        groups[full - {c}] = runs
    for name, runs in subsets.items():
        key = frozenset(p.strip() for p in name.split("+"))
        if not key <= full:
            raise LitAlgosError(f"Subset {name!r} names components outside {sorted(full)}.")
        groups[key] = runs
    if shapley:
        missing = [
            "+".join(sorted(s)) or "retro"
            for k in range(len(components) + 1)
            for s in map(frozenset, itertools.combinations(components, k))
            if s not in groups
        ]
        if missing:
            raise LitAlgosError(
                f"Shapley shares need runs for every subset of {', '.join(components)}; missing: {', '.join(missing)}. "
                "Pass them as --add NAME=RUNS with NAME like a+b (lit-algos sweep ablation --shapley trains them)."
            )
    return components, groups


def _log_costs(groups: dict, smooth, loss: float, unit: str) -> tuple[dict, list[str]]:
    """ln cost of each run at L* per group, and the runs whose cost is censored there."""
    log_costs, censored = {}, []
    for key, runs in groups.items():
        costs = [run_cost(r, smoothed(r, smooth), loss) for r in runs]
        censored += [
            f"{'+'.join(sorted(key)) or 'retro'} {c.run_id}: "
            + describe_censor(c, "run", loss).split(": ", 1)[1]
            for c in costs
            if c.censor
        ]
        log_costs[key] = np.array([math.log(c.cost[unit]) for c in costs if c.cost.get(unit)], dtype=float)
    return log_costs, censored


def _gain(key: frozenset) -> dict[frozenset, float]:
    """ln CEG of the stack ``key`` over retro, as group weights (ln cost of retro - ln cost of key)."""
    return {frozenset(): 1.0, key: -1.0} if key != frozenset() else {}


def _combo(*parts: tuple[float, dict]) -> dict[frozenset, float]:
    """The weighted sum of group-weight maps."""
    out: dict[frozenset, float] = {}
    for weight, weights in parts:
        for g, c in weights.items():
            out[g] = out.get(g, 0.0) + weight * c
    return out


def _interactions(
    out: Attribution, components: list, n_add: int, n_remove: int, log_costs, confidence
) -> None:
    """The products of the add-one (remove-one) CEGs and their interaction with the whole stack,
    where every component has its add-one (remove-one) runs."""
    full = frozenset(components)
    whole_w = _gain(full)
    if n_add and n_add == len(components):
        parts = _combo(*((1.0, _gain(frozenset([c]))) for c in components))
        out.product_add_one = math.exp(sum(w * float(log_costs[g].mean()) for g, w in parts.items()))
        out.interaction_add = _combo_interval(
            _combo((1.0, whole_w), (-1.0, parts)), None, log_costs, confidence, math.exp
        )
    if n_remove and n_remove == len(components):
        parts = _combo(*(p for c in components for p in ((1.0, whole_w), (-1.0, _gain(full - {c})))))
        out.product_remove_one = math.exp(sum(w * float(log_costs[g].mean()) for g, w in parts.items()))
        out.interaction_remove = _combo_interval(
            _combo((1.0, whole_w), (-1.0, parts)), None, log_costs, confidence, math.exp
        )
