"""The analyses a study names, run on its records with the library's own functions
(``analysis.ceg.summarize``, ``attribution.attribute``, ``scaling``, ``allocation``).

Each returns a ``Section``: tables of formatted cells (every measured number derived from run
records; the paper's cited values in columns labelled "paper") plus the raw numbers for
``results.json`` and the plots. A group with no records yet gives a note, not an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lit_algos.analysis.allocation import HoffmannFit, allocation_multiplier
from lit_algos.analysis.attribution import attribute
from lit_algos.analysis.ceg import summarize
from lit_algos.analysis.comparisons import allocation_summary
from lit_algos.analysis.scaling import (
    ceg_trend,
    compute_dependence,
    degenerate_reasons,
    fit_scaling_law,
    plateau_reason,
    scaling_basis,
    scaling_points,
)
from lit_algos.analysis.stats import Estimate
from lit_algos.errors import LitAlgosError
from lit_algos.records import RunRecord
from lit_algos.studies.spec import Analysis, Study, ablation_components, arm_names


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # raw numbers (results.json, plots)
    plots: list[str] = field(default_factory=list)  # file names under plots/


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}g}"


def fmt_iv(value: float | None, iv, digits: int = 3) -> str:
    out = fmt(value, digits)
    if iv and value is not None:
        out += f" [{_bound(iv[0], digits)}, {_bound(iv[1], digits)}]"
    return out


def _bound(value: float | None, digits: int) -> str:
    """An interval end; an infinite one (undefined parameter draws widen an interval to infinity,
    analysis.scaling) reads as such, not as a missing value."""
    if value is not None and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return fmt(value, digits)


def est_text(est: Estimate | None) -> str:
    return "–" if est is None else est.text(3, "×")


def est_dict(est: Estimate | None) -> dict | None:
    return None if est is None else est.to_dict()


def paper_cell(paper: dict, *keys: str) -> str:
    node = paper
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return "n/a" if node is None else f"{node:g}" if isinstance(node, (int, float)) else str(node)


def sizes_of(study: Study, preset, exp: str) -> list[str]:
    return list(preset.sizes[exp])


def mean_final_flops(records: list[RunRecord]) -> float | None:
    vals = [r.curve[-1].flops for r in records if r.curve and r.curve[-1].flops > 0]
    return math.exp(float(np.mean(np.log(vals)))) if vals else None


# ---- CEG of every arm over a reference, per size, and its compute dependence ------------------

CENSOR_WHY = {"above": "never reached L*", "below": "already at or below L* at its first evaluation"}


def bound_text(summary) -> str:
    """Why a CEG is a bound, and which side censored it: 'bound (≤): arm side: n2 never reached L*'."""
    parts = []
    for side, name in (("ref", "reference side"), ("new", "arm side")):
        runs = [f"{c.run_id} {CENSOR_WHY[c.censor]}" for c in summary.runs.get(side, []) if c.censor]
        if runs:
            parts.append(f"{name}: " + ", ".join(runs))
    est = summary.estimates["flops"]
    return f"bound ({est.bound}; no interval), censored on the " + "; ".join(parts)


def _trend_table(ref: str, sizes: list[str], data: dict, margin: float) -> Table:
    """One row per arm: its CEG at each size, the slope of ln CEG against ln C, the verdict."""

    table = Table(
        f"Compute dependence over {', '.join(sizes)}",
        ["arm", *(f"CEG {s}" for s in sizes), "slope d ln CEG / d ln C [95% CI]", "label", "basis"],
    )
    for arm, per_size in data.items():
        entries = [per_size.get(s) for s in sizes]
        cells = [_ceg_cell(e) for e in entries]
        have = [s for s, e in zip(sizes, entries) if e and e["pairs"]]
        counts = ", ".join(f"{s}: {len(per_size[s]['pairs'])} pairs" for s in have)
        basis = f"{len(have)} sizes ({counts}); C = the {ref} runs' mean final FLOPs"
        bounded = [s for s, e in zip(sizes, entries) if e and ((e["ceg"] or {}).get("bound") or
                                                                 (e["ceg"] or {}).get("value") is None)]  # fmt: skip
        if bounded:  # the uncensored pairs alone would drop the censored seeds silently
            why = f"inconclusive (a bound or no number at {', '.join(bounded)}: censored seeds)"
            table.rows.append([arm, *cells, "–", why, basis])
            continue
        trend = ceg_trend(
            [per_size[s]["ref_flops"] for s in have], [per_size[s]["pairs"] for s in have], margin
        )
        per_size["dependence"] = trend.to_dict()
        label = trend.label + (f" ({trend.note})" if trend.note else "")
        table.rows.append([arm, *cells, fmt_iv(trend.slope, trend.interval), label, basis])
    return table


def _ceg_cell(entry: dict | None) -> str:
    if not entry or not entry["ceg"] or entry["ceg"].get("value") is None:
        return "–"
    bound = {">=": "≥ ", "<=": "≤ "}.get(entry["ceg"].get("bound") or "", "")
    return bound + fmt(entry["ceg"]["value"])


def ceg_section(study: Study, preset, an: Analysis, groups: dict) -> Section:
    exp, ref = an.experiment, an.options["reference"]
    margin = float(an.options.get("margin", 0.05))
    sizes = sizes_of(study, preset, exp)
    sec = Section(f"CEG over {ref} ({exp})")
    sec.text.append(
        f"FLOP CEG = C_{ref}(L*) / C_arm(L*) at one common L* per size (primary: the highest {ref} seed's smoothed "
        "final loss; auxiliary, when an arm seed ends above it: the highest arm seed's final loss, which every run reaches), geometric mean over seeds with a 95% Student-t "
        "interval on log costs. `paper rule` is Sanderson et al.'s notebook rule (evaluation counts) on the same runs."
    )
    paper_cols = list(an.paper.get("values", {}))
    table = Table(
        "CEG (FLOPs) per size",
        ["arm", "size", "CEG [95% CI]", "n", "method", "L* (kind)", "paper rule (evals)"]
        + [f"paper {c}" for c in paper_cols],
    )
    data: dict = {}
    for arm in arm_names(study.experiments[exp]):
        if arm == ref:
            continue
        for size in sizes:
            refs, news = groups.get((exp, ref, size), []), groups.get((exp, arm, size), [])
            if not refs or not news:
                table.rows.append([arm, size, "no runs yet", "0", "", "", ""] + ["" for _ in paper_cols])
                continue
            cell, row, notes = _arm_at_size(refs, news, arm, size, an.paper, paper_cols)
            data.setdefault(arm, {})[size] = cell
            table.rows.append(row)
            sec.text += notes
    sec.tables.append(table)
    if paper_cols:
        sec.text.append("Paper columns: " + str(an.paper.get("source", "see the study's sources")) + ".")
    if len(sizes) >= 2:
        sec.tables.append(_trend_table(ref, sizes, data, margin))
        sec.text.append(
            f"Compute dependence: the slope of ln CEG against ln C over the sizes (C: the {ref} runs' mean final "
            f"FLOPs at each size), least squares over every pair of seeds with a Student-t interval; 'gain flat' when "
            f"the interval lies within +-{margin}, 'grows' / 'shrinks' when the slope's sign holds at one-sided 0.5%. "
            "A verdict needs three sizes; with two the slope is shown as a direction only."
        )
    sec.data = data
    return sec


def _arm_at_size(
    refs: list, news: list, arm: str, size: str, paper: dict, paper_cols: list
) -> tuple[dict, list, list]:
    """One arm at one size: its data entry, its table row and its notes (censored runs, warnings)."""
    s = summarize(refs, news)
    est = s.estimates["flops"]
    paper_rule = summarize(refs, news, method="paper").estimates.get("evals")
    pairs = [p.ceg.get("flops") for p in s.pairs if p.bound is None and p.ceg.get("flops")]
    cell = {
        "ceg": est_dict(est),
        "loss": s.loss,
        "kind": s.kind,
        "pairs": pairs,
        "ref_flops": mean_final_flops(refs),
        "paper_rule": est_dict(paper_rule),
        "censored": s.censored,
    }
    row = [
        arm,
        size,
        est_text(est),
        str(est.n),
        bound_text(s) if est.bound else (est.method or est.note),
        f"{fmt(s.loss, 4)} ({s.kind})",
        est_text(paper_rule),
    ] + [paper_cell(paper, "values", c, arm) for c in paper_cols]
    notes = [f"{arm}@{size}: censored runs: " + "; ".join(s.censored)] if s.censored else []
    notes += [f"{arm}@{size}: warning: {w}" for w in s.warnings]
    return cell, row, notes


# ---- attribution ---------------------------------------------------------------------------


def attribution_section(study: Study, preset, an: Analysis, groups: dict) -> Section:
    exp = study.experiments[an.experiment]
    comps = ablation_components(exp)
    sec = Section(f"Attribution {exp.ref} -> {exp.new} ({exp.name})")
    sec.text.append(
        f"Add-one: CEG of {exp.ref}+c over {exp.ref}; remove-one: CEG of {exp.new} over {exp.new}-c; all at one L* "
        f"(the {exp.ref} seeds' primary L*). Interaction = whole / product of the single CEGs; shares = ln(part) / "
        "ln(whole); Student-t intervals (Welch-Satterthwaite, delta method for shares)."
    )
    for size in sizes_of(study, preset, exp.name):
        g = {arm: groups.get((exp.name, arm, size), []) for arm in arm_names(exp)}
        if not g[exp.ref] or not g[exp.new]:
            sec.text.append(f"{size}: no runs yet.")
            continue
        add = {c: g[f"{exp.ref}+{c}"] for c in comps if g[f"{exp.ref}+{c}"]}
        rem = {c: g[f"{exp.new}-{c}"] for c in comps if g[f"{exp.new}-{c}"]}
        att = attribute(g[exp.ref], g[exp.new], add, rem)
        table = Table(
            f"Components at {size} (FLOPs, L* = {fmt(att.loss, 4)})",
            ["component", "add-one CEG", "remove-one CEG", "add-one share", "remove-one share"],
        )
        for c in att.components:
            table.rows.append([c.component, est_text(c.add_one), est_text(c.remove_one),
                               fmt_iv(c.add_share.value, _iv(c.add_share)) if c.add_share else "–",
                               fmt_iv(c.remove_share.value, _iv(c.remove_share)) if c.remove_share else "–"])  # fmt: skip
        sec.tables.append(table)
        whole = Table(
            f"Whole stack at {size}",
            ["figure", "measured", "paper (Gundlach et al.)"],
            [
                [f"{exp.new} over {exp.ref} (whole)", est_text(att.whole), paper_cell(an.paper, "whole")],
                [
                    "product of add-one CEGs",
                    fmt(att.product_add_one),
                    paper_cell(an.paper, "product_add_one"),
                ],
                ["interaction (whole / add-one product)", est_text(att.interaction_add), "n/a"],
                ["product of remove-one CEGs", fmt(att.product_remove_one), "n/a"],
                ["interaction (whole / remove-one product)", est_text(att.interaction_remove), "n/a"],
            ],
        )
        sec.tables.append(whole)
        if att.censored:
            sec.text.append(f"{size}: " + att.note + ": " + "; ".join(att.censored))
        sec.data[size] = att.to_dict()
    if an.paper:
        sec.text.append("Paper column: " + str(an.paper.get("source", "see the study's sources")) + ".")
    return sec


def _iv(est: Estimate):
    return (est.low, est.high) if est.low is not None else None


# ---- scaling fits and M(C) verdicts ----------------------------------------------------------


def scaling_section(study: Study, preset, an: Analysis, groups: dict) -> Section:
    exp = an.experiment
    E = an.options.get("E")
    margin = float(an.options.get("margin", 0.05))
    mode = an.options.get("points", "final")
    sec = Section(f"Scaling ({exp})")
    where = (
        "each run's final point (FLOPs, smoothed final loss)"
        if mode == "final"
        else "the frontier of every evaluation of every seed and size (at each compute the lowest loss "
        "reached so far: the envelope of the training curves, as in Hoffmann et al.'s first approach)"
    )
    sec.text.append(
        f"L(C) = E + A·C^-alpha fitted per arm on {where} over the "
        + ("sizes with E free" if E is None else f"sizes with E fixed at {E}")
        + "; M(C) = C_ref(L_new(C)) / C at both ends of the new arm's compute range with 95% intervals from "
        "multivariate-t draws of the fits' parameters (widened for few points). Verdicts, the flat band first: "
        f"'gain flat' when the slope interval of ln M against ln C lies within +-{margin}; 'gain grows' / 'gain "
        "shrinks' when under 0.5% of the draws give the other sign; else inconclusive. E fitted needs three model "
        "sizes; with two, E is fixed and the verdict rests on that value (the basis column says which)."
    )
    fits, points, reasons, arm_runs, table = _scaling_fits(study, preset, an, groups, sec)
    sec.tables.append(table)
    sec.tables.append(_scaling_verdicts(an, fits, points, reasons, arm_runs, sec))
    sec.tables.append(_pair_cegs(an.options["pairs"], sizes_of(study, preset, exp), exp, groups, margin))
    if an.paper:
        sec.text.append("Paper columns: " + str(an.paper.get("source", "see the study's sources")) + ".")
    sec.data["_fits"], sec.data["_points"] = fits, points  # for the plots (not written to JSON)
    return sec


def _scaling_fits(study: Study, preset, an: Analysis, groups: dict, sec: Section):
    """L(C) fitted per arm: (fits, points, degeneracy reasons, runs) by arm and the fits table;
    an arm without a fit gets a note in ``sec``."""
    exp, E, mode = an.experiment, an.options.get("E"), an.options.get("points", "final")
    n_params = 2 if E is not None else 3
    fits, points, reasons, arm_runs = {}, {}, {}, {}
    table = Table("Fits", ["arm", "points", "E", "A", "alpha", "paper A", "paper alpha"])
    arms = list(dict.fromkeys(a for pair in an.options["pairs"] for a in pair))
    for arm in arms:
        runs = [r for size in sizes_of(study, preset, exp) for r in groups.get((exp, arm, size), [])]
        arm_runs[arm] = runs
        c, loss = scaling_points(runs, mode) if runs else (np.array([]), np.array([]))
        points[arm] = (c, loss)
        reasons[arm] = degenerate_reasons(runs, mode, n_params) if runs else ["no runs yet"]
        flat = plateau_reason(c, loss)
        if flat:
            sec.text.append(f"{arm}: no fit ({flat}).")
        if c.size < n_params or flat:
            table.rows.append([arm, str(c.size), "–", "–", "–", paper_cell(an.paper, arm, "A"),
                               paper_cell(an.paper, arm, "alpha")])  # fmt: skip
            continue
        try:
            fit = fit_scaling_law(c, loss, E=E)
        except LitAlgosError as err:
            sec.text.append(f"{arm}: no fit ({err})")
            continue
        fits[arm] = fit
        e_cell = fmt_iv(fit.E, fit.intervals.get("E")) if fit.fit_E else f"{fmt(fit.E)} (fixed)"
        table.rows.append([arm, str(fit.n), e_cell, fmt_iv(fit.A, fit.intervals.get("A")),
                           fmt_iv(fit.alpha, fit.intervals.get("alpha")), paper_cell(an.paper, arm, "A"),
                           paper_cell(an.paper, arm, "alpha")])  # fmt: skip
        sec.data.setdefault("fits", {})[arm] = fit.to_dict()
    return fits, points, reasons, arm_runs, table


def _scaling_verdicts(
    an: Analysis, fits: dict, points: dict, reasons: dict, arm_runs: dict, sec: Section
) -> Table:
    """M(C) at both ends of each pair's compute range and its verdict (the flat band first)."""
    E, mode = an.options.get("E"), an.options.get("points", "final")
    margin = float(an.options.get("margin", 0.05))
    verdicts = Table(
        "M(C) and verdicts",
        [
            "pair (ref -> new)",
            "C range (FLOPs)",
            "M at low C",
            "M at high C",
            "slope d ln M / d ln C",
            "verdict",
            "basis",
            "paper slope (alpha_new/alpha_ref - 1)",
        ],  # fmt: skip
    )
    for ref, new in an.options["pairs"]:
        pa, pn = an.paper.get(ref, {}), an.paper.get(new, {})
        paper_slope = (
            f"{pn['alpha'] / pa['alpha'] - 1:.3g} (from the cited fits)"
            if isinstance(pa, dict) and isinstance(pn, dict) and "alpha" in pa and "alpha" in pn
            else "n/a"
        )
        basis = scaling_basis(arm_runs[new], mode, E) if arm_runs[new] else "no runs"
        if ref not in fits or new not in fits:
            verdicts.rows.append(
                [f"{ref} -> {new}", "–", "–", "–", "–", "inconclusive (no fit)", basis, paper_slope]
            )
            continue
        c_new = points[new][0]
        why = [f"{ref}: {r}" for r in reasons[ref]] + [f"{new}: {r}" for r in reasons[new]]
        dep = compute_dependence(
            fits[ref],
            fits[new],
            float(c_new.min()),
            float(c_new.max()),
            margin=margin,
            reasons=why,
            basis=basis,
        )
        verdicts.rows.append(
            [
                f"{ref} -> {new}",
                f"{dep.c_lo:.3g} – {dep.c_hi:.3g}",
                fmt_iv(dep.m_lo, dep.m_lo_interval),
                fmt_iv(dep.m_hi, dep.m_hi_interval),
                fmt_iv(dep.slope, dep.interval),
                dep.label
                + (f" (other sign: {dep.p_other_sign:.1%} of draws)" if dep.p_other_sign is not None else "")
                + (f" ({dep.note})" if dep.note else ""),
                basis,
                paper_slope,
            ]  # fmt: skip
        )
        sec.data.setdefault("verdicts", {})[f"{ref}->{new}"] = dep.to_dict()
    return verdicts


