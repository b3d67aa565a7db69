"""The speedrun rule and the figures the board shows for an entry (issue 14).

**Declared length** (the modded-nanogpt rule): an entry is a recipe with a declared training
length (``train.max_tokens``); every seed runs it in full with ``train.stop_at_target: false``;
the one-sided t-test is on the final validation losses of those full runs, so it is a test on
unbiased losses and a recipe that does not get below the target fails it at any seed count
(stopping at the first evaluation below the target made every final loss pass by construction).
The time, FLOPs and tokens an entry is ranked by are the cost of the declared run; the
interpolated crossing of the target is shown beside them.

**Same-machine time**: seconds from different hosts are never compared. A CPU-track entry carries
a reference, the track's baseline recipe measured on the submitter's host (``benchmark``: its
throughput times the baseline's declared tokens, or ``runs``: baseline seeds run beside), and is
ranked by ``speedup = reference seconds / entry seconds``. A track with ``exact_hardware`` (GPU
tracks) compares raw seconds between runs whose hardware string is exactly that one.

**One code path**: CEG at the target, its interval and the measured throughput ratio come from
``lit_algos.analysis.ceg.summarize``, the function behind ``lit-algos ceg --target``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lit_algos.analysis.ceg import summarize
from lit_algos.analysis.curves import UNITS
from lit_algos.analysis.stats import Estimate, log_ratio_interval, mean_interval
from lit_algos.benchmark import benchmark_recipe
from lit_algos.config.recipes import load_config
from lit_algos.errors import SubmissionError
from lit_algos.hardware import host_string, same_host
from lit_algos.records import RunRecord, interpolate_to_target

RULE = "declared-length"
LEGACY_RULE = "stop-at-target"  # entries made before issue 14: shown, never ranked


def declared_tokens(record: RunRecord) -> int | None:
    train = (record.config or {}).get("train") or {}
    value = train.get("max_tokens")
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def check_declared_runs(runs: list[RunRecord]) -> int:
    """Each run must be a full run of its declared length; returns the declared tokens."""
    for r in runs:
        train = (r.config or {}).get("train") or {}
        if train.get("stop_at_target", True):
            raise SubmissionError(
                f"Run {r.run_id} stopped at the target (train.stop_at_target is "
                f"{train.get('stop_at_target', 'absent, i.e. true')}). Speedrun entries run their declared length "
                "in full so that the t-test is on unbiased final losses: re-run with train.stop_at_target=false "
                "(`lit-algos speedrun` does this)."
            )
        declared = declared_tokens(r)
        if declared is None:
            raise SubmissionError(
                f"Run {r.run_id} declares no training length (train.max_tokens is {train.get('max_tokens')!r}). "
                "A speedrun entry declares train.max_tokens and runs it in full on every seed."
            )
        step_tokens = int(train.get("batch_size", 1)) * int(
            ((r.config or {}).get("model") or {}).get("block_size", 1)
        )
        ran = r.final.tokens if r.final else 0
        if r.status != "budget_exhausted" or ran < declared - step_tokens:
            raise SubmissionError(
                f"Run {r.run_id} did not run its declared length in full: status {r.status!r}, {ran:,} of "
                f"{declared:,} declared tokens. Every seed must complete train.max_tokens (no time or FLOP budget "
                "may cut it short)."
            )
    return declared_tokens(runs[0]) or 0


def run_costs(runs: list[RunRecord], target: float, confidence: float = 0.95) -> dict:
    """Mean cost of the declared runs (what is ranked) and of the target crossing (shown beside)."""
    out: dict = {}
    for unit in UNITS:
        values = [float(getattr(r.final, unit)) for r in runs]
        out[unit] = {**mean_interval(values, confidence).to_dict(), "values": values}
    crossing: dict = {}
    hits = [interpolate_to_target(r.curve, target) for r in runs]
    for unit in UNITS:
        values = [float(getattr(h, unit)) if h else math.nan for h in hits]
        crossing[unit] = {**mean_interval(values, confidence).to_dict(), "values": values}
    crossing["reached"] = sum(h is not None for h in hits)
    out["crossing"] = crossing
    return out


# ---- same-machine reference ----------------------------------------------------------------
def reference_from_runs(
    ref_runs: list[RunRecord], entry_runs: list[RunRecord], baseline_recipe: str | None
) -> dict:
    """A reference from baseline seeds run on the entry's host (full declared runs)."""
    if baseline_recipe and any(r.recipe != baseline_recipe for r in ref_runs):
        raise SubmissionError(
            f"The reference runs must be the track's baseline recipe {baseline_recipe!r}; got "
            f"{sorted({r.recipe for r in ref_runs})}."
        )
    check_declared_runs(ref_runs)
    reference = derive_reference("runs", ref_runs)
    check_reference_host(reference, entry_runs)
    return reference


