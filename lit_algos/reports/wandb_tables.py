"""Analysis results in one W&B run: numeric tables (sortable, chartable) and their plots.

The report and ``ceg`` tables hold display text ("2.01× [1.9, 2.1]", "≥ 1000×", "–"). A W&B table
of strings can neither be sorted by value nor charted, so :func:`numeric_table` turns each column
into numbers where every cell reads as one: a value with an interval becomes three columns
(``CEG``, ``CEG low``, ``CEG high``), a censored bound a value plus a ``CEG bound`` column ("≥" or
"≤"), "–" an empty cell. The numbers are the ones displayed (3 significant digits); the full
precision is in ``results.json`` and ``--json``.

:func:`log_analysis_run` makes the run: opt-in, offline unless configured (the rules of
``training.wandb_logging``), and any W&B failure is a warning, never an error.
"""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from pathlib import Path

from lit_algos.analysis import tables
from lit_algos.errors import LitAlgosWarning
from lit_algos.reports import plots
from lit_algos.training.wandb_logging import is_reachable, resolve_mode, wandb_host

_NUM = r"-?(?:∞|\d[\d,]*\.?\d*|\.\d+)(?:e[+-]?\d+)?"  # ∞: an unbounded interval end
_CELL = re.compile(
    rf"^(?P<bound>[≥≤])?\s*(?P<value>{_NUM})?\s*(?:×|%|s)?\s*(?:\[(?P<low>{_NUM})\s*[,–-]\s*(?P<high>{_NUM})\])?\s*(?:×)?$"
)
EMPTY = ("", "–", "-", "n/a")