def _pair_cegs(pairs, sizes: list[str], exp: str, groups: dict, margin: float) -> Table:
    """The law-free view of the same question: each pair's FLOP CEG at each size and its trend
    over the sizes (``ceg_trend``: a verdict from three sizes, a direction from two)."""
    table = Table(
        "CEG of the new arm over the reference at each size (no law assumed)",
        ["pair (ref -> new)", *(f"CEG {s}" for s in sizes), "slope d ln CEG / d ln C [95% CI]", "label"],
    )
    for ref, new in pairs:
        cells, compute, pair_values = [], [], []
        for size in sizes:
            refs, news = groups.get((exp, ref, size), []), groups.get((exp, new, size), [])
            if not refs or not news:
                cells.append("–")
                continue
            s = summarize(refs, news)
            est = s.estimates["flops"]
            cells.append(est_text(est))
            values = [p.ceg.get("flops") for p in s.pairs if p.bound is None and p.ceg.get("flops")]
            if est.bound is None and values:
                compute.append(mean_final_flops(refs))
                pair_values.append(values)
        trend = ceg_trend(compute, pair_values, margin)
        label = trend.label + (f" ({trend.note})" if trend.note else "")
        table.rows.append([f"{ref} -> {new}", *cells, fmt_iv(trend.slope, trend.interval), label])
    return table