def reference_from_benchmark(bench: dict, declared: int, entry_runs: list[RunRecord]) -> dict:
    """A reference from ``benchmark`` of the baseline recipe on this host (``bench["record"]``, the
    benchmark run's record): its measured tokens/s gives the seconds its declared run (``declared``
    tokens) takes here."""
    record = bench.get("record")
    if not isinstance(record, RunRecord):
        raise SubmissionError(
            "The same-machine reference carries no run record of its benchmark, so its seconds cannot be "
            "re-derived; measure it with `lit-algos submit` (speedrun.benchmark_reference)."
        )
    try:
        reference = derive_reference("benchmark", [record], declared)
    except ValueError as err:
        raise SubmissionError(f"The same-machine reference cannot be used: {err}.") from None
    check_reference_host(reference, entry_runs)
    return reference


def derive_reference(kind: str | None, ref_runs: list[RunRecord], declared: int | None = None) -> dict:
    """The reference an entry shows, made from its stored reference runs (at submit and on load):
    ``runs``, full declared runs of the baseline (their seconds); ``benchmark``, one short run of
    it whose tokens/s times ``declared`` tokens gives the seconds. ValueError when not derivable."""
    if not ref_runs:
        raise ValueError("no reference runs")
    first = ref_runs[0]
    common = {
        "recipe": first.recipe,
        "flops_per_token": (first.flops_per_token or {}).get("analytic"),
        "host": (first.hardware or {}).get("host"),
    }
    if kind == "runs":
        return {
            "kind": "runs",
            **common,
            "seconds": [float(r.final.train_seconds) for r in ref_runs],
            "tokens_per_second": float(np.mean([r.tokens_per_second or math.nan for r in ref_runs])),
            "runs": [r.run_id for r in ref_runs],
        }
    if kind == "benchmark":
        tps = first.tokens_per_second
        if len(ref_runs) != 1 or not tps or not isinstance(declared, int) or declared <= 0:
            raise ValueError(
                "a benchmark reference is one run with a measured tokens_per_second and the declared tokens "
                f"of the baseline (got {len(ref_runs)} runs, tokens_per_second {tps!r}, declared_tokens {declared!r})"
            )
        return {
            "kind": "benchmark",
            **common,
            "seconds": [declared / float(tps)],
            "tokens_per_second": float(tps),
            "declared_tokens": declared,
        }
    raise ValueError(f"unknown reference kind {kind!r} (runs or benchmark)")


def check_reference_host(reference: dict, runs: list[RunRecord]) -> None:
    for r in runs:
        host = (r.hardware or {}).get("host")
        if not same_host(reference.get("host"), host):
            raise SubmissionError(
                f"The reference was measured on {host_string(reference.get('host'))} but run {r.run_id} ran on "
                f"{host_string(host)}. Seconds are only comparable on one host: measure the reference on the "
                "machine (CPU model, ISA flags, threads) that ran the entry."
            )


def check_exact_hardware(runs: list[RunRecord], wanted: str) -> None:
    for r in runs:
        got = host_string((r.hardware or {}).get("host"))
        if got != wanted:
            raise SubmissionError(
                f"Run {r.run_id} ran on {got!r}; this track compares raw seconds only on exactly {wanted!r}."
            )


# ---- what the board shows ------------------------------------------------------------------
@dataclass
class EntryFigures:
    time_speedup: Estimate  # same-machine (or same exact hardware) speedup of the declared run
    ceg: Estimate  # FLOP CEG at the target over the baseline entry (analysis.ceg.summarize)
    throughput: Estimate  # measured FLOP/s over the reference's (same machine) or the baseline's
    identity: dict | None  # speedup at the target vs CEG x throughput
    note: str = ""


def _entry_seconds(entry) -> np.ndarray:
    return np.array([float(r.final.train_seconds) for r in entry.runs], dtype=float)


