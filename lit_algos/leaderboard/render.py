"""Rendering the board: ranked rows, the Markdown README, the terminal table and the plots.

Ranking (issue 14): only entries made under the declared-length rule that passed the t-test
are ranked. Time rank: by the speedup of the declared run over the same-machine reference
(``speedrun.entry_figures``; raw seconds are shown beside it, never compared across hosts);
FLOPs rank: by the declared run's FLOPs. Provisional entries (too few seeds) and entries made
under the old stop-at-target rule are listed after them, unranked. CEG at the target over the
baseline entry and the measured throughput ratio come from ``lit_algos.analysis.ceg``, with
intervals, and speedup = CEG x throughput is checked (not assumed).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from lit_algos.analysis.stats import Estimate
from lit_algos.hardware import host_details
from lit_algos.leaderboard import speedrun
from lit_algos.leaderboard.entries import Entry, Flagged, board_lock, load_entries
from lit_algos.leaderboard.evidence import REFERENCE_NOT_KEPT
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
    rank_time: int | None  # None: unranked (provisional, old rule, or no same-machine reference)
    rank_flops: int | None
    time: Estimate  # seconds of the declared run (old-rule entries: to the target)
    flops: Estimate
    tokens: Estimate
    loss: float
    bpb: float | None
    figures: speedrun.EntryFigures
    crossing: dict  # unit -> Estimate at the interpolated target crossing
    is_baseline: bool

    @property
    def host(self) -> str:
        """The host fingerprint(s) of the entry's runs (``hardware.host_details``), distinct ones joined."""
        hosts = [host_details((r.hardware or {}).get("host")) for r in self.entry.runs]
        return " / ".join(dict.fromkeys(hosts)) or "unknown host"

    @property
    def ceg(self) -> float | None:
        return self.figures.ceg.value

    @property
    def speedup(self) -> float | None:
        return self.figures.time_speedup.value

    @property
    def throughput(self) -> float | None:
        return self.figures.throughput.value

    @property
    def legacy(self) -> bool:
        return self.entry.rule != speedrun.RULE

    def to_dict(self) -> dict:
        f = self.figures
        return {
            "entry": self.entry.id,
            "rule": self.entry.rule,
            "rank_time": self.rank_time,
            "rank_flops": self.rank_flops,
            "time": self.time.to_dict(),
            "flops": self.flops.to_dict(),
            "tokens": self.tokens.to_dict(),
            "crossing": {u: e.to_dict() for u, e in self.crossing.items()},
            "val_loss": self.loss,
            "val_bpb": self.bpb,
            "n_seeds": self.entry.statistics.get("n"),
            "p_value": self.entry.statistics.get("p"),
            "speedup": f.time_speedup.to_dict(),
            "ceg": f.ceg.to_dict(),
            "throughput_ratio": f.throughput.to_dict(),
            "identity": f.identity,
            "baseline": self.is_baseline,
            "provisional": self.entry.provisional,
            "verified": bool(getattr(self.entry, "_verified", False)),
            "hardware": self.entry.hardware,
            "host": self.host,
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


def board_rows(track: Track, entries: list[Entry]) -> list[BoardRow]:
    """Rows ordered by time rank (ranked entries first, then unranked ones)."""
    base = baseline_entry(track, entries)
    rows = []
    for e in entries:
        legacy = e.rule != speedrun.RULE
        crossing_summary = e.summary if legacy else (e.summary.get("crossing") or {})
        rows.append(
            BoardRow(
                entry=e,
                rank_time=None,
                rank_flops=None,
                time=_estimate(e.summary, "train_seconds"),
                flops=_estimate(e.summary, "flops"),
                tokens=_estimate(e.summary, "tokens"),
                loss=e.statistics.get("mean_final_loss"),
                bpb=(e.summary.get("final_bpb") or {}).get("value"),
                figures=speedrun.entry_figures(e, base, track),
                crossing={u: _estimate(crossing_summary, u) for u in ("train_seconds", "flops", "tokens")},
                is_baseline=base is e,
            )
        )
    eligible = [r for r in rows if not r.entry.provisional and not r.legacy]
    by_flops = sorted(eligible, key=lambda r: (r.flops.value or float("inf"), r.entry.date))
    for rank, row in enumerate(by_flops, start=1):
        row.rank_flops = rank
    timed = [r for r in eligible if r.speedup is not None]
    for rank, row in enumerate(sorted(timed, key=lambda r: (-r.speedup, r.entry.date)), start=1):
        row.rank_time = rank
    ranked = sorted(timed, key=lambda r: r.rank_time)
    rest = sorted(
        (r for r in rows if r.rank_time is None), key=lambda r: (r.rank_flops or 10**9, r.entry.date)
    )
    return ranked + rest


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


def fmt_check(row: BoardRow) -> str:
    ident = row.figures.identity
    if not ident:
        return "–"
    mark = "ok" if abs(ident["relative_gap"]) <= 0.1 else "MISMATCH"
    return f"{ident['speedup']:.3g}× vs {ident['ceg_x_throughput']:.3g}× ({mark})"


def fmt_stats(entry: Entry) -> str:
    st = entry.statistics
    p = st.get("p")
    return f"n={st.get('n')}, p={p:.2g}" if p is not None else f"n={st.get('n')}"


def row_tags(row: BoardRow) -> str:
    tags = " (baseline)" if row.is_baseline else ""
    if row.legacy:
        tags += " (old stop-at-target rule: unranked)"
    elif row.entry.provisional:
        tags += " (provisional)"
    if (row.entry.reference or {}).get("records") == REFERENCE_NOT_KEPT:
        tags += " (reference runs not kept: its seconds are covered by the entry digest only)"
    return tags + verification_tag(getattr(row.entry, "_verification", None))


def verification_tag(check: dict | None) -> str:
    """What the last ``lit-algos verify`` of the entry found (leaderboard.verify.Verification)."""
    if not check:
        return ""
    losses = check.get("losses_verified", check.get("verified"))
    if not losses:
        return " (not reproduced by verify)"
    time = check.get("time_verified")
    if time is False:
        return " (time not reproduced)"
    return " (verified)" if time else " (verified: losses; time not judged on this host)"


def row_cells(row: BoardRow, rank: int | None) -> list[str]:
    e, f = row.entry, row.figures
    cross = row.crossing
    time = fmt_estimate(row.time, "seconds") + (
        f" (crossing {fmt_num(cross['train_seconds'].value, 'seconds')})"
        if not row.legacy
        else " (to target)"
    )
    flops = fmt_estimate(row.flops, "flops") + (
        f" (crossing {fmt_num(cross['flops'].value, 'flops')})" if not row.legacy else " (to target)"
    )
    return [
        str(rank) if rank is not None else "–",
        f.time_speedup.text(suffix="×") if f.time_speedup.value is not None else (f.time_speedup.note or "–"),
        time,
        flops,
        fmt_estimate(row.tokens, "tokens"),
        f"{row.loss:.4f}" if row.loss is not None else "–",
        f"{row.bpb:.4f}" if row.bpb is not None else "–",
        fmt_stats(e),
        f.ceg.text(suffix="×"),
        f.throughput.text(suffix="×"),
        fmt_check(row),
        f"{e.hardware}: {row.host}",
        e.description + row_tags(row),
        e.date[:10],
        (e.commit or "–")[:10] + (" (dirty)" if e.dirty else ""),
        ", ".join(e.contributors),
        e.id,
    ]


HEADERS = [
    "#",
    "Speedup, same machine [95% CI]",
    "Time (s), declared run [95% CI]",
    "FLOPs, declared run",
    "Tokens",
    "Val loss",
    "BPB",
    "Seeds, p",
    "CEG at target vs baseline [95% CI]",
    "Throughput ratio, measured",
    "Speedup at target vs CEG × throughput",
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
How the board works (the speedrun rule of issue 14):

- An entry is a recipe with a declared training length (`train.max_tokens`) and the run records of all its
  seeds; every seed runs the declared length in full (`train.stop_at_target: false`, which `lit-algos speedrun`
  sets). It is submitted with `lit-algos submit RUNS... --track TRACK --description ... --contributors ...`.
- A submission is accepted only if every run is complete and ran its declared length, was evaluated on the
  track's validation set (same `val_fingerprint`) for the track's target, and all runs are distinct seeds of
  one recipe. A one-sided t-test on the final validation losses of the full runs must show their mean below the
  target with p < alpha when there are at least the track's minimum number of seeds; with fewer seeds the entry
  is *provisional* (unranked) and its mean must be below the target. Seeds and p are shown per entry.
- Time, FLOPs and tokens are the cost of the declared run (means over seeds with 95% Student-t intervals); the
  interpolated crossing of the target is shown beside them. Time is the training clock (steps and data loading;
  compilation and evaluation excluded).
- Seconds from different machines are never compared. A CPU entry carries a same-machine reference (the track's
  baseline recipe benchmarked, or its seeds run, on the submitter's host) and is ranked by its speedup over it:
  reference seconds / entry seconds, with a 95% t interval on log seconds. A track with an exact hardware string
  compares raw seconds between runs on exactly that hardware.
- CEG at the target = baseline FLOPs to the target / entry FLOPs to the target (geometric means over seeds,
  95% Student-t interval on log costs; `lit-algos ceg --target` computes the same). The throughput ratio is
  measured (FLOP/s of the entry over the reference's); the last column checks speedup at the target against
  CEG × throughput instead of assuming it.
- Entries made under the old stop-at-target rule are listed, marked and unranked: their final losses sit at or
  below the target by construction, so their t-test says nothing.
- The whole entry is evidence (issue 25): the reference runs are stored in the entry, with digests, and checked
  and audited like its own runs; at submit every run's final loss is re-evaluated from its saved weights, and no
  record may carry another run's losses (one run, one seed, across the board). Whenever the board is built, the
  statistics, costs and reference seconds are re-derived from the stored runs; an entry whose figures or digests
  do not hold is listed as flagged and never ranked. `lit-algos verify ENTRY` re-runs one of its seeds or
  reference runs, drawn at random, and judges its losses and, on the submitter's host, its time.
"""


def render_markdown(
    tracks: dict[str, Track],
    entries: dict[str, list[Entry]],
    plots_dir: Path | None = None,
    flagged: list[Flagged] | None = None,
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
            f"- Hardware class: {track.hardware_class}"
            + (
                f"; seconds compared only on exactly `{track.exact_hardware}`"
                if track.exact_hardware
                else f"; time ranked by the speedup over `{track.baseline_recipe or 'the baseline'}` on the same machine"
            ),
            f"- Significance: one-sided t-test, p < {track.alpha} with at least {track.min_seeds_for_significance} seeds",
            f"- Baseline: {track.baseline or 'the earliest entry'}",
        ]
        lines += [f"- {rule}" for rule in track.rules]
        lines.append("")
        lines += _flagged_lines([f for f in flagged or [] if f.path.parent.name == name])
        if not track_entries:
            lines += ["No entries yet.", ""]
            continue
        rows = board_rows(track, track_entries)
        lines += [
            "### Ranked by time (speedup over the same-machine reference)",
            "",
            *_md_table(rows, "time"),
            "",
        ]
        lines += ["### Ranked by FLOPs of the declared run", "", *_md_table(rows, "flops"), ""]
        if plots_dir is not None:
            for stem, label in PLOT_KINDS.values():
                png = plots_dir / f"{name}-{stem}.png"
                if png.is_file():
                    lines.append(f"![{name}: validation loss against {label}](plots/{png.name})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _flagged_lines(flagged: list[Flagged]) -> list[str]:
    """Entries that fail their checks: named with the reason, never ranked, no figures shown."""
    if not flagged:
        return []
    lines = ["### Flagged entries (not ranked: their stored figures or digests do not hold)", ""]
    for f in flagged:
        reason = _md_cell("; ".join(f.problems))
        lines.append(f"- `{f.path.name}`: {reason[:600] + ('…' if len(reason) > 600 else '')}")
    return lines + [""]


def render_plots(track: Track, entries: list[Entry], plots_dir: Path, top: int = TOP_PLOTTED) -> list[Path]:
    """PNGs of validation loss against FLOPs and against time for the top entries and the baseline."""
    # matplotlib loads in about a second; only when plots are drawn
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
    flagged: list[Flagged] = []
    entries = load_entries(leaderboard_dir, flagged=flagged)
    plots_dir = leaderboard_dir / "plots"
    if plots:
        for name, track in tracks.items():
            if entries.get(name):
                render_plots(track, entries[name], plots_dir)
    markdown = render_markdown(tracks, entries, plots_dir, flagged)
    return atomic_write_text(leaderboard_dir / "README.md", markdown)


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

    target = track.target_loss if track.target_loss is not None else "not set"
    table = Table(title=f"{track.name}: reach val loss ≤ {target} on {track.hardware_class}", show_lines=True)
    for header in (
        "#",
        "#F",
        "speedup\n(same host)",
        "time (s)\nFLOPs",
        "loss · bpb\nseeds, p",
        "CEG at target\nthroughput",
    ):
        table.add_column(header)
    table.add_column("entry\nhardware · date · commit · by", overflow="fold")
    for row in rows:
        c = row_cells(row, row.rank_time)
        e = row.entry
        table.add_row(
            c[0],
            str(row.rank_flops) if row.rank_flops is not None else "–",
            c[1],
            f"{c[2]}\n{c[3]}",
            f"{c[5]} · {c[6]}\n{c[7]}",
            f"{c[8]}\n{c[9]}\ncheck: {c[10]}",
            f"[bold]{escape(e.id)}[/]: {escape(c[12])}\n{escape(c[11])} · {c[13]} · {c[14]} · {escape(c[15])}",
        )
    return table