# ---- allocation ------------------------------------------------------------------------------


def allocation_section(study: Study, preset, an: Analysis, groups: dict) -> Section:
    exp, arm = an.experiment, an.options["arm"]
    sec = Section(f"Allocation: Kaplan vs Chinchilla ({arm})")
    sec.text.append(
        f"L(N, D) = E + A/N^alpha + B/D^beta fitted on every evaluation of the {arm} runs (N: non-embedding "
        "parameters, D: tokens); the multiplier C_kaplan(L_chinchilla(C)) / C says how much more compute Kaplan's "
        "N = 1.3e9 (C / 1 PF-day)^0.73 needs than the fit's compute-optimal split. Its 95% interval comes from "
        "multivariate-t draws of the fit's parameters; a multiplier is marked extrapolated when the compute-optimal "
        "(N, D) or Kaplan's lies outside the runs' (N, D) range (the law is then used where it was not measured)."
    )
    runs = [r for size in sizes_of(study, preset, exp) for r in groups.get((exp, arm, size), [])]
    try:
        if not runs:
            raise LitAlgosError("no runs yet")
        summary = allocation_summary(runs)
    except LitAlgosError as err:
        sec.text.append(f"No fit: {err}")
        return sec
    fit = summary.fit
    published = HoffmannFit(1.69, 406.4, 410.7, 0.34, 0.28)
    ref_mult = np.atleast_1d(allocation_multiplier(published, np.array(summary.compute)))
    sec.tables.append(Table("Fit", ["E", "A", "alpha", "B", "beta", "points", "N range", "D range"],
                            [[fmt(fit.E, 4), fmt(fit.A, 4), fmt(fit.alpha), fmt(fit.B, 4), fmt(fit.beta), str(fit.n),
                              f"{fmt(fit.n_range[0])} – {fmt(fit.n_range[1])}",
                              f"{fmt(fit.d_range[0])} – {fmt(fit.d_range[1])}"]]))  # fmt: skip
    table = Table(
        "Compute-optimal split and the Kaplan -> Chinchilla multiplier",
        [
            "C (FLOPs)",
            "N_opt",
            "D_opt",
            "Kaplan N",
            "multiplier (this fit) [95% CI]",
            "extrapolated?",
            "multiplier on Hoffmann's published law",
        ],
    )
    for c, m, iv, why, n_opt, n_k, rm in zip(summary.compute, summary.kaplan_to_chinchilla, summary.interval,
                                             summary.extrapolated, summary.optimal_params, summary.kaplan_params,
                                             ref_mult):  # fmt: skip
        table.rows.append([f"{c:.3g}", f"{n_opt:.3g}", f"{c / 6 / n_opt:.3g}", f"{n_k:.3g}",
                           fmt_iv(m, iv) + "×", f"yes: {why}" if why else "no", f"{fmt(rm)}×"])  # fmt: skip
    sec.tables.append(table)
    if fit.cov is None:
        sec.text.append(
            "No interval: the fit sits on a bound of its parameters"
            + (f" (E = {fit.E:.3g}, at its lower bound 0)" if fit.E < 1e-6 else "")
            + ", where the covariance the parameter draws need is not defined; each multiplier is a point estimate."
        )
    sec.text.append(
        "Reference (Hoffmann et al.'s published law E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28): "
        "1.067× at 1e18 FLOPs and 26.1× at 1e23; the last column evaluates that law at this study's compute. "
        "At CPU compute Kaplan's rule asks for far fewer parameters than these models have, so the multiplier "
        "here is an extrapolation and says little about large scale."
    )
    sec.data = summary.to_dict() | {"multiplier": summary.kaplan_to_chinchilla}
    return sec


