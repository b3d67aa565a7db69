"""The report's PNG plots (matplotlib on the Agg canvas: no display, no global backend switch).

Every plot is drawn from run records or from the fits made on them; each returns PNG bytes
that ``render`` writes atomically."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, NullLocator

from lit_algos.analysis.scaling import multiplier, multiplier_band


def _figure(width: float = 7.0, height: float = 4.5):
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def seed_band(records) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """FLOPs, mean, min and max validation loss over seeds, on the first seed's FLOP grid
    (each curve interpolated in ln FLOPs; outside a curve's range it is left out)."""
    base = np.array([p.flops for p in records[0].curve if p.flops > 0], dtype=float)
    rows = []
    for r in records:
        x = np.array([p.flops for p in r.curve if p.flops > 0], dtype=float)
        y = np.array([p.val_loss for p in r.curve if p.flops > 0], dtype=float)
        if x.size < 1:
            continue
        v = np.interp(np.log(base), np.log(x), y, left=np.nan, right=np.nan)
        rows.append(v)
    m = np.array(rows)  # (seeds, evals)
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return base, np.nanmean(m, 0), np.nanmin(m, 0), np.nanmax(m, 0)


def loss_curves(experiment: str, sizes: list[str], arms: list[str], groups: dict) -> bytes:
    fig = _figure(5.0 * max(1, len(sizes)), 4.2)
    for k, size in enumerate(sizes):
        ax = fig.add_subplot(1, len(sizes), k + 1)
        for i, arm in enumerate(arms):
            recs = groups.get((experiment, arm, size), [])
            if not recs:
                continue
            x, mean, lo, hi = seed_band(recs)
            color = f"C{i % 10}"
            ax.plot(x, mean, color=color, lw=1.3, label=f"{arm} (n={len(recs)})")
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("training FLOPs")
        ax.set_ylabel("validation loss")
        ax.set_title(f"{experiment} @ {size}" if size else " vs ".join(reversed(arms)), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a size with no runs yet has nothing to name
            ax.legend(fontsize=6)
    fig.suptitle(
        "validation loss against training FLOPs: mean over seeds, band = min..max of the seeds", fontsize=10
    )
    return _png(fig)


def plain_log_axis(ax, values, axis: str = "y") -> None:
    """A log axis around ``values`` and 1 with plain tick labels ("0.9×", "1×", "2×"), never "1.04×10⁰":
    1-2-5 ticks over a decade or more, evenly spaced round numbers over a narrower range."""

    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0] + [1.0]
    lo, hi = min(finite) / 1.15, max(finite) * 1.15
    if math.log10(hi / lo) >= 1:
        decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        ticks = [m * 10.0**e for e in decades for m in (1, 2, 5)]
    else:
        ticks = list(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
    ticks = [t for t in ticks if lo <= t <= hi and t > 0]
    scale, limits, target = (
        (ax.set_yscale, ax.set_ylim, ax.yaxis) if axis == "y" else (ax.set_xscale, ax.set_xlim, ax.xaxis)
    )
    scale("log")
    limits(lo, hi)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


def _interval_points(ax, xs, estimates, color, label, marker="o") -> list:
    """Point estimates with their interval as error bars; censored ones (bounds) as open triangles
    pointing the way the true value lies, with no bar. Returns the values drawn (for the axis)."""
    drawn = []
    shown = [(x, e) for x, e in zip(xs, estimates) if e and e.get("value") is not None]
    plain = [(x, e) for x, e in shown if not e.get("bound")]
    if plain:
        v = [e["value"] for _, e in plain]
        low = [e["value"] - e["low"] if e.get("low") is not None else 0.0 for _, e in plain]
        high = [e["high"] - e["value"] if e.get("high") is not None else 0.0 for _, e in plain]
        ax.errorbar([x for x, _ in plain], v, yerr=[low, high], fmt=marker, color=color, capsize=3, ms=5,
                    lw=1.2, label=label)  # fmt: skip
        drawn += (
            v + [e["low"] for _, e in plain if e.get("low")] + [e["high"] for _, e in plain if e.get("high")]
        )
    for x, e in shown:
        if e.get("bound"):
            up = e["bound"] == ">="
            ax.plot([x], [e["value"]], marker="^" if up else "v", color=color, mfc="white", ms=8, ls="none",
                    label=f"{label}: bound ({'≥' if up else '≤'}, censored)")  # fmt: skip
            drawn.append(e["value"])
    return drawn


def _finish_interval_plot(ax, drawn, ylabel: str, title: str, names: list[str]) -> None:
    ax.axhline(1.0, color="black", lw=0.8, ls="--", label="1× (no gain)")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(names) - 0.4)
    plain_log_axis(ax, drawn)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # one legend entry per label
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="y", alpha=0.3)


def ceg_points(data: dict, sizes: list[str], reference: str, title: str | None = None) -> bytes:
    """FLOP CEG of each arm over ``reference`` at each size: the geometric mean over seeds as a point,
    its 95% Student-t interval as an error bar, around the 1× line on a log axis (PNG bytes)."""
    return _png(ceg_figure(data, sizes, reference, title))


