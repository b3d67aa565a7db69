"""Study reports (lit_algos.reports) from synthetic run records with known answers.

Known answers:
- CEG: the new arm's loss is the reference's at k times the FLOPs (``log_linear_loss(k=...)``),
  so its FLOP CEG is k exactly (per seed k * exp(e_s) with e = -0.03, 0, +0.03: geometric mean k);
  k = 2 at mini and 4 at tiny, whose runs end at 10x the FLOPs: slope ln 2 / ln 10 = 0.301, "gain grows";
- attribution: retro+position 2x, retro+norm 3x, modern 6x (modern-position 3x, modern-norm 2x):
  independent components, so interaction 1 and log-shares ln 2 / ln 6 = 0.387, ln 3 / ln 6 = 0.613;
- scaling with E fixed at 2: ref 2 + 30 C^-0.1, new 2 + 30 C^-0.12: alpha 0.1 and 0.12, and M(C) =
  C^0.2 (slope +0.2), "gain grows";
- allocation: losses from Hoffmann's published L(N, D): the fitted law's Kaplan -> Chinchilla
  multiplier equals the published law's at the same compute.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from lit_algos.analysis.synthetic import log_linear_loss, synthetic_record
from lit_algos.studies.expand import expand
from lit_algos.studies.spec import load_study

SEED_NOISE = (-0.03, 0.0, 0.03)


def write_records(expansion, runs_dir, loss_for, flops_for=None, params_for=None, fpt_for=None):
    """One synthetic record per distinct spec, carrying the spec's config hash and seed (how the
    report finds a spec's record). ``loss_for(arm, size, seed)`` gives the loss as a function of FLOPs."""
    for spec in expansion.unique():
        arm, size = spec.tags["arm"], spec.tags["size"]
        grid = flops_for(arm, size, spec.seed) if flops_for else np.geomspace(1e12, 1e14, 12)
        # seeds differ by a 1e-6 shift in compute that every arm shares (paired ratios stay exact):
        # records with identical curves would be one run copied, which the analyses drop
        shifted = (lambda fn, u: lambda f: fn(f * u))(loss_for(arm, size, spec.seed), 1 + 1e-6 * spec.seed)
        rec = synthetic_record(f"{spec.name}-s{spec.seed}", recipe=spec.name, seed=spec.seed,
                               loss_fn=shifted, flops=list(grid),
                               flops_per_token=fpt_for(arm, size) if fpt_for else None,
                               config={"model": {"n_layer": {"mini": 2, "tiny": 4, "small": 6}.get(size, 2)}})  # fmt: skip
        rec.config_hash = expansion.config_hash(spec)
        if params_for:
            rec.params = params_for(arm, size)
        rec.save(runs_dir / rec.run_id / "record.json")


def _study(tmp_path, text):
    path = tmp_path / "toy.yaml"
    path.write_text(text)
    return load_study(str(path))


def _report(tmp_path, study, preset="p"):
    from lit_algos.reports.render import write_report

    out = tmp_path / "out"
    path = write_report(study, study.preset(preset), tmp_path / "runs", out)
    return path.read_text(), out


def _row(report: str, *starts: str) -> list[str]:
    """The cells of the first table row whose first cells are ``starts``."""
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[: len(starts)] == list(starts):
            return cells
    raise AssertionError(f"no row {starts} in the report")


def _num(cell: str) -> float:
    return float(re.match(r"[≥≤ ]*([-0-9.e+]+)", cell).group(1))


def _iv(cell: str) -> tuple[float, float]:
    lo, hi = re.search(r"\[([-0-9.e+]+), ([-0-9.e+]+)\]", cell).groups()
    return float(lo), float(hi)


def _pngs_ok(out, names):
    for name in names:
        png = out / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, name


CEG_STUDY = """\
sizes: {mini: {scale: scales/mini}, tiny: {scale: scales/tiny}}
experiments: {e: {kind: grid, arms: {ref: retro, new: modern}}}
presets: {p: {sizes: [mini, tiny], seeds: 3, tokens: {mini: 65536, tiny: 65536}}}
analyses:
  - {kind: curves, experiment: e}
  - {kind: ceg, experiment: e, reference: ref, paper: {values: {compact: {new: 1.5}}}}
"""