# ---- the preset's learning-rate sweep ------------------------------------------------------------


def tuning_section(preset, sweeps: list) -> Section:
    """The learning-rate sweep of every tuned arm: final loss at each multiplier, the choice."""
    tune = preset.tune
    sec = Section("Learning-rate sweep (every tuned arm the same way)")
    sec.text.append(
        f"Before the runs below, every arm of {', '.join(tune.experiments)} was trained at {tune.size} with each of its "
        f"learning rates (AdamW's; Muon's too for Muon) times {', '.join(f'{s:g}' for s in tune.lr_scale)}, "
        f"{tune.seeds} seed(s) each, at the preset's budget; the multiplier with the lowest mean final validation "
        "loss (ties: the one nearest 1) is used for that arm at every size. A diverged run counts as infinite."
    )
    table = Table("Final validation loss per learning-rate multiplier", ["experiment", "arm"]
                  + [f"x{s:g}" for s in tune.lr_scale] + ["chosen", "learning rates used"])  # fmt: skip
    for sweep in sweeps:
        cells = []
        for s in tune.lr_scale:
            mean = sweep.mean(s)
            cells.append(
                "not trained yet" if mean is None else fmt(mean, 4) + (" *" if s == sweep.chosen else "")
            )
        chosen = "pending" if sweep.chosen is None else f"x{sweep.chosen:g}"
        used = sweep.lrs.get(sweep.chosen, "–") if sweep.chosen is not None else "–"
        table.rows.append([sweep.experiment, sweep.arm, *cells, chosen, used])
    sec.tables.append(table)
    edge = [
        f"{s.arm} (x{s.chosen:g})" for s in sweeps if s.chosen in (min(tune.lr_scale), max(tune.lr_scale))
    ]
    if edge:
        sec.text.append(
            f"At the edge of the sweep: {', '.join(edge)}; a rate beyond it might do better, so these arms may be "
            "under-tuned relative to the others."
        )
    sec.data = {"sweeps": [s.to_dict() for s in sweeps]}
    return sec