def ceg_figure(data: dict, sizes: list[str], reference: str, title: str | None = None):
    """The figure of :func:`ceg_points` (``data``: arm -> size -> {"ceg": {value, low, high, bound}})."""
    arms = list(data)
    fig = _figure(max(6.5, 0.9 * len(arms) * max(1, len(sizes)) + 2.5), 4.2)
    ax = fig.add_subplot()
    step = 0.6 / max(1, len(sizes))
    drawn = []
    for k, size in enumerate(sizes):
        xs = [i + (k - (len(sizes) - 1) / 2) * step for i in range(len(arms))]
        ests = [(data[arm].get(size) or {}).get("ceg") for arm in arms]
        drawn += _interval_points(ax, xs, ests, f"C{k}", size)
    _finish_interval_plot(
        ax,
        drawn,
        f"CEG over {reference}" if title else f"FLOP CEG over {reference}",
        (title or f"FLOP CEG over {reference}") + ": geometric mean over seeds, 95% Student-t interval",
        arms,
    )
    return fig


ceg_bars = ceg_points  # the name report code called it by before the points replaced the bars


def scaling_fits(fits: dict, points: dict, mode: str = "final") -> bytes:
    fig = _figure()
    ax = fig.add_subplot()
    for i, (arm, (c, loss)) in enumerate(points.items()):
        if c.size == 0:
            continue
        color = f"C{i % 10}"
        ax.scatter(c, loss, color=color, s=14, label=f"{arm} runs")
        if arm in fits:
            grid = np.geomspace(c.min() / 1.5, c.max() * 1.5, 100)
            f = fits[arm]
            ax.plot(grid, f.loss(grid), color=color, lw=1.2,
                    label=f"{arm}: {f.E:.3g} + {f.A:.3g}·C^-{f.alpha:.3g}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel(
        "final validation loss" if mode == "final" else "validation loss (frontier of all evaluations)"
    )
    ax.set_title("L(C) fits through their points")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    return _png(fig)


def multiplier_bands(pairs: list, fits: dict, points: dict, n_draws: int = 1000, seed: int = 0) -> bytes:
    """M(C) of each pair over the new arm's compute range, with a 95% band from draws of the fits'
    parameters (``scaling.multiplier_band``: the draws ``compute_dependence`` makes at the ends)."""

    fig = _figure()
    ax = fig.add_subplot()
    for i, (ref, new) in enumerate(pairs):
        if ref not in fits or new not in fits:
            continue
        c = points[new][0]
        grid = np.geomspace(c.min(), c.max(), 40)
        color = f"C{i % 10}"
        with np.errstate(all="ignore"):
            line = np.asarray(multiplier(fits[ref], fits[new], grid), dtype=float)
        shown = np.isfinite(line) & (line > 0)  # inf where the new arm's loss is below ref's floor E
        if not shown.any():
            continue  # nothing drawable on a log axis; the verdict table says why
        ax.plot(grid[shown], line[shown], color=color, lw=1.3, label=f"{ref} -> {new}")
        band = multiplier_band(fits[ref], fits[new], grid, n_samples=n_draws, seed=seed + i)
        if band is not None:
            lo, hi = band
            ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0)
            ax.fill_between(grid[ok], lo[ok], hi[ok], color=color, alpha=0.2, lw=0)
    ax.set_xlabel("compute C (FLOPs)")
    ax.set_ylabel("M(C) = C_ref(L_new(C)) / C")
    ax.set_title("Compute multiplier against compute (95% band)")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    else:  # say why the plot is empty rather than leave blank axes
        ax.text(0.5, 0.5, "no pair has a finite M(C) to draw\n(see the report's Fits and verdict tables)",
                transform=ax.transAxes, ha="center", va="center")  # fmt: skip
    return _png(fig)


def attribution_chart(att: dict, size: str) -> bytes:
    """Add-one and remove-one FLOP CEG of each component (points with 95% intervals), the whole
    stack's CEG as a dotted line, around the 1× line on a log axis."""
    comps = att["components"]
    fig = _figure(max(6.5, 1.1 * len(comps) + 2.5), 4.2)
    ax = fig.add_subplot()
    drawn = []
    for k, key in enumerate(("add_one", "remove_one")):
        xs = [i + (k - 0.5) * 0.3 for i in range(len(comps))]
        drawn += _interval_points(ax, xs, [c.get(key) for c in comps], f"C{k}", key.replace("_", "-"))
    whole = (att.get("whole") or {}).get("value")
    if whole and math.isfinite(whole):
        ax.axhline(whole, color="C3", lw=1.0, ls=":", label=f"whole stack {whole:.3g}×")
        drawn.append(whole)
    _finish_interval_plot(
        ax, drawn, "FLOP CEG (95% interval)", f"Attribution at {size}", [c["component"] for c in comps]
    )
    return _png(fig)