def parse_cell(cell) -> dict | None:
    """``{"value", "low", "high", "bound"}`` of a display cell (None: not a number)."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return {"value": float(cell)}
    text = str(cell).strip()
    if text in EMPTY:
        return {}
    m = _CELL.match(text)
    if not m or (m.group("value") is None and m.group("low") is None):
        return None

    def num(group: str) -> float | None:
        raw = m.group(group)
        return float(raw.replace(",", "").replace("∞", "inf")) if raw is not None else None

    return {
        k: v
        for k, v in {
            "value": num("value"),
            "low": num("low"),
            "high": num("high"),
            "bound": m.group("bound"),
        }.items()
        if v is not None
    }


def numeric_table(columns: list[str], rows: list[list]) -> tuple[list[str], list[list]]:
    """Columns and rows with every all-numeric column as numbers (module docstring)."""
    out_cols: list[str] = []
    out_cells: list[list] = [[] for _ in rows]
    for j, name in enumerate(columns):
        cells = [row[j] if j < len(row) else "" for row in rows]
        parsed = [parse_cell(c) for c in cells]
        if any(p is None for p in parsed) or not any(p for p in parsed):
            out_cols.append(name)
            for i, c in enumerate(cells):
                out_cells[i].append(str(c))
            continue
        keys = [k for k in ("value", "low", "high", "bound") if any(k in p for p in parsed)]
        out_cols += [name if k == "value" else f"{name} {k}" for k in keys]
        for i, p in enumerate(parsed):
            # an unbounded end (∞) is an empty cell: W&B tables are JSON, which has no infinity
            out_cells[i] += [_finite(p.get(k)) if k != "bound" else p.get(k, "") for k in keys]
    return out_cols, out_cells


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def log_analysis_run(
    *,
    name: str,
    group: str,
    job_type: str,
    config: dict,
    tables: dict[str, tuple[list[str], list[list]]],
    images: dict[str, Path | bytes],
    summary: dict | None = None,
    directory: Path | None = None,
    tags: list[str] | None = None,
) -> None:
    """One W&B run holding ``tables`` (title -> (columns, display rows), logged numeric) and ``images``
    (name -> PNG path or bytes); ``summary``: numbers for the run summary at full precision."""

    try:
        # optional dependency (the wandb extra)
        import wandb
    except ImportError:
        _warn("wandb is not installed (pip install 'lit_algos[wandb]'); nothing logged.")
        return
    mode = resolve_mode(None)
    if mode == "disabled":
        return
    if mode in ("online", "shared") and not is_reachable(*wandb_host()):
        _warn("W&B is not reachable; logging offline (wandb sync later).")
        mode = "offline"
    try:
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project="lit_algos", name=name, group=group, job_type=job_type, mode=mode, config=config,
            tags=tags, dir=str(directory) if directory is not None else None,
            settings=wandb.Settings(init_timeout=30),
        )  # fmt: skip
        payload = {}
        for title, (columns, rows) in tables.items():
            cols, cells = numeric_table(columns, rows)
            payload[f"tables/{title}"[:120]] = wandb.Table(columns=cols, data=cells)
        for key, image in images.items():
            payload[f"plots/{key}"] = wandb.Image(str(_png_path(image)), caption=key)
        run.log(payload)
        if summary:
            run.summary.update({k: v for k, v in summary.items() if v is not None})
        run.finish()
    except Exception as err:  # W&B must never stop an analysis
        _warn(f"could not log to W&B ({type(err).__name__}: {err}).")


def _png_path(image: Path | bytes) -> Path:
    """A PNG file for ``wandb.Image`` (which copies it into the run)."""
    if not isinstance(image, bytes):
        return Path(image)

    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as f:
        f.write(image)
    return Path(f.name)


# ---- ceg --wandb ---------------------------------------------------------------------------------
def log_ceg(result, refs, news, *, scaling=None, allocation=None, directory: Path | None = None) -> None:
    """``lit-algos ceg --wandb``: the printed tables (numeric) and plots of one comparison in one run:
    the CEG per unit with its interval, the seeds' loss curves against FLOPs, the attribution, or the
    scaling / allocation table. The run's group is ``ceg``; its config names both sides' runs."""

    ref_name = ", ".join(sorted({r.recipe for r in refs}))
    new_name = ", ".join(sorted({n.recipe for n in news}))
    out_tables, images, summary = (
        _ceg_outputs(result, refs, news, ref_name, new_name) if result is not None else ({}, {}, {})
    )
    if scaling is not None:
        t = tables.scaling_table(scaling)
        out_tables["scaling"] = (t.columns, t.rows)
        summary.update(
            {"scaling/slope": scaling.dependence.slope, "scaling/verdict": scaling.dependence.label}
        )
    if allocation is not None:
        cols = ["C", "optimal N", "optimal D", "Kaplan N", "Kaplan -> Chinchilla multiplier"]
        rows = [
            [c, n, c / 6 / n, k, m]
            for c, m, n, k in zip(
                allocation.compute,
                allocation.kaplan_to_chinchilla,
                allocation.optimal_params,
                allocation.kaplan_params,
            )
        ]
        out_tables["allocation"] = (cols, rows)
    log_analysis_run(
        name=f"ceg {new_name} vs {ref_name}",
        group="ceg",
        job_type="ceg",
        config={
            "ref": ref_name,
            "new": new_name,
            "ref_runs": [r.run_id for r in refs],
            "new_runs": [n.run_id for n in news],
        },
        tables=out_tables,
        images=images,
        summary=summary,
        directory=directory,
    )


def _ceg_outputs(result, refs, news, ref_name: str, new_name: str) -> tuple[dict, dict, dict]:
    """The CEG's tables (with the attribution's), its two plots and its summary numbers."""
    out_tables, images, summary = {}, {}, {}
    report = result.report
    t = tables.ceg_table(report)
    out_tables["ceg"] = (t.columns, t.rows)
    if result.attribution:
        a = tables.attribution_table(result.attribution)
        out_tables["attribution"] = (a.columns, a.rows)
    first = report.summaries[0]
    data = {
        unit: {"primary L*": {"ceg": e.to_dict()}}
        for unit, e in first.estimates.items()
        if unit != "throughput"
    }
    images["ceg.png"] = plots.ceg_points(
        data, ["primary L*"], ref_name, title=f"CEG of {new_name} over {ref_name}"
    )
    groups = {("ceg", ref_name, ""): refs, ("ceg", new_name, ""): news}
    images["loss-curves.png"] = plots.loss_curves("ceg", [""], [ref_name, new_name], groups)
    summary = {f"ceg/{unit}": e.value for unit, e in first.estimates.items()}
    summary.update({f"ceg/{unit}_low": e.low for unit, e in first.estimates.items()})
    summary.update({f"ceg/{unit}_high": e.high for unit, e in first.estimates.items()})
    summary["L*"] = first.loss
    return out_tables, images, summary


def _warn(message: str) -> None:
    warnings.warn(f"W&B: {message}", LitAlgosWarning, stacklevel=3)
