"""Rendering the board: ranked rows, the Markdown README, the terminal table and the plots.

Ranking: entries that passed the t-test are ranked by mean time to target (and, in a second
table, by mean FLOPs to target); provisional entries (too few seeds) are listed after them,
unranked. The baseline of a track is the entry named by its ``baseline`` field; when that is
null (or names no entry) it is the earliest entry by submission date. CEG over the baseline
is the ratio of mean FLOPs to target; the speedup is the ratio of mean time to target, and
speedup = CEG x throughput ratio splits it into its algorithmic and systems parts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from lit_algos.analysis.stats import Estimate
from lit_algos.leaderboard.entries import Entry, board_lock, load_entries
from lit_algos.leaderboard.tracks import Track, load_tracks
from lit_algos.utils.io import atomic_write_bytes, atomic_write_text

PLOT_KINDS = {
    "flops": ("loss-vs-flops", "training FLOPs"),
    "train_seconds": ("loss-vs-time", "training time (s)"),
}
TOP_PLOTTED = 5


@dataclass
class BoardRow:
    entry: Entry
    rank_time: int | None  # None: provisional, unranked
    rank_flops: int | None
    time: Estimate
    flops: Estimate
    tokens: Estimate
    loss: float
    bpb: float | None
    ceg: float | None  # baseline FLOPs to target / this entry's
    speedup: float | None  # baseline time to target / this entry's
    throughput: float | None  # speedup / ceg: the systems part
    is_baseline: bool

    def to_dict(self) -> dict:
        return {
            "entry": self.entry.id,
            "rank_time": self.rank_time,
            "rank_flops": self.rank_flops,
            "time": self.time.to_dict(),
            "flops": self.flops.to_dict(),
            "tokens": self.tokens.to_dict(),
            "val_loss": self.loss,
            "val_bpb": self.bpb,
            "ceg": self.ceg,
            "speedup": self.speedup,
            "throughput_ratio": self.throughput,
            "baseline": self.is_baseline,
            "provisional": self.entry.provisional,
            "hardware": self.entry.hardware,
            "description": self.entry.description,
            "date": self.entry.date,
            "commit": self.entry.commit,
            "contributors": self.entry.contributors,
        }


def _estimate(summary: dict, unit: str) -> Estimate:
    s = summary.get(unit) or {}
    return Estimate(s.get("value"), s.get("low"), s.get("high"), s.get("n", 0))


def baseline_entry(track: Track, entries: list[Entry]) -> Entry | None:
    """The entry named by ``track.baseline``, else (null or not found) the earliest entry."""
    named = [e for e in entries if e.id == track.baseline]
    if named:
        return named[0]
    return min(entries, key=lambda e: (e.date, e.id)) if entries else None


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num and den else None


def board_rows(track: Track, entries: list[Entry]) -> list[BoardRow]:
    """Rows ordered by time rank (ranked entries first, then provisional ones)."""
    base = baseline_entry(track, entries)
    base_time = _estimate(base.summary, "train_seconds").value if base else None
    base_flops = _estimate(base.summary, "flops").value if base else None
    rows = []
    for e in entries:
        time, flops = _estimate(e.summary, "train_seconds"), _estimate(e.summary, "flops")
        ceg, speedup = _ratio(base_flops, flops.value), _ratio(base_time, time.value)
        rows.append(
            BoardRow(
                entry=e,
                rank_time=None,
                rank_flops=None,
                time=time,
                flops=flops,
                tokens=_estimate(e.summary, "tokens"),
                loss=e.statistics.get("mean_final_loss"),
                bpb=(e.summary.get("final_bpb") or {}).get("value"),
                ceg=ceg,
                speedup=speedup,
                throughput=_ratio(speedup, ceg),
                is_baseline=base is e,
            )
        )

    def key(unit: str):
        return lambda r: (
            getattr(r, unit).value if getattr(r, unit).value is not None else float("inf"),
            r.entry.date,
        )

    ranked = [r for r in rows if not r.entry.provisional]
    for rank, row in enumerate(sorted(ranked, key=key("flops")), start=1):
        row.rank_flops = rank
    for rank, row in enumerate(sorted(ranked, key=key("time")), start=1):
        row.rank_time = rank
    return sorted(ranked, key=key("time")) + sorted([r for r in rows if r.entry.provisional], key=key("time"))


# ---- formatting ----------------------------------------------------------------------------
def fmt_num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if unit == "tokens":
        for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.3g}{suffix}"
        return f"{value:.0f}"
    if unit == "flops":
        mantissa, exp = f"{value:.3e}".split("e")
        return f"{float(mantissa):.3g}e{int(exp)}"
    if unit == "seconds" and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_estimate(est: Estimate, unit: str = "") -> str:
    text = fmt_num(est.value, unit)
    if est.low is not None and est.high is not None:
        text += f" [{fmt_num(est.low, unit)}, {fmt_num(est.high, unit)}]"
    return text


def fmt_speedup(row: BoardRow) -> str:
    if row.speedup is None or row.ceg is None:
        return "–"
    return f"{row.speedup:.3g}× = {row.ceg:.3g} × {row.throughput:.3g}"


def row_cells(row: BoardRow, rank: int | None) -> list[str]:
    e = row.entry
    tags = (" (baseline)" if row.is_baseline else "") + (" (provisional)" if e.provisional else "")
    return [
        str(rank) if rank is not None else "–",
        fmt_estimate(row.time, "seconds"),
        fmt_estimate(row.flops, "flops"),
        fmt_estimate(row.tokens, "tokens"),
        f"{row.loss:.4f}" if row.loss is not None else "–",
        f"{row.bpb:.4f}" if row.bpb is not None else "–",
        f"{row.ceg:.3g}×" if row.ceg is not None else "–",
        fmt_speedup(row),
        e.hardware,
        e.description + tags,
        e.date[:10],
        (e.commit or "–")[:10] + (" (dirty)" if e.dirty else ""),
        ", ".join(e.contributors),
        e.id,
    ]


HEADERS = [
    "#",
    "Time to target (s) [95% CI]",
    "FLOPs to target",
    "Tokens to target",
    "Val loss",
    "BPB",
    "CEG vs baseline",
    "Speedup = CEG × throughput",
    "Hardware",
    "Description",
    "Date",
    "Commit",
    "Contributors",
    "Entry",
]


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _md_table(rows: list[BoardRow], by: str) -> list[str]:
    ordered = (
        rows
        if by == "time"
        else (
            sorted([r for r in rows if r.rank_flops is not None], key=lambda r: r.rank_flops)
            + [r for r in rows if r.rank_flops is None]
        )
    )
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in ordered:
        rank = row.rank_time if by == "time" else row.rank_flops
        lines.append("| " + " | ".join(_md_cell(c) for c in row_cells(row, rank)) + " |")
    return lines


RULES_TEXT = """\
How the board works:

