"""Analysis tables as data (lit_algos.analysis.tables) built from the same objects as --json
(lit_algos.analysis.comparisons), on synthetic records with known CEGs."""

from __future__ import annotations

import pytest

from lit_algos.analysis import tables
from lit_algos.analysis.comparisons import ceg_with_attribution
from lit_algos.analysis.synthetic import log_linear_loss, synthetic_record, synthetic_seeds


def _runs(recipe: str, k: float):
    return [synthetic_record(f"{recipe}-s0", recipe=recipe, seed=0, loss_fn=log_linear_loss(k=k))]


@pytest.fixture(scope="module")
def result():
    refs, news = synthetic_seeds("retro", k=1.0), synthetic_seeds("modern", k=3.0)
    return ceg_with_attribution(
        refs,
        news,
        add={"rope": _runs("retro+rope", 1.5), "norm": _runs("retro+norm", 2.0)},
        remove={"rope": _runs("modern-rope", 2.0), "norm": _runs("modern-norm", 1.5)},
        n_resamples=200,
    )


def test_ceg_table_shows_the_numbers_of_the_json(result):
    data = result.to_dict()
    table = tables.ceg_table(result.report)
    flops_row = next(r for r in table.rows if r[2] == "FLOPs")
    assert data["results"][0]["ceg"]["flops"]["value"] == pytest.approx(3.0, rel=1e-6)
    assert flops_row[3] == "3×"
    assert table.to_dict()["rows"] == table.rows
    rich = table.to_rich()
    assert (
        rich.title == table.title
        and len(rich.columns) == len(table.columns)
        and rich.row_count == len(table.rows)
    )


def test_attribution_table_and_ranking(result):
    attr = result.attribution
    ranked = tables.ranking(attr)
    assert [c for c, _ in ranked] == ["norm", "rope"]  # add-one CEGs 2.0 and 1.5
    assert [v for _, v in ranked] == pytest.approx([2.0, 1.5], rel=1e-3)
    table = tables.attribution_table(attr)
    assert [r[0] for r in table.rows[:2]] == ["rope", "norm"]
    assert all(len(r) == len(table.columns) for r in table.rows)
    assert table.rows[-2][0] == "product of parts" and table.rows[-2][1] == tables.fmt(attr.product_add_one)


def test_fmt():
    assert tables.fmt(None) == "–" and tables.fmt(float("nan")) == "–" and tables.fmt(1234.5) == "1.23e+03"
