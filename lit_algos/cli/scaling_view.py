"""``lit-algos ceg --scaling`` and ``--allocation``: scaling-law verdicts and allocation multipliers."""

from __future__ import annotations

from lit_algos.cli.analysis_cmds import _console, _fmt, _print_json
from lit_algos.errors import LitAlgosError


def scaling(args, refs, news) -> int:
    from rich.table import Table

    from lit_algos.analysis.runs import check_comparable
    from lit_algos.analysis.scaling import (
        compute_dependence,
        degenerate_reasons,
        fit_scaling_law,
        scaling_points,
    )

    check_comparable(refs + news)
    fit_E = args.fit_E and args.fixed_E is None
    n_params = 3 if fit_E else 2
    fits, reasons = {}, []
    for side, runs in (("ref", refs), ("new", news)):
        c, loss = scaling_points(runs, args.scaling)
        reasons += [f"{side}: {r}" for r in degenerate_reasons(runs, args.scaling, n_params)]
        if c.size < n_params:
            raise LitAlgosError(
                f"The {side} side gives {c.size} point(s) for a {n_params}-parameter scaling fit; "
                + "; ".join(reasons)
                + ". Train more sizes or seeds (lit-algos sweep scaling)."
            )
        fits[side] = (
            fit_scaling_law(c, loss, fit_E=fit_E, confidence=args.confidence, E=args.fixed_E),
            c,
        )
    (ref_fit, _), (new_fit, new_c) = fits["ref"], fits["new"]
    dep = compute_dependence(
        ref_fit,
        new_fit,
        float(new_c.min()),
        float(new_c.max()),
        margin=args.margin,
        confidence=args.confidence,
        seed=args.seed,
        reasons=reasons,
    )
    if args.json:
        _print_json(
            {"ref_fit": ref_fit.to_dict(), "new_fit": new_fit.to_dict(), "compute_dependence": dep.to_dict()}
        )
        return 0
    table = Table(title=f"L(C) = E + A·C^-alpha ({args.scaling} points, {args.confidence:.0%} intervals)")
    for col in ("side", "points", "E", "A", "alpha"):
        table.add_column(col)

    def cell(fit, name: str, value: float) -> str:
        iv = fit.intervals.get(name)
        return _fmt(value) + (f" [{_fmt(iv[0])}, {_fmt(iv[1])}]" if iv else "")

    for side, (fit, _) in fits.items():
        e_cell = cell(fit, "E", fit.E) if fit.fit_E else f"{_fmt(fit.E)} (fixed)"
        table.add_row(side, str(fit.n), e_cell, cell(fit, "A", fit.A), cell(fit, "alpha", fit.alpha))
    console = _console()
    console.print(table)

    def iv(pair) -> str:
        return f"[{_fmt(pair[0])}, {_fmt(pair[1])}]" if pair else "(no interval)"

    console.print(
        f"M(C) = C_ref(L_new(C)) / C: {_fmt(dep.m_lo)}× {iv(dep.m_lo_interval)} at C={dep.c_lo:.3g} → "
        f"{_fmt(dep.m_hi)}× {iv(dep.m_hi_interval)} at C={dep.c_hi:.3g}; slope d ln M / d ln C = "
        f"{_fmt(dep.slope)} {iv(dep.interval)} → [bold]{dep.label}[/]"
        + (f" ({dep.note})" if dep.note else "")
    )
    return 0


def allocation(args, refs) -> int:
    import numpy as np

    from lit_algos.analysis.allocation import allocation_multiplier, allocation_points, fit_hoffmann

    n, d, loss = allocation_points(refs)
    fit = fit_hoffmann(n, d, loss)
    compute = 6.0 * n * d
    grid = np.geomspace(compute.min(), compute.max(), 4)
    mult = allocation_multiplier(fit, grid)
    if args.json:
        _print_json({"fit": fit.to_dict(), "compute": grid.tolist(), "kaplan_to_chinchilla": mult.tolist()})
        return 0
    console = _console()
    console.print(
        f"L(N, D) = {_fmt(fit.E, 4)} + {_fmt(fit.A, 4)}/N^{_fmt(fit.alpha)} + {_fmt(fit.B, 4)}/D^{_fmt(fit.beta)} "
        f"({fit.n} evaluations of {len(refs)} runs)"
    )
    for c, m in zip(grid, mult):
        n_opt = float(fit.params_for(c, "chinchilla"))
        console.print(
            f"C={c:.3g}: compute-optimal N={n_opt:.3g}, D={c / 6 / n_opt:.3g}; Kaplan N={float(fit.params_for(c, 'kaplan')):.3g}; "
            f"Kaplan -> Chinchilla multiplier {_fmt(m)}×"
        )
    return 0
