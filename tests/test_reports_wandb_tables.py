"""Analysis results in W&B: display cells become numbers, and `ceg --wandb` logs one run with them."""

from __future__ import annotations

import json

import pytest

from lit_algos.reports.wandb_tables import numeric_table, parse_cell


def test_display_cells_become_numbers_intervals_and_bounds():
    assert parse_cell("2.01× [1.9, 2.1]") == {"value": 2.01, "low": 1.9, "high": 2.1}
    assert parse_cell("≥ 1e+03×") == {"value": 1000.0, "bound": "≥"}
    assert parse_cell("[0.5, 0.8]") == {"low": 0.5, "high": 0.8}
    assert parse_cell("12,345") == {"value": 12345.0} and parse_cell("35.7%") == {"value": 35.7}
    assert parse_cell("–") == {} and parse_cell("gain grows") is None
    columns, rows = numeric_table(
        ["arm", "CEG", "n"], [["rope", "1.5× [1.2, 1.9]", "3"], ["alibi", "≤ 0.5×", "3"], ["flash", "–", "1"]]
    )
    assert columns == ["arm", "CEG", "CEG low", "CEG high", "CEG bound", "n"]
    assert rows == [
        ["rope", 1.5, 1.2, 1.9, "", 3.0], ["alibi", 0.5, None, None, "≤", 3.0], ["flash", None, None, None, "", 1.0]
    ]  # fmt: skip
    # An unbounded interval end (undefined parameter draws) reads as infinite, and is an empty cell in W&B.
    assert parse_cell("1.22 [0, ∞]") == {"value": 1.22, "low": 0.0, "high": float("inf")}
    assert parse_cell("-0.107 [-∞, ∞]") == {"value": -0.107, "low": float("-inf"), "high": float("inf")}
    assert numeric_table(["M"], [["1.22 [0, ∞]"]]) == (["M", "M low", "M high"], [[1.22, 0.0, None]])
    # A column with any text that is not a number stays text (W&B columns have one type).
    assert numeric_table(["x"], [["1"], ["many"]]) == (["x"], [["1"], ["many"]])


def test_ceg_wandb_logs_numeric_tables_and_plots_to_one_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb")
    from lit_algos.analysis.synthetic import synthetic_seeds
    from lit_algos.cli import main

    for var in ("WANDB_API_KEY", "WANDB_DISABLED", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    root = tmp_path / "runs"
    for recipe, k in (("retro", 1.0), ("modern", 2.5)):
        for rec in synthetic_seeds(recipe, k=k):
            rec.save(root / rec.run_id / "record.json")
    assert main(["ceg", "--ref", "retro", "--new", "modern", "--runs-dir", str(root), "--wandb"]) == 0
    from .test_wandb_logging import _wandb_file

    run_file = _wandb_file(
        root, "wandb/offline-run-*/run-*.wandb"
    )  # wait for W&B's service to finish writing (the run is root/wandb/...)
    (run_dir,) = (root / "wandb").glob("offline-run-*")
    (table_file,) = run_dir.glob("files/media/table/tables/ceg_*.table.json")
    table = json.loads(table_file.read_text())
    columns = table["columns"]
    assert {"CEG (geo. mean)", "L*"} <= set(columns) and "95% CI low" in columns
    ceg = [row[columns.index("CEG (geo. mean)")] for row in table["data"]]
    assert all(isinstance(v, float) for v in ceg) and 2.0 < ceg[0] < 3.2  # numbers: sortable, chartable
    images = {p.name.split("_")[0] for p in run_dir.glob("files/media/images/plots/*.png")}
    assert images == {"ceg.png", "loss-curves.png"}
    from lit_algos.training.wandb_file import read_summary

    summary = read_summary(run_file)
    assert summary["ceg/flops"] == pytest.approx(
        ceg[0], rel=5e-3
    )  # full precision beside the table's 3 digits