CEG3_STUDY = CEG_STUDY.replace(
    "sizes: {mini: {scale: scales/mini}, tiny: {scale: scales/tiny}}",
    "sizes: {mini: {scale: scales/mini}, tiny: {scale: scales/tiny}, small: {scale: scales/small}}",
).replace(
    "sizes: [mini, tiny], seeds: 3, tokens: {mini: 65536, tiny: 65536}",
    "sizes: [mini, tiny, small], seeds: 3, tokens: {mini: 65536, tiny: 65536, small: 65536}",
)
SIZE_SCALE = {"mini": 1.0, "tiny": 10.0, "small": 100.0}


def test_ceg_table_and_compute_dependence_match_the_truth(tmp_path):
    """CEG 2x, 4x, 8x at 1e14, 1e15, 1e16 FLOPs: ln CEG rises by ln 2 per decade of compute."""
    study = _study(tmp_path, CEG3_STUDY)
    k = {"mini": 2.0, "tiny": 4.0, "small": 8.0}

    def loss_for(arm, size, seed):
        shift = 0.01 * seed
        mult = k[size] * math.exp(SEED_NOISE[seed]) if arm == "new" else 1.0
        return lambda f: log_linear_loss(k=mult)(f) + shift

    def flops_for(arm, size, seed):
        return np.geomspace(1e12, 1e14, 12) * SIZE_SCALE[size]

    write_records(expand(study, "p"), tmp_path / "runs", loss_for, flops_for)
    report, out = _report(tmp_path, study)
    for size in ("mini", "tiny", "small"):
        row = _row(report, "new", size)
        assert _num(row[2]) == pytest.approx(k[size], rel=1e-3)
        lo, hi = _iv(row[2])
        assert lo < k[size] < hi and hi / lo < 1.5  # a real interval over 3 paired seeds
        assert row[3] == "3" and "paired" in row[4]
        assert row[-1] == "1.5"  # the paper column (compact scale) holds the study's cited value
    dep = _row(report, "new", "2")  # compute-dependence table: arm, CEG mini, tiny, small, slope, ...
    assert [_num(c) for c in dep[1:4]] == pytest.approx([2.0, 4.0, 8.0], rel=1e-3)
    assert _num(dep[4]) == pytest.approx(math.log(2) / math.log(10), rel=1e-3)
    assert dep[5] == "gain grows" and dep[6].startswith(
        "3 sizes (mini: 3 pairs, tiny: 3 pairs, small: 3 pairs)"
    )
    assert "Missing runs" not in report
    _pngs_ok(out, ["curves-e.png", "ceg-e.png"])
    assert (out / "results.json").is_file()


def test_missing_runs_are_listed_not_fatal(tmp_path):
    study = _study(tmp_path, CEG_STUDY)
    report, _ = _report(tmp_path, study)
    assert "Missing runs" in report and "no runs yet" in report


def test_a_censored_arm_is_reported_as_a_bound_not_a_number(tmp_path):
    # "new" (2x better per FLOP) has one seed first evaluated at 6e13 FLOPs, already below the
    # reference's final loss (reached at 5e13): that seed's cost is only an upper bound, so the CEG
    # is a lower bound. The table says so and gives no interval; the bar chart is still drawn.
    study = _study(tmp_path, CEG_STUDY)

    def loss_for(arm, size, seed):
        return log_linear_loss(k=2.0 if arm == "new" else 1.0)

    def flops_for(arm, size, seed):
        return np.geomspace(6e13 if (arm, seed) == ("new", 0) else 1e12, 1e14, 12)

    write_records(expand(study, "p"), tmp_path / "runs", loss_for, flops_for)
    report, out = _report(tmp_path, study)
    row = _row(report, "new", "mini")
    assert row[2].startswith("≥ ") and "[" not in row[2]
    assert row[4] == (
        "bound (>=; no interval), censored on the arm side: new_mini-s0 already at or below L* at its first evaluation"
    )
    assert "censored runs" in report
    dep = _row(report, "new", "≥ " + row[2][2:-1])  # compute dependence: no ratio from a bound
    assert dep[3] == "–" and "a bound" in dep[4] and dep[5].startswith("2 sizes (mini: ")
    _pngs_ok(out, ["ceg-e.png"])


