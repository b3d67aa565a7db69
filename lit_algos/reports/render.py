"""A study's report: ``report.md``, ``plots/*.png`` and ``results.json`` in the study directory,
all written atomically; optionally the same tables and plots in one W&B run.

``study.json`` in the study directory names the study file, the preset and the runs directory,
so ``lit-algos report STUDY_DIR`` regenerates the report from the runs without training.
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lit_algos.errors import LitAlgosError, LitAlgosWarning
from lit_algos.hardware import host_fingerprint, host_string
from lit_algos.peaks import fingerprint_peaks
from lit_algos.reports import analyses, plots
from lit_algos.reports.collect import group_records
from lit_algos.reports.wandb_tables import numeric_table
from lit_algos.studies.expand import expand
from lit_algos.studies.spec import Preset, Study, arm_names, load_study
from lit_algos.studies.tuning import chosen_scales, sweep_results
from lit_algos.training.wandb_logging import is_reachable, resolve_mode, wandb_host
from lit_algos.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

BUILDERS = {
    "ceg": analyses.ceg_section,
    "attribution": analyses.attribution_section,
    "scaling": analyses.scaling_section,
    "allocation": analyses.allocation_section,
}


def write_study_meta(out_dir: Path, study: Study, preset: Preset, runs_dir: Path) -> Path:
    path = Path(out_dir) / "study.json"
    try:  # keep the wall times of earlier invocations
        earlier = read_json(path).get("wall_times") if path.is_file() else None
    except (ValueError, OSError, LitAlgosError):
        earlier = None
    meta = {
        "study": study.path or study.name,
        "name": study.name,
        "preset": preset.name,
        "runs_dir": str(Path(runs_dir).resolve()),
    }
    return atomic_write_json(path, meta | ({"wall_times": earlier} if earlier else {}))


def read_study_meta(study_dir: Path) -> tuple[Study, Preset, Path]:
    path = Path(study_dir) / "study.json"
    if not path.is_file():
        raise LitAlgosError(
            f"{study_dir} is not a study directory: it has no study.json. Run `lit-algos study NAME` first, or pass the "
            "directory it printed (runs/studies/<name>[-<preset>])."
        )
    try:
        meta = read_json(path)
        study = load_study(meta["study"]) if Path(meta["study"]).is_file() else load_study(meta["name"])
        return study, study.preset(meta["preset"]), Path(meta["runs_dir"])
    except (KeyError, TypeError, ValueError) as err:
        raise LitAlgosError(
            f"{path} is malformed ({err}); rerun `lit-algos study NAME` to rewrite it."
        ) from None


def _md_table(table: analyses.Table) -> list[str]:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"**{table.title}**", "", "| " + " | ".join(map(cell, table.columns)) + " |"]
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in table.rows]
    return lines + [""]


def build_sections(
    study: Study, preset: Preset, groups: dict
) -> tuple[list[analyses.Section], dict[str, bytes]]:
    """Every analysis of the study as a section, and the PNGs (file name -> bytes)."""
    sections, images = [], {}
    for an in study.analyses:
        exp = study.experiments[an.experiment]
        sizes = list(preset.sizes[an.experiment])
        if an.kind == "curves":
            sec = analyses.Section(f"Loss against FLOPs ({an.experiment})")
            name = f"curves-{an.experiment}.png"
            images[name] = plots.loss_curves(an.experiment, sizes, arm_names(exp), groups)
            sec.plots.append(name)
            sec.text.append(
                "Mean validation loss over seeds against training FLOPs; the band spans the seeds."
            )
            sections.append(sec)
            continue
        sec = BUILDERS[an.kind](study, preset, an, groups)
        if an.kind == "ceg" and sec.data:
            name = f"ceg-{an.experiment}.png"
            images[name] = plots.ceg_bars(sec.data, sizes, an.options["reference"])
            sec.plots.append(name)
        elif an.kind == "attribution":
            for size, att in sec.data.items():
                name = f"attribution-{an.experiment}-{size}.png"
                images[name] = plots.attribution_chart(att, size)
                sec.plots.append(name)
        elif an.kind == "scaling":
            fits, points = sec.data.pop("_fits"), sec.data.pop("_points")
            if any(c.size for c, _ in points.values()):
                images[f"fits-{an.experiment}.png"] = plots.scaling_fits(
                    fits, points, an.options.get("points", "final")
                )
                sec.plots.append(f"fits-{an.experiment}.png")
            if fits:
                images[f"multiplier-{an.experiment}.png"] = plots.multiplier_bands(
                    an.options["pairs"], fits, points
                )
                sec.plots.append(f"multiplier-{an.experiment}.png")
        sections.append(sec)
    return sections, images


def write_report(
    study: Study, preset: Preset, runs_dir: Path, out_dir: Path, *, wandb: bool = False, console=None
) -> Path:
    """Analyse the study's runs in ``runs_dir`` and write the report into ``out_dir``; returns report.md."""

    sweeps = sweep_results(study, preset, Path(runs_dir)) if preset.tune else []
    expansion = expand(study, preset, chosen_scales(sweeps))
    groups, missing = group_records(expansion, Path(runs_dir))
    sections, images = build_sections(study, preset, groups)
    if preset.tune:
        sections.insert(0, analyses.tuning_section(preset, sweeps))
    out_dir = Path(out_dir)
    for name, png in images.items():
        atomic_write_bytes(out_dir / "plots" / name, png)
    n_runs = len(expansion.unique())
    lines = [
        f"# Study: {study.name} (preset {preset.name})",
        "",
        study.description.strip(),
        "",
        f"- Study file: `{study.path or study.name}`; runs directory: `{runs_dir}`",
        f"- {n_runs} distinct runs ({preset.seeds} seed(s) per configuration); {n_runs - len(missing)} found, "
        f"{len(missing)} missing.",
        "- Sizes: "
        + "; ".join(f"{e}: {', '.join(s)}" for e, s in preset.sizes.items())
        + "; tokens per run: "
        + budget_text(expansion),
        f"- Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from the run records; every "
        "measured number below is derived from them. Columns marked 'paper' are published values, cited below.",
        "",
    ]
    lines += [claims_paragraph(preset), ""] + wall_time_lines(out_dir)
    if missing:
        lines += ["Missing runs (not trained yet): " + ", ".join(missing), ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        for text in sec.text:
            lines += [text, ""]
        for table in sec.tables:
            lines += _md_table(table)
        for name in sec.plots:
            lines += [f"![{name}](plots/{name})", ""]
    if study.sources:
        lines += ["## Sources", ""] + [f"- {s}" for s in study.sources] + [""]
    report = atomic_write_text(out_dir / "report.md", "\n".join(lines))
    results = {
        "study": study.name,
        "preset": preset.name,
        "missing": missing,
        "sections": [
            {"title": s.title, "data": s.data, "tables": [t.__dict__ for t in s.tables]} for s in sections
        ],
    }
    atomic_write_json(out_dir / "results.json", json.loads(json.dumps(results, default=_jsonable)))
    if wandb:
        log_to_wandb(study, preset, sections, out_dir)
    return report


def budget_text(expansion) -> str:
    """Each size's token budget as the runs have it, and the rule that set it."""
    per_size: dict[str, set[int]] = {}
    for spec in expansion.unique():
        per_size.setdefault(spec.tags["size"], set()).add(spec.config().train.max_tokens)
    sizes = ", ".join(f"{k}: {' / '.join(f'{v:,}' for v in sorted(vs))}" for k, vs in per_size.items())
    rule = expansion.preset.tokens_per_param
    if rule is not None:
        return f"{sizes} ({rule.ratio:g} tokens per non-embedding parameter of {rule.recipe} at each size)"
    return sizes or "the sizes' defaults"


def claims_paragraph(preset: Preset) -> str:
    """What the preset's numbers can carry (``claims``)."""
    if preset.claims == "directions":
        return (
            f"**This preset ({preset.name}) shows directions, not verdicts**: its runs are short and few, so "
            "intervals are wide, some runs may still sit near the unigram plateau, and its labels are not claims. "
            "Run the full preset for verdicts."
        )
    return (
        f"**Preset {preset.name} is sized for verdicts**: every verdict below names its basis (sizes, seeds, E fixed "
        "or fitted, points) and every bound says which side censored it."
    )


def record_wall_time(
    out_dir: Path, seconds: float, trained: int, workers: int | None, threads: int | None
) -> None:
    """Append one `lit-algos study` invocation's wall time to study.json (the report prints them)."""

    path = Path(out_dir) / "study.json"
    meta = read_json(path) if path.is_file() else {}
    meta.setdefault("wall_times", []).append(
        {
            "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round(float(seconds), 1),
            "runs_trained_or_checked": trained,
            "workers": workers,
            "threads": threads,
            "host": host_string(host_fingerprint(peaks=fingerprint_peaks(cached=True))),
        }
    )
    atomic_write_json(path, meta)


def wall_time_lines(out_dir: Path) -> list[str]:
    path = Path(out_dir) / "study.json"
    times = (read_json(path) if path.is_file() else {}).get("wall_times") or []
    if not times:
        return []
    lines = [
        "Measured wall time of `lit-algos study` (each invocation; a resumed study trains only what is missing):"
    ]
    for t in times:
        lines.append(
            f"- {t['finished_at']}: {t['seconds'] / 60:.1f} min for {t['runs_trained_or_checked']} runs "
            f"({t['workers'] or 'SLURM'} worker(s), {t['threads'] or 'all'} thread(s) each) on {t['host']}"
        )
    return lines + [""]


def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def log_to_wandb(study: Study, preset: Preset, sections, out_dir: Path) -> None:
    """The report's tables (wandb.Table) and plots (wandb.Image) in one W&B run. Opt-in; any
    failure is a warning, never an error (the same rule as training runs)."""

    try:
        # optional dependency (the wandb extra)
        import wandb
    except ImportError:
        warnings.warn(
            "wandb is not installed (pip install 'lit_algos[wandb]'); report not logged.",
            LitAlgosWarning,
            stacklevel=2,
        )
        return
    mode = resolve_mode(None)
    if mode == "disabled":
        return
    if mode in ("online", "shared") and not is_reachable(*wandb_host()):
        warnings.warn(
            "W&B is not reachable; logging the report offline (wandb sync later).",
            LitAlgosWarning,
            stacklevel=2,
        )
        mode = "offline"
    try:
        run = wandb.init(
            project="lit_algos",
            name=f"study-{study.name}-{preset.name}",
            group=f"study-{study.name}",
            job_type="report",
            dir=str(out_dir),
            mode=mode,
            config={"study": study.name, "preset": preset.name},
            settings=wandb.Settings(init_timeout=30),
        )
        payload = {}
        for i, sec in enumerate(sections):
            for j, table in enumerate(sec.tables):
                columns, rows = numeric_table(table.columns, table.rows)  # sortable, chartable numbers
                payload[f"tables/{i}-{j} {table.title}"[:120]] = wandb.Table(columns=columns, data=rows)
            for name in sec.plots:
                payload[f"plots/{name}"] = wandb.Image(str(out_dir / "plots" / name))
        run.log(payload)
        run.finish()
    except Exception as err:  # W&B must never stop a report
        warnings.warn(
            f"could not log the report to W&B ({type(err).__name__}: {err}).", LitAlgosWarning, stacklevel=2
        )