- An entry is the run records of all its seeds, submitted with `lit-algos submit RUNS... --track TRACK
  --description ... --contributors ...`; it lives in `entries/<track>/<entry-id>.json`.
- A submission is accepted only if every run is complete, was evaluated on the track's validation set
  (same `val_fingerprint`) and trained for the track's target loss, and all runs are distinct seeds of one
  recipe. A one-sided t-test must show the mean final validation loss below the target with p < alpha when
  there are at least the track's minimum number of seeds; with fewer seeds the entry is *provisional*
  (unranked, listed last) and its mean must be below the target.
- Time, FLOPs and tokens to target are means over seeds with 95% t-intervals; a run's cost is interpolated
  at the target (a run that never reached it counts with its whole spend). Time is the training clock
  (steps and data loading; compilation and evaluation excluded).
- The baseline is the entry named by the track's `baseline` field, or the earliest entry when it is null.
  CEG = baseline FLOPs to target / entry FLOPs to target; speedup = baseline time / entry time, split as
  speedup = CEG × throughput ratio (algorithmic × systems).
"""


def render_markdown(
    tracks: dict[str, Track], entries: dict[str, list[Entry]], plots_dir: Path | None = None
) -> str:
    lines = [
        "# lit_algos speedrun leaderboard",
        "",
        "<!-- Generated from entries/ by `lit-algos leaderboard` / `lit-algos submit`; do not edit by hand. -->",
        "",
        RULES_TEXT,
    ]
    for name, track in tracks.items():
        track_entries = entries.get(name, [])
        lines += [f"## Track `{name}`", "", track.description.strip(), ""]
        status = "" if track.calibrated else " **(not calibrated yet: submissions are closed)**"
        target = track.target_loss if track.target_loss is not None else "not set"
        lines += [
            f"- Target: validation loss ≤ {target}{status}",
            f"- Data: corpus `{track.corpus}`, tokenizer `{track.tokenizer}`, {track.val_tokens:,} validation tokens, "
            f"fingerprint `{track.val_fingerprint or 'not set'}`",
            f"- Hardware class: {track.hardware_class}",
            f"- Significance: one-sided t-test, p < {track.alpha} with at least {track.min_seeds_for_significance} seeds",
            f"- Baseline: {track.baseline or 'the earliest entry'}",
        ]
        lines += [f"- {rule}" for rule in track.rules]
        lines.append("")
        if not track_entries:
            lines += ["No entries yet.", ""]
            continue
        rows = board_rows(track, track_entries)
        lines += ["### Ranked by time to target", "", *_md_table(rows, "time"), ""]
        lines += ["### Ranked by FLOPs to target", "", *_md_table(rows, "flops"), ""]
        if plots_dir is not None:
            for stem, label in PLOT_KINDS.values():
                png = plots_dir / f"{name}-{stem}.png"
                if png.is_file():
                    lines.append(f"![{name}: validation loss against {label}](plots/{png.name})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_plots(track: Track, entries: list[Entry], plots_dir: Path, top: int = TOP_PLOTTED) -> list[Path]:
    """PNGs of validation loss against FLOPs and against time for the top entries and the baseline."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = board_rows(track, entries)
    chosen = rows[:top] + [r for r in rows[top:] if r.is_baseline]
    written = []
    for unit, (stem, label) in PLOT_KINDS.items():
        fig = Figure(figsize=(7, 4.5), dpi=110)
        FigureCanvasAgg(fig)  # the Agg canvas: no display, no global backend switch
        ax = fig.add_subplot()
        for i, row in enumerate(chosen):
            color = f"C{i % 10}"
            rank = row.rank_time if row.rank_time is not None else "prov."
            tag = " (baseline)" if row.is_baseline else ""
            for j, run in enumerate(row.entry.runs):
                xs = [getattr(p, unit) for p in run.curve if getattr(p, unit) > 0]
                ys = [p.val_loss for p in run.curve if getattr(p, unit) > 0]
                ax.plot(
                    xs,
                    ys,
                    color=color,
                    lw=1.2,
                    alpha=0.8,
                    label=f"#{rank} {row.entry.id}{tag}" if j == 0 else None,
                )
        if track.target_loss is not None:
            ax.axhline(track.target_loss, color="black", ls="--", lw=0.8, label=f"target {track.target_loss}")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("validation loss")
        ax.set_title(f"{track.name}: validation loss against {label}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        written.append(atomic_write_bytes(plots_dir / f"{track.name}-{stem}.png", buf.getvalue()))
    return written


def regenerate_board(leaderboard_dir: Path, plots: bool = True) -> Path:
    """Rewrite README.md (and the plots) from the entries. Callers hold ``board_lock``."""
    tracks = load_tracks(leaderboard_dir)
    entries = load_entries(leaderboard_dir)
    plots_dir = leaderboard_dir / "plots"
    if plots:
        for name, track in tracks.items():
            if entries.get(name):
                render_plots(track, entries[name], plots_dir)
    return atomic_write_text(leaderboard_dir / "README.md", render_markdown(tracks, entries, plots_dir))


def preview_row(entry: Entry, leaderboard_dir: Path) -> BoardRow:
    """Where an unsubmitted entry (``entries.build_entry``) would stand among the track's entries."""
    track = load_tracks(leaderboard_dir)[entry.track]
    rows = board_rows(track, [*load_entries(leaderboard_dir, entry.track).get(entry.track, []), entry])
    return next(r for r in rows if r.entry is entry)


def write_board(leaderboard_dir: Path, plots: bool = True) -> Path:
    with board_lock(leaderboard_dir):
        return regenerate_board(leaderboard_dir, plots=plots)


def rich_table(track: Track, rows: list[BoardRow]):
    """The terminal table of one track in time-rank order; who/when/what share the last column."""
    from rich.table import Table

    target = track.target_loss if track.target_loss is not None else "not set"
    table = Table(title=f"{track.name}: reach val loss ≤ {target} on {track.hardware_class}", show_lines=True)
    for header in ("#", "#F", "time (s)", "FLOPs", "tokens", "loss\nbpb", "CEG", "speedup\n= CEG × thr."):
        table.add_column(header)
    table.add_column("entry\nhardware · date · commit · by", overflow="fold")
    for row in rows:
        c = row_cells(row, row.rank_time)
        e = row.entry

        def two_lines(est: Estimate, unit: str = "") -> str:
            return fmt_num(est.value, unit) + (
                f"\n[{fmt_num(est.low, unit)}, {fmt_num(est.high, unit)}]" if est.low is not None else ""
            )

        speedup = (
            f"{row.speedup:.3g}×\n= {row.ceg:.3g} × {row.throughput:.3g}" if row.speedup and row.ceg else "–"
        )
        table.add_row(
            c[0],
            str(row.rank_flops) if row.rank_flops is not None else "–",
            two_lines(row.time, "seconds"),
            two_lines(row.flops, "flops"),
            two_lines(row.tokens, "tokens"),
            f"{c[4]}\n{c[5]}",
            c[6],
            speedup,
            f"[bold]{e.id}[/]: {c[9]}\n{c[8]} · {c[10]} · {c[11]} · {c[12]}",
        )
    return table