def _flop_per_s(r: RunRecord) -> float | None:
    fpt = (r.flops_per_token or {}).get("analytic")
    return r.tokens_per_second * fpt if r.tokens_per_second and fpt else None


def entry_figures(entry, baseline, track) -> EntryFigures:
    """Speedup (ranked), CEG at the target and measured throughput of ``entry`` over the baseline."""
    ceg = Estimate(None, note="no baseline entry")
    identity, note = None, ""
    summary = None
    if baseline is not None and entry.runs and baseline.runs:
        summary = summarize(baseline.runs, entry.runs, target=track.target_loss)
        ceg = summary.estimates["flops"]
    if getattr(track, "exact_hardware", None):
        if baseline is None or baseline.rule != RULE:
            speed = Estimate(None, note="no declared-length baseline on this hardware")
        else:
            speed = log_ratio_interval(np.log(_entry_seconds(baseline)), np.log(_entry_seconds(entry)))
        thr = summary.estimates["throughput"] if summary else Estimate(None)
        identity = summary.identity if summary else None
        return EntryFigures(speed, ceg, thr, identity)
    ref = entry.reference
    if not ref:
        none = Estimate(None, note="no same-machine reference: time not ranked")
        return EntryFigures(none, ceg, Estimate(None, note=none.note), None, none.note)
    ref_seconds = np.log(np.asarray(ref["seconds"], dtype=float))
    entry_seconds = np.log(_entry_seconds(entry))
    if ref_seconds.size >= 2:
        speed = log_ratio_interval(ref_seconds, entry_seconds)
    else:  # one benchmark figure: the interval is over the entry's seeds only
        speed = log_ratio_interval(paired_logs=ref_seconds[0] - entry_seconds)
        speed.method += "; reference: one benchmark measurement"
    ref_fps = (ref.get("tokens_per_second") or 0) * (ref.get("flops_per_token") or 0)
    fps = [v for v in (_flop_per_s(r) for r in entry.runs) if v]
    thr = Estimate(None, note="throughput not measured")
    if ref_fps > 0 and fps:
        thr = log_ratio_interval(paired_logs=np.log(np.asarray(fps)) - math.log(ref_fps))
        thr.method = "measured FLOP/s over the reference's, same host"
    if ceg.value and not ceg.bound and thr.value and baseline is not None and ref_fps > 0:
        # the baseline's crossing on this host: its FLOPs to the target at the reference's FLOP/s
        base_cross = summary.runs["ref"] if summary else []
        base_flops = [c.cost["flops"] for c in base_cross if c.cost.get("flops") and not c.censor]
        new_secs = [c.cost["train_seconds"] for c in summary.runs["new"] if c.cost.get("train_seconds")]
        if base_flops and new_secs:
            speed_target = math.exp(
                np.mean(np.log(base_flops)) - math.log(ref_fps) - np.mean(np.log(new_secs))
            )
            product = ceg.value * thr.value
            identity = {
                "speedup": speed_target,
                "ceg_x_throughput": product,
                "relative_gap": speed_target / product - 1,
            }
    return EntryFigures(speed, ceg, thr, identity, note)


def benchmark_reference(track, steps: int = 30, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Measure the track's baseline recipe on this host: ``steps`` timed training steps of the
    real loop (as ``lit-algos benchmark``); its tokens/s and the recipe's declared tokens give
    the seconds its declared run takes here."""

    if not track.baseline_recipe:
        raise SubmissionError(
            f"Track {track.name!r} names no baseline_recipe in tracks.yaml, so no same-machine reference can be "
            "measured; pass --reference-runs with baseline seeds run on this host."
        )
    cfg = load_config(track.baseline_recipe, list(overrides))
    declared = cfg.train.max_tokens
    _, record = benchmark_recipe(track.baseline_recipe, overrides, steps)
    if not record.tokens_per_second or not declared:
        raise SubmissionError(f"The reference benchmark of {track.baseline_recipe!r} measured no throughput.")
    return {
        "recipe": track.baseline_recipe,
        "tokens_per_second": float(record.tokens_per_second),
        "flops_per_token": (record.flops_per_token or {}).get("analytic"),
        "host": (record.hardware or {}).get("host"),
        "declared_tokens": int(declared),
        "steps": steps,
        "record": record,  # stored in the entry: the reference is re-derived from it on every load
    }