ABLATION_STUDY = """\
sizes: {mini: {scale: scales/mini}}
experiments: {ab: {kind: ablation, ref: retro, new: modern, components: [position, norm]}}
presets: {p: {sizes: [mini], seeds: 3, tokens: {mini: 65536}}}
analyses: [{kind: attribution, experiment: ab, paper: {whole: 1.33, product_add_one: 3.55}}]
"""


def test_attribution_tables_match_the_truth(tmp_path):
    study = _study(tmp_path, ABLATION_STUDY)
    gain = {
        "retro": 1.0,
        "retro+position": 2.0,
        "retro+norm": 3.0,
        "modern": 6.0,
        "modern-position": 3.0,
        "modern-norm": 2.0,
    }

    def loss_for(arm, size, seed):
        return lambda f: log_linear_loss(k=gain[arm] * math.exp(SEED_NOISE[seed] * (arm != "retro")))(f)

    write_records(expand(study, "p"), tmp_path / "runs", loss_for)
    report, out = _report(tmp_path, study)
    pos, norm = _row(report, "position"), _row(report, "norm")
    assert _num(pos[1]) == pytest.approx(2.0, rel=0.02) and _num(norm[1]) == pytest.approx(3.0, rel=0.02)
    assert _num(pos[2]) == pytest.approx(2.0, rel=0.02) and _num(norm[2]) == pytest.approx(3.0, rel=0.02)
    assert _num(pos[3]) == pytest.approx(math.log(2) / math.log(6), abs=0.02)
    assert _num(norm[3]) == pytest.approx(math.log(3) / math.log(6), abs=0.02)
    whole = _row(report, "modern over retro (whole)")
    assert _num(whole[1]) == pytest.approx(6.0, rel=0.02) and whole[2] == "1.33"
    assert _num(_row(report, "product of add-one CEGs")[1]) == pytest.approx(6.0, rel=0.02)
    inter = _row(report, "interaction (whole / add-one product)")[1]
    assert _num(inter) == pytest.approx(1.0, abs=0.02)
    lo, hi = _iv(inter)
    assert lo < 1.0 < hi
    _pngs_ok(out, ["attribution-ab-mini.png"])


SCALING_STUDY = """\
sizes: {mini: {scale: scales/mini}, tiny: {scale: scales/tiny}, small: {scale: scales/small}}
experiments: {lad: {kind: grid, arms: {ref: retro, new: modern}}}
presets: {p: {sizes: [mini, tiny, small], seeds: 2, tokens: {mini: 65536, tiny: 65536, small: 65536}}}
analyses:
  - {kind: scaling, experiment: lad, pairs: [[ref, new]], E: 2.0, paper: {ref: {A: 30, alpha: 0.1}}}
  - {kind: allocation, experiment: lad, arm: ref}
"""

HOFFMANN = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
N_OF = {"mini": 1e7, "tiny": 3e8, "small": 1e10}


