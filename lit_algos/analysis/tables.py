"""Tables and summary lines of the analyses, as plain data (title, columns, rows, caption).

The CLI prints them with rich (:meth:`Table.to_rich`); reports and notebooks can use the rows as
they are. They are built from the same objects whose ``to_dict()`` is the ``--json`` output
(``lit_algos.analysis.comparisons``), so a table and the JSON never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.table import Table as RichTable

from lit_algos.analysis.curves import UNIT_NAMES


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str | None = None
    sections: list[int] = field(default_factory=list)  # row indices after which a rule is drawn

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def add_section(self) -> None:
        if self.rows:
            self.sections.append(len(self.rows) - 1)

    def to_dict(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "caption": self.caption}

    def to_rich(self):
        table = RichTable(title=self.title, caption=self.caption)
        for col in self.columns:
            table.add_column(col)
        for i, row in enumerate(self.rows):
            table.add_row(*row, end_section=i in self.sections)
        return table


# ---- CEG -----------------------------------------------------------------------------------
def measure_label(summary) -> str:
    if summary.measure == "target":
        return "target"
    return {"mixed": "mixed per pair (paper rule)"}.get(summary.kind, summary.kind)


def ceg_table(report) -> Table:
    first = report.summaries[0]
    title = (
        f"CEG of {report.new_recipe} over {report.ref_recipe} — method {report.method}, "
        f"{len(report.ref)} ref / {len(report.new)} new runs, {'paired by seed' if first.paired else 'unpaired'}"
    )
    table = Table(
        title, ["L* rule", "L*", "unit", "CEG (geo. mean)", f"{report.confidence:.0%} CI", "n", "interval"]
    )
    for summary in report.summaries:
        for unit, est in summary.estimates.items():
            ci = f"[{fmt(est.low)}, {fmt(est.high)}]" if est.low is not None else "–"
            value = {">=": "≥ ", "<=": "≤ "}.get(est.bound or "", "") + fmt(est.value)
            table.add_row(
                measure_label(summary),
                fmt(summary.loss, 5),
                UNIT_NAMES[unit] + (" (measured)" if unit == "throughput" else ""),
                value + ("×" if est.value is not None else ""),
                ci,
                str(est.n),
                est.note or est.method,
            )
        table.add_section()
    return table


def censoring_lines(report) -> list[str]:
    lines = []
    for summary in report.summaries:
        label = f"{measure_label(summary)} L*={fmt(summary.loss, 5)}"
        lines += [f"censored at {label}: {c}" for c in summary.censored]
        lines += [f"excluded: {c}" for c in summary.excluded]
        lines += [f"warning at {label}: {w}" for w in getattr(summary, "warnings", [])]
        if summary.note:
            lines.append(f"{label}: {summary.note}")
    return lines


def decomposition_line(summary) -> str:
    identity = summary.identity
    if not identity:
        return (
            "time decomposition: not available (a CEG is undefined, a bound, or throughput was not measured)"
        )
    flops, thr = summary.estimates["flops"].value, summary.estimates["throughput"].value
    return (
        f"check: time speedup {fmt(identity['speedup'])} vs FLOP CEG × measured throughput ratio "
        f"{fmt(flops)} × {fmt(thr)} = {fmt(identity['ceg_x_throughput'])} "
        f"(gap {identity['relative_gap']:+.1%}; a large gap means the throughput up to L* differs from the run's average)"
    )


def pair_table(summary) -> Table:
    units = [u for u in summary.estimates if u != "throughput"]
    table = Table(
        f"per pair — {measure_label(summary)}",
        ["ref run", "new run", "kind", "L*", *(f"CEG {UNIT_NAMES[u]}" for u in units), "note"],
    )
    for p in summary.pairs:
        table.add_row(
            p.ref_run, p.new_run, p.kind, fmt(p.loss, 5), *(fmt(p.ceg.get(u)) for u in units), p.note
        )
    return table


def attribution_table(attr) -> Table:
    def est(e) -> str:
        return e.text() if e is not None else "–"

    shapley = any(c.shapley_share for c in attr.components)
    cols = ["component", "add-one CEG", "log-share", "remove-one CEG", "log-share"] + (
        ["Shapley share"] if shapley else []
    )
    title = f"attribution in {UNIT_NAMES[attr.unit]} at one L*={fmt(attr.loss, 5)} — whole stack CEG {est(attr.whole)}×"
    table = Table(title, cols)
    for c in attr.components:
        row = [c.component, est(c.add_one), est(c.add_share), est(c.remove_one), est(c.remove_share)]
        table.add_row(*row, *([est(c.shapley_share)] if shapley else []))
    table.add_section()
    pad = [""] if shapley else []
    table.add_row("product of parts", fmt(attr.product_add_one), "", fmt(attr.product_remove_one), "", *pad)
    table.add_row(
        "interaction = whole / product", est(attr.interaction_add), "", est(attr.interaction_remove), "", *pad
    )
    if attr.note:
        table.caption = attr.note + ": " + "; ".join(attr.censored)
    return table


def ranking(attr, by: str = "add_one") -> list[tuple[str, float | None]]:
    """Components ranked by their CEG (``add_one`` or ``remove_one``), largest first; undefined last."""
    values = []
    for c in attr.components:
        est = getattr(c, by)
        values.append((c.component, est.value if est is not None else None))
    return sorted(values, key=lambda cv: (cv[1] is None, -(cv[1] or 0.0)))


# ---- scaling and allocation ------------------------------------------------------------------
def _interval(pair) -> str:
    return f"[{fmt(pair[0])}, {fmt(pair[1])}]" if pair else "(no interval)"


def scaling_table(comparison) -> Table:
    table = Table(
        f"L(C) = E + A·C^-alpha ({comparison.points} points, {comparison.confidence:.0%} intervals)",
        ["side", "points", "E", "A", "alpha"],
    )

    def cell(fit, name: str, value: float) -> str:
        iv = fit.intervals.get(name)
        return fmt(value) + (f" [{fmt(iv[0])}, {fmt(iv[1])}]" if iv else "")

    for side, fit in comparison.fits.items():
        e_cell = cell(fit, "E", fit.E) if fit.fit_E else f"{fmt(fit.E)} (fixed)"
        table.add_row(side, str(fit.n), e_cell, cell(fit, "A", fit.A), cell(fit, "alpha", fit.alpha))
    return table


def dependence_line(dep) -> str:
    """One line: M(C) at both ends of the range, the slope of ln M with its interval, the verdict
    (the verdict in rich bold markup)."""
    return (
        f"M(C) = C_ref(L_new(C)) / C: {fmt(dep.m_lo)}× {_interval(dep.m_lo_interval)} at C={dep.c_lo:.3g} → "
        f"{fmt(dep.m_hi)}× {_interval(dep.m_hi_interval)} at C={dep.c_hi:.3g}; slope d ln M / d ln C = "
        f"{fmt(dep.slope)} {_interval(dep.interval)} → [bold]{dep.label}[/]"
        + (f" (other sign in {dep.p_other_sign:.1%} of the draws)" if dep.p_other_sign is not None else "")
        + (f" ({dep.note})" if dep.note else "")
        + (f"; basis: {dep.basis}" if getattr(dep, "basis", "") else "")
    )


def allocation_lines(summary) -> list[str]:
    fit = summary.fit
    lines = [
        f"L(N, D) = {fmt(fit.E, 4)} + {fmt(fit.A, 4)}/N^{fmt(fit.alpha)} + {fmt(fit.B, 4)}/D^{fmt(fit.beta)} "
        f"({fit.n} evaluations of {summary.n_runs} runs; N {fmt(fit.n_range[0])}-{fmt(fit.n_range[1])}, "
        f"D {fmt(fit.d_range[0])}-{fmt(fit.d_range[1])})"
    ]
    for c, m, iv, why, n_opt, n_kaplan in zip(
        summary.compute,
        summary.kaplan_to_chinchilla,
        summary.interval,
        summary.extrapolated,
        summary.optimal_params,
        summary.kaplan_params,
    ):
        lines.append(
            f"C={c:.3g}: compute-optimal N={n_opt:.3g}, D={c / 6 / n_opt:.3g}; Kaplan N={n_kaplan:.3g}; "
            f"Kaplan -> Chinchilla multiplier {fmt(m)}× {_interval(iv)} ({summary.confidence:.0%})"
            + (f" EXTRAPOLATED: {why}" if why else "")
        )
    return lines
