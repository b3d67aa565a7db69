"""The report's PNG plots (matplotlib on the Agg canvas: no display, no global backend switch).

Every plot is drawn from run records or from the fits made on them; each returns PNG bytes
that ``render`` writes atomically."""

from __future__ import annotations

import io
import math

import numpy as np


def _figure(width: float = 7.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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
        import warnings

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
        ax.set_title(f"{experiment} @ {size}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a size with no runs yet has nothing to name
            ax.legend(fontsize=6)
    fig.suptitle(
        "validation loss against training FLOPs: mean over seeds, band = min..max of the seeds", fontsize=10
    )
    return _png(fig)


def ceg_bars(data: dict, sizes: list[str], reference: str) -> bytes:
    from matplotlib.patches import Patch

    arms = list(data)
    fig = _figure(max(6.0, 1.0 * len(arms) * len(sizes)), 4.2)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(sizes))
    handles = []
    for k, size in enumerate(sizes):
        xs, vals, err, bounds = [], [], [[], []], []
        for i, arm in enumerate(arms):
            ceg = (data[arm].get(size) or {}).get("ceg") or {}
            v = ceg.get("value")
            if v is None:
                continue
            x = i + (k - (len(sizes) - 1) / 2) * width
            if ceg.get("bound"):  # a censored CEG: hatched, an arrow the way the truth lies, no bar
                bounds.append((x, v, ceg["bound"]))
                continue
            lo, hi = ceg.get("low"), ceg.get("high")
            xs.append(x)
            vals.append(v)
            err[0].append(v - lo if lo is not None else 0.0)
            err[1].append(hi - v if hi is not None else 0.0)
        handles.append(ax.bar(xs, vals, width=width, yerr=err, capsize=3, color=f"C{k}", label=size))
        for x, v, bound in bounds:
            ax.bar([x], [v], width=width, color="white", edgecolor=f"C{k}", hatch="//")
            ax.plot([x], [v], marker="^" if bound == ">=" else "v", color=f"C{k}", ms=8)
        if bounds:
            handles.append(
                Patch(
                    facecolor="white",
                    edgecolor=f"C{k}",
                    hatch="//",
                    label=f"{size}: bound (censored; arrow = direction)",
                )
            )
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel(f"FLOP CEG over {reference} (95% CI)")
    ax.set_title(f"FLOP CEG over {reference}: geometric mean over seeds, 95% Student-t interval", fontsize=10)
    ax.legend(handles=handles, fontsize=7)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return _png(fig)


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
    from lit_algos.analysis.scaling import multiplier, multiplier_band

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
    comps = att["components"]
    fig = _figure(max(6.0, 1.1 * len(comps)), 4.2)
    ax = fig.add_subplot()
    for k, key in enumerate(("add_one", "remove_one")):
        xs, vals, err = [], [], [[], []]
        for i, c in enumerate(comps):
            e = c.get(key) or {}
            v = e.get("value")
            if v is None:
                continue
            xs.append(i + (k - 0.5) * 0.4)
            vals.append(v)
            err[0].append(v - e["low"] if e.get("low") is not None else 0.0)
            err[1].append(e["high"] - v if e.get("high") is not None else 0.0)
        ax.bar(xs, vals, width=0.4, yerr=err, capsize=3, color=f"C{k}", label=key.replace("_", "-"))
    whole = (att.get("whole") or {}).get("value")
    if whole and math.isfinite(whole):
        ax.axhline(whole, color="C3", lw=1.0, ls=":", label=f"whole stack {whole:.3g}×")
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(comps)), [c["component"] for c in comps], rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("FLOP CEG (95% CI)")
    ax.set_title(f"Attribution at {size}")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return _png(fig)
