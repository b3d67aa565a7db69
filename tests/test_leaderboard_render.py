"""Rendering the board (lit_algos.leaderboard.render): ranks, baseline, CEG split, Markdown, PNGs.

Known answers: each entry declares 1/k of the baseline's FLOPs and runs at the FLOP/s given, on
one host whose reference (the baseline's declared run) takes 1e6 s; so the same-machine speedup
is k x (FLOP/s / 1e9): base 1, algo 2, sys 4.8; CEG at the target is k; throughput FLOP/s / 1e9.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from lit_algos.analysis.synthetic import synthetic_reference, synthetic_seeds, synthetic_tracks_yaml
from lit_algos.leaderboard.entries import build_entry, load_entries
from lit_algos.leaderboard.render import baseline_entry, board_rows, preview_row, rich_table, write_board
from lit_algos.leaderboard.submit import submit
from lit_algos.leaderboard.tracks import load_tracks

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
# name -> (compute multiplier k, FLOP/s): "sys" is fastest in time, "algo" needs the fewest FLOPs
ENTRIES = {"base": (1.0, 1e9), "algo": (2.0, 1e9), "sys": (1.2, 4e9)}


def make_board(root: Path, baseline: str | None = None, time_scale: float = 1.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tracks.yaml").write_text(synthetic_tracks_yaml(baseline=baseline))
    for i, (name, (k, fps)) in enumerate(ENTRIES.items()):
        submit(
            synthetic_seeds(name, k=k, flops_per_second=fps / time_scale, declare_shorter=True),
            "toy",
            f"{name} entry",
            ["ada"],
            name=name,
            leaderboard_dir=root,
            plots=False,
            now=T0 + timedelta(days=i),
            reference=synthetic_reference(1e6 * time_scale),
        )
    submit(
        synthetic_seeds("solo", k=3.0, seeds=(0,)),
        "toy",
        "one seed",
        ["bob"],
        name="solo",
        leaderboard_dir=root,
        plots=False,
        now=T0 + timedelta(days=9),
        reference=synthetic_reference(1e6),
    )
    return root


def table_order(markdown: str, heading: str) -> list[tuple[str, str]]:
    """(rank, entry id) rows of the table under ``heading``."""
    section = markdown.split(heading, 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    return [(cells[1].strip(), cells[-2].strip()) for cells in (r.split("|") for r in rows)]


def test_rows_rank_by_time_and_by_flops_with_the_ceg_split(tmp_path):
    root = make_board(tmp_path / "lb")
    track = load_tracks(root)["toy"]
    entries = load_entries(root)["toy"]
    assert baseline_entry(track, entries).id == "base"  # baseline null: the earliest entry
    rows = {r.entry.id: r for r in board_rows(track, entries)}
    assert (rows["sys"].rank_time, rows["algo"].rank_time, rows["base"].rank_time) == (1, 2, 3)
    assert (rows["algo"].rank_flops, rows["sys"].rank_flops, rows["base"].rank_flops) == (1, 2, 3)
    assert rows["solo"].rank_time is None  # provisional: unranked
    assert rows["algo"].ceg == pytest.approx(2.0) and rows["algo"].throughput == pytest.approx(1.0)
    assert rows["sys"].ceg == pytest.approx(1.2)
    assert rows["sys"].speedup == pytest.approx(4.8) and rows["sys"].throughput == pytest.approx(4.0)
    assert rows["algo"].speedup == pytest.approx(2.0) and rows["base"].speedup == pytest.approx(1.0)
    assert rows["base"].is_baseline and rows["base"].ceg == pytest.approx(1.0)
    # the identity is checked, not assumed: speedup at the target against CEG x measured throughput
    assert rows["sys"].figures.identity["relative_gap"] == pytest.approx(0.0, abs=1e-9)
    assert rows["sys"].figures.ceg.low < 1.2 < rows["sys"].figures.ceg.high  # an interval over seeds


def test_a_slower_machine_with_its_own_reference_ranks_level(tmp_path):
    """Every run 1.5x slower and the reference measured 1.5x slower: the same ranks and speedups."""
    fast = {
        r.entry.id: r
        for r in board_rows(
            load_tracks(make_board(tmp_path / "a"))["toy"], load_entries(tmp_path / "a")["toy"]
        )
    }
    root = make_board(tmp_path / "b", time_scale=1.5)  # every run 1.5x slower, its reference too
    slow = {r.entry.id: r for r in board_rows(load_tracks(root)["toy"], load_entries(root)["toy"])}
    for name in ENTRIES:
        assert (slow[name].rank_time, slow[name].rank_flops) == (fast[name].rank_time, fast[name].rank_flops)
        assert slow[name].speedup == pytest.approx(fast[name].speedup)
        assert slow[name].time.value == pytest.approx(1.5 * fast[name].time.value)  # raw seconds shown beside


def test_named_baseline_entry_is_used(tmp_path):
    root = make_board(tmp_path / "lb", baseline="algo")
    track = load_tracks(root)["toy"]
    rows = {r.entry.id: r for r in board_rows(track, load_entries(root)["toy"])}
    assert rows["algo"].is_baseline and rows["algo"].ceg == pytest.approx(1.0)
    assert rows["base"].ceg == pytest.approx(0.5)


def test_markdown_board_lists_ranks_in_order_and_links_plots(tmp_path):
    root = make_board(tmp_path / "lb")
    write_board(root, plots=True)
    markdown = (root / "README.md").read_text()
    assert table_order(markdown, "### Ranked by time (speedup over the same-machine reference)") == [
        ("1", "sys"),
        ("2", "algo"),
        ("3", "base"),
        ("–", "solo"),
    ]
    assert table_order(markdown, "### Ranked by FLOPs of the declared run") == [
        ("1", "algo"),
        ("2", "sys"),
        ("3", "base"),
        ("–", "solo"),
    ]
    assert "(provisional)" in markdown and "(baseline)" in markdown
    assert "4.8× vs 4.8× (ok)" in markdown  # speedup at the target vs FLOP CEG x measured throughput
    assert "n=3, p=" in markdown  # seeds and p-value of each entry
    assert "## Track `closed`" in markdown and "not calibrated yet" in markdown
    for stem in ("loss-vs-flops", "loss-vs-time"):
        png = root / "plots" / f"toy-{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/toy-{stem}.png)" in markdown
    assert re.search(r"\| 1 \| 4\.8× \[[\d.]+, [\d.]+\] \| [\d,.]+ \[", markdown)  # speedup with its interval


def test_terminal_table_renders_every_entry(tmp_path):
    root = make_board(tmp_path / "lb")
    track = load_tracks(root)["toy"]
    console = Console(width=200, record=True)
    console.print(rich_table(track, board_rows(track, load_entries(root)["toy"])))
    text = console.export_text()
    for name in ("base", "algo", "sys", "solo"):
        assert f"{name}: {name if name != 'solo' else 'one seed'}" in text


def test_preview_of_an_unsubmitted_entry(tmp_path):
    root = make_board(tmp_path / "lb")
    before = sorted(p.name for p in (root / "entries" / "toy").iterdir())
    candidate = build_entry(
        synthetic_seeds("faster", k=2.5, declare_shorter=True),
        load_tracks(root)["toy"],
        "candidate",
        ["eve"],
        reference=synthetic_reference(1e6),
    )
    row = preview_row(candidate, root)
    assert (row.rank_time, row.rank_flops) == (2, 1) and row.ceg == pytest.approx(2.5)
    assert sorted(p.name for p in (root / "entries" / "toy").iterdir()) == before