def test_scaling_fits_verdict_and_allocation_match_the_truth(tmp_path):
    from lit_algos.analysis.allocation import HoffmannFit

    study = _study(tmp_path, SCALING_STUDY)
    law = HoffmannFit(**HOFFMANN)
    end = {"mini": 1e12, "tiny": 1e14, "small": 1e16}

    def loss_for(arm, size, seed):
        if arm == "ref":  # Hoffmann's law along the run: D = C / 6N
            return lambda f: float(law.loss(N_OF[size], f / (6 * N_OF[size])))
        return lambda f: 2.0 + 30.0 * f**-0.12

    def flops_for(arm, size, seed):
        if arm == "ref":
            return 6 * N_OF[size] * np.geomspace(1e9, 1e12, 8) * (1 + 0.1 * seed)
        return np.geomspace(end[size] / 100, end[size] * (1 + 0.1 * seed), 8)

    write_records(expand(study, "p"), tmp_path / "runs", loss_for, flops_for,
                  params_for=lambda arm, size: {"total": int(N_OF[size]), "non_embedding": int(N_OF[size])},
                  fpt_for=lambda arm, size: 6 * N_OF[size] if arm == "ref" else None)  # fmt: skip
    report, out = _report(tmp_path, study)
    new = _row(report, "new", "6")
    assert _num(new[4]) == pytest.approx(0.12, rel=1e-3) and _num(new[3]) == pytest.approx(30.0, rel=1e-2)
    assert new[2] == "2 (fixed)" and _row(report, "ref")[6] == "0.1"  # the cited column
    allocation_rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith("|") and line.count("×") == 2
    ]
    assert len(allocation_rows) == 4
    for row in allocation_rows:  # the fitted law's multiplier = the published law's, at the same C
        assert _num(row[4]) == pytest.approx(_num(row[6]), rel=0.05)
    # inside the runs' N 1e7-1e10, D 1e9-1e12 at 6e18 and 6e20 FLOPs; outside at both ends of the range
    assert [row[5] == "no" for row in allocation_rows] == [False, True, True, False]
    assert "compute-optimal N = 1.21e+10 is outside the runs' 1e+07-1e+10" in allocation_rows[3][5]
    assert "No interval:" not in report
    _pngs_ok(out, ["fits-lad.png", "multiplier-lad.png"])


def test_an_allocation_fit_on_a_bound_says_why_it_has_no_interval(tmp_path, monkeypatch):
    """A fit whose E sits on its bound 0 (gundlach's retro fit, 2026-12-03) has no covariance, so no
    interval can be drawn: the report says why instead of printing bare multipliers."""
    import lit_algos.analysis.comparisons as comparisons
    from lit_algos.analysis.allocation import HoffmannFit

    fit_hoffmann = comparisons.fit_hoffmann

    def on_the_bound(*args, **kwargs):
        fit = fit_hoffmann(*args, **kwargs)
        fit.E, fit.cov = 0.0, None  # what least_squares returns with E's bound active
        return fit

    monkeypatch.setattr(comparisons, "fit_hoffmann", on_the_bound)  # where the report's fit is called
    study = _study(tmp_path, SCALING_STUDY)
    law = HoffmannFit(**HOFFMANN)

    def loss_for(arm, size, seed):
        return lambda f: float(law.loss(N_OF[size], f / (6 * N_OF[size])))

    def flops_for(arm, size, seed):
        return 6 * N_OF[size] * np.geomspace(1e9, 1e12, 8) * (1 + 0.1 * seed)

    write_records(expand(study, "p"), tmp_path / "runs", loss_for, flops_for,
                  params_for=lambda arm, size: {"total": int(N_OF[size]), "non_embedding": int(N_OF[size])},
                  fpt_for=lambda arm, size: 6 * N_OF[size])  # fmt: skip
    report, _ = _report(tmp_path, study)
    assert "No interval: the fit sits on a bound of its parameters (E = 0, at its lower bound 0)" in report


def test_scaling_verdict_recovers_a_growing_gain(tmp_path):
    study = _study(tmp_path, SCALING_STUDY.replace("- {kind: allocation, experiment: lad, arm: ref}", ""))
    end = {"mini": 1e12, "tiny": 1e14, "small": 1e16}

    def loss_for(arm, size, seed):
        alpha = 0.1 if arm == "ref" else 0.12
        return lambda f: 2.0 + 30.0 * f**-alpha * (1 + 1e-4 * (seed - 0.5))

    def flops_for(arm, size, seed):
        return np.geomspace(end[size] / 100, end[size] * (1 + 0.1 * seed), 8)

    write_records(expand(study, "p"), tmp_path / "runs", loss_for, flops_for)
    report, _ = _report(tmp_path, study)
    verdict = _row(report, "ref -> new")
    assert _num(verdict[4]) == pytest.approx(0.2, abs=0.01)
    assert verdict[5].startswith("gain grows (other sign")
    assert _num(verdict[2]) == pytest.approx(
        end["mini"] ** 0.2, rel=0.05
    )  # M = C^0.2 at the lowest final point
    assert verdict[6] == "3 model sizes x 2 seeds, E fixed at 2 (assumed), each run's final point"
    assert "(from the cited fits)" not in verdict[7] and verdict[7] == "n/a"  # only ref has cited values
    # the law-free view: new reaches ref's final loss before its own first evaluation at every
    # size (its grid starts at 1/100 of the budget), so each CEG is a bound and no trend is drawn
    rows = [line for line in report.splitlines() if line.startswith("| ref -> new |")]
    law_free = [c.strip() for c in rows[-1].strip("|").split("|")]
    assert all(c.startswith("≥ ") for c in law_free[1:4]) and law_free[-1].startswith("inconclusive")


def test_an_arm_on_a_plateau_gets_no_fit_and_an_inconclusive_verdict(tmp_path):
    study = _study(tmp_path, SCALING_STUDY.replace("- {kind: allocation, experiment: lad, arm: ref}", "").replace(
        "E: 2.0, ", ""))  # fmt: skip
    end = {"mini": 1e12, "tiny": 1e14, "small": 1e16}
    flat = {"mini": 6.06, "tiny": 6.07, "small": 6.08}  # the ref arm never leaves a plateau

    def loss_for(arm, size, seed):
        if arm == "ref":
            return lambda f: flat[size] + 0.002 * seed + 1e-6 * math.log(f)
        return lambda f: 2.0 + 30.0 * f**-0.12 * (1 + 1e-4 * (seed - 0.5))

    def flops_for(arm, size, seed):
        return np.geomspace(end[size] / 100, end[size] * (1 + 0.1 * seed), 8)

    write_records(expand(study, "p"), tmp_path / "runs", loss_for, flops_for)
    report, _ = _report(tmp_path, study)
    assert "ref: no fit (the loss does not fall with compute" in report
    assert _row(report, "ref", "6")[2:5] == ["–", "–", "–"]
    assert _num(_row(report, "new", "6")[4]) == pytest.approx(0.12, rel=0.05)
    assert _row(report, "ref -> new")[5] == "inconclusive (no fit)"


def test_frontier_points_recover_the_law_where_final_points_cannot(tmp_path):
    """Mini's and tiny's evaluations lie on L = 2 + 30 C^-alpha (alpha 0.1 for ref, 0.12 for new);
    small's lie on it at a hundredth of their compute (a size that wastes compute), so small ends
    where mini does: the finals do not fall with compute (no fit), while the frontier of all
    evaluations is mini's and tiny's, the law itself (slope 0.12/0.1 - 1 = 0.2)."""
    base = SCALING_STUDY.replace("- {kind: allocation, experiment: lad, arm: ref}", "")
    end = {"mini": 1e12, "tiny": 1e13, "small": 1e14}

    def loss_for(arm, size, seed):
        alpha = 0.1 if arm == "ref" else 0.12

        def law(f):
            f = f / 100 if size == "small" else f
            return 2.0 + 30.0 * f**-alpha * (1 + 1e-4 * (seed - 0.5))

        return law

    def flops_for(arm, size, seed):
        return np.geomspace(end[size] / 100, end[size], 8)

    results = {}
    for mode in ("final", "frontier"):
        (tmp_path / mode).mkdir()
        study = _study(tmp_path / mode, base.replace("E: 2.0,", f"E: 2.0, points: {mode},"))
        write_records(expand(study, "p"), tmp_path / mode / "runs", loss_for, flops_for)
        results[mode], _ = _report(tmp_path / mode, study)
    assert "ref: no fit (the loss does not fall with compute" in results["final"]
    report = results["frontier"]
    assert "the frontier of every evaluation" in report
    assert _num(_row(report, "new")[4]) == pytest.approx(0.12, rel=0.01)
    assert _num(_row(report, "ref")[4]) == pytest.approx(0.1, rel=0.01)
    verdict = _row(report, "ref -> new")
    assert _num(verdict[4]) == pytest.approx(0.2, abs=0.01) and verdict[5].startswith("gain grows")


def test_a_pair_whose_multiplier_is_infinite_still_gets_a_report_and_plots(tmp_path):
    """The new arm ends below the reference's fitted floor E, so C_ref(L_new) is infinite at every
    C: no curve can be drawn on log axes (this crashed savefig), and the verdict has no slope."""
    study = _study(tmp_path, SCALING_STUDY.replace("- {kind: allocation, experiment: lad, arm: ref}", "").replace(
        "E: 2.0, ", ""))  # fmt: skip
    end = {"mini": 1e12, "tiny": 1e14, "small": 1e16}

    def loss_for(arm, size, seed):
        floor, amp, alpha = (5.0, 30.0, 0.1) if arm == "ref" else (2.0, 30.0, 0.12)
        return lambda f: floor + amp * f**-alpha * (1 + 1e-4 * (seed - 0.5))

    def flops_for(arm, size, seed):
        return np.geomspace(end[size] / 100, end[size] * (1 + 0.1 * seed), 8)

    write_records(expand(study, "p"), tmp_path / "runs", loss_for, flops_for)
    report, out = _report(tmp_path, study)
    assert _num(_row(report, "ref", "6")[2]) == pytest.approx(5.0, abs=0.05)
    verdict = _row(report, "ref -> new")
    assert verdict[3] in ("inf", "–") and verdict[5].startswith("inconclusive"), verdict
    _pngs_ok(out, ["fits-lad.png", "multiplier-lad.png"])


def test_wandb_logs_the_tables_and_plots_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from lit_algos.reports.render import write_report

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    study = _study(
        tmp_path, CEG_STUDY.replace("sizes: [mini, tiny]", "sizes: [mini]").replace("seeds: 3", "seeds: 2")
    )

    def loss_for(arm, size, seed):
        return log_linear_loss(k=2.0 * math.exp(SEED_NOISE[seed]) if arm == "new" else 1.0)

    write_records(expand(study, "p"), tmp_path / "runs", loss_for)
    out = tmp_path / "out"
    write_report(study, study.preset("p"), tmp_path / "runs", out, wandb=True)
    from .test_wandb_logging import _wandb_file

    _wandb_file(out, "wandb/offline-run-*/run-*.wandb")  # W&B's service finishes the file in the background
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0
    assert (out / "report.md").is_file()
    # Tables hold numbers where the report shows numbers: sortable and chartable in W&B.
    tables = [json.loads(p.read_text()) for p in runs[0].parent.glob("files/media/table/**/*.table.json")]
    assert tables
    numeric = [
        c
        for t in tables
        for c in t["columns"]
        if any(isinstance(row[t["columns"].index(c)], float) for row in t["data"])
    ]
    assert any(c.startswith("CEG") for c in numeric) and any(c.endswith(" low") for c in numeric)


def test_ceg_plot_draws_intervals_as_points_around_1x_with_plain_log_ticks():
    from matplotlib.container import ErrorbarContainer
    from matplotlib.patches import Rectangle

    from lit_algos.reports.plots import ceg_figure

    data = {
        "modern": {"tiny": {"ceg": {"value": 2.1, "low": 1.7, "high": 2.6}}},
        "rope": {"tiny": {"ceg": {"value": 1.04, "low": 0.95, "high": 1.12}}},
        "flash": {"tiny": {"ceg": {"value": 1.3, "bound": ">="}}},
    }
    ax = ceg_figure(data, ["tiny"], "retro").axes[0]
    assert ax.get_yscale() == "log"
    assert not [
        p for p in ax.patches if isinstance(p, Rectangle)
    ]  # no bars: a bar's length means nothing here
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    point_line = bars.lines[0]
    assert list(point_line.get_ydata()) == [2.1, 1.04]  # the censored one is a marker, not an interval
    assert any(list(line.get_ydata()) == [1.0, 1.0] for line in ax.lines)  # the 1x line
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "1×" in labels and "2×" in labels and not any("10^" in t or "^{" in t or "$" in t for t in labels)
    lo, hi = ax.get_ylim()
    assert lo < 0.95 and hi > 2.6
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "tiny: bound (≥, censored)" in legend and "1× (no gain)" in legend
