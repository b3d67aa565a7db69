"""Layer 2 of the board's tamper evidence: the whole entry is evidence.

An entry file holds the full records of its runs and of its same-machine reference runs, each
with a sha256 digest, and figures made from them: the statistics (t-test), the cost summary,
the reference seconds that rank its time, and who/what (recipe, config hash, hardware,
commit). Every figure is made by the functions here, at submit and again on every load:
``entry_problems`` re-derives them from the stored runs and the track, re-checks every digest
(and ``entry_digest``, the sha256 of the whole file), re-audits each record
(``leaderboard.audit``) and refuses one run standing for two seeds. An entry with any problem
is flagged and never ranked (``entries.load_entries``).

"One run, one seed" (``duplicate_problems``): two records whose losses agree at every
evaluation and training step (within ``DUPLICATE_NATS``) are one run. Under different seeds
that is a relabelled copy, wherever the two are; two entries' runs of the same seed and recipe
under different run ids are one run submitted twice. Reference runs may reproduce a run of the
same seed (they re-run the baseline on the submitter's host on purpose), and the same seed
under another recipe may reproduce it too (a systems-only change leaves the losses alone).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lit_algos.analysis.curves import UNITS, final_bpb, final_loss
from lit_algos.analysis.runs import recipe_hash
from lit_algos.analysis.stats import mean_interval, ttest_below
from lit_algos.leaderboard import speedrun
from lit_algos.leaderboard.audit import REL, audit_record, record_digest
from lit_algos.records import RunRecord, interpolate_to_target

# Two runs of different seeds differ by ~1e-2 nats at every evaluation; bitwise re-runs of one
# seed agree exactly. Anything closer than this at every point is the same run.
DUPLICATE_NATS = 1e-4
REFERENCE_NOT_KEPT = "not kept"  # a reference whose runs were not stored (entries made before issue 25)


def entry_digest(data: dict) -> str:
    """sha256 of a stored entry's canonical JSON, without its own ``entry_digest`` field."""
    return record_digest({k: v for k, v in data.items() if k != "entry_digest"})


# ---- the figures an entry publishes, made from its runs ---------------------------------------
def derive_statistics(runs: list[RunRecord], track, rule: str) -> dict:
    """The one-sided t-test of the mean final loss against the track's target (never raises)."""
    finals = [final_loss(r) for r in runs]
    n = len(finals)
    mean = sum(finals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in finals) / (n - 1)) if n > 1 else None
    t, p = ttest_below(finals, track.target_loss)
    stats = {
        "n": n,
        "mean_final_loss": mean,
        "std_final_loss": std,
        "t": t,
        "p": p,
        "alpha": track.alpha,
        "target_loss": track.target_loss,
        "min_seeds_for_significance": track.min_seeds_for_significance,
        "provisional": n < track.min_seeds_for_significance,
    }
    if rule == speedrun.RULE:
        stats["declared_tokens"] = speedrun.declared_tokens(runs[0]) or 0
    return stats


def cost_to_target(record: RunRecord, target: float) -> dict[str, float]:
    """FLOPs / seconds / tokens at which the run reached ``target`` (interpolated); a run that
    never reached it counts with its whole spend (its last evaluation). The old rule's cost."""
    hit = record.to_target or interpolate_to_target(record.curve, target)
    point = hit or record.final or record.curve[-1]
    return {unit: float(getattr(point, unit)) for unit in UNITS}


def summarize_costs(runs: list[RunRecord], target: float, confidence: float = 0.95) -> dict:
    out = {}
    for unit in UNITS:
        values = [cost_to_target(r, target)[unit] for r in runs]
        out[unit] = {**mean_interval(values, confidence).to_dict(), "values": values}
    out["reached"] = sum(1 for r in runs if r.to_target or interpolate_to_target(r.curve, target))
    return out


def derive_summary(runs: list[RunRecord], target: float, rule: str) -> dict:
    """Costs over seeds (the declared run's, or to the target under the old rule) and final losses."""
    if rule == speedrun.RULE:
        costs = speedrun.run_costs(runs, target)
    else:
        costs = summarize_costs(runs, target)
    return {
        **costs,
        "final_loss": mean_interval([final_loss(r) for r in runs]).to_dict(),
        "final_bpb": mean_interval([final_bpb(r) for r in runs]).to_dict(),
    }


def derive_identity(runs: list[RunRecord]) -> dict:
    """What the entry says about its runs: recipe, config hash, hardware, commit, dirty."""
    commits = sorted({str(r.code.get("commit")) for r in runs if r.code.get("commit")})
    hardware = sorted(
        {str(r.hardware.get("class") or r.hardware.get("device_name") or "unknown") for r in runs}
    )
    return {
        "recipe": runs[0].recipe,
        "config_hash": recipe_hash(runs[0].config),
        "hardware": " / ".join(hardware),
        "commit": commits[0] if len(commits) == 1 else (", ".join(commits) or None),
        "dirty": any(bool(r.code.get("dirty")) for r in runs),
    }


def differences(stored: Any, derived: Any, where: str) -> list[str]:
    """Where ``stored`` differs from ``derived`` (numbers within ``REL``; NaN equals NaN)."""
    if isinstance(derived, dict) and isinstance(stored, dict):
        out = []
        for key in sorted(set(stored) | set(derived), key=str):
            if key not in derived or key not in stored:
                out.append(f"{where}.{key} is {'not derivable' if key not in derived else 'missing'}")
            else:
                out += differences(stored[key], derived[key], f"{where}.{key}")
        return out
    if isinstance(derived, (list, tuple)) and isinstance(stored, (list, tuple)):
        if len(stored) != len(derived):
            return [f"{where} has {len(stored)} values, its runs give {len(derived)}"]
        return [
            p for i, (a, b) in enumerate(zip(stored, derived)) for p in differences(a, b, f"{where}[{i}]")
        ]
    if _number(stored) and _number(derived):
        a, b = float(stored), float(derived)
        if (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=REL, abs_tol=1e-12):
            return []
        return [f"{where} is {a:.6g}, its runs give {b:.6g}"]
    if stored is None and isinstance(derived, float) and not math.isfinite(derived):
        return []  # JSON stores NaN (a mean over no crossing) and infinity (t of equal losses) as null
    return [] if stored == derived else [f"{where} is {stored!r}, its runs give {derived!r}"]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---- one run, one seed -------------------------------------------------------------------------
def same_losses(a: RunRecord, b: RunRecord) -> bool:
    """Whether two records carry one run's losses: the same evaluation steps with losses within
    ``DUPLICATE_NATS`` everywhere, and the same training losses at the steps both recorded."""
    if not a.curve or [p.step for p in a.curve] != [p.step for p in b.curve]:
        return False
    if any(not abs(p.val_loss - q.val_loss) <= DUPLICATE_NATS for p, q in zip(a.curve, b.curve)):
        return False
    train_a = {int(s): v for s, v in a.train_curve}
    train_b = {int(s): v for s, v in b.train_curve}
    return all(abs(train_a[s] - train_b[s]) <= DUPLICATE_NATS for s in train_a.keys() & train_b.keys())


@dataclass
class Evidence:
    record: RunRecord
    role: str  # "run" (one of an entry's seeds) or "reference" (a same-machine baseline run)
    where: str  # e.g. "entry 'modern'" or "this submission"


def duplicate_problems(new: list[Evidence], existing: Iterable[Evidence] = ()) -> list[str]:
    """Why records of ``new`` are not runs of their own (``new`` against itself and ``existing``)."""
    pool = list(new) + list(existing)
    out = []
    for i, a in enumerate(new):
        for j, b in enumerate(pool):
            if j <= i and j < len(new) or a.record.run_id == b.record.run_id:
                continue  # each pair once; one record seen twice (a reference shared by entries) is fine
            if not same_losses(a.record, b.record):
                continue
            ra, rb = a.record, b.record
            if ra.seed != rb.seed:
                out.append(
                    f"{a.role} {ra.run_id} (seed {ra.seed}) has the losses of {b.role} {rb.run_id} (seed {rb.seed}) "
                    f"of {b.where}: one run cannot stand for two seeds"
                )
            elif a.role == b.role == "run" and recipe_hash(ra.config) == recipe_hash(rb.config):
                out.append(
                    f"run {ra.run_id} of {a.where} is a copy of run {rb.run_id} of {b.where} (same recipe, "
                    f"seed {ra.seed} and losses under another run id): an entry's runs must be its own"
                )
    return out


def entry_evidence(entry) -> list[Evidence]:
    where = f"entry {entry.id!r}"
    return [Evidence(r, "run", where) for r in entry.runs] + [
        Evidence(r, "reference", where) for r in entry.reference_runs or []
    ]


# ---- an entry on the board ---------------------------------------------------------------------
def entry_problems(entry, track=None) -> list[str]:
    """Why a stored entry cannot be trusted; empty when every digest holds, every record audits
    and every figure it shows re-derives from its runs (``track``: its track, for the t-test)."""
    raw = getattr(entry, "_raw", None) or entry.to_dict()
    out = _digest_problems(raw, entry)
    for r in [*entry.runs, *(entry.reference_runs or [])]:
        out += audit_record(r, deep=False)
    if not entry.runs:
        return out + ["the entry has no runs"]
    out += differences(
        {k: getattr(entry, k) for k in ("recipe", "config_hash", "hardware", "commit", "dirty")},
        derive_identity(entry.runs),
        "entry",
    )
    if track is None:
        return out + [
            f"its track {entry.track!r} is not in tracks.yaml, so its statistics cannot be re-derived"
        ]
    rule = entry.rule
    out += differences(entry.statistics, derive_statistics(entry.runs, track, rule), "statistics")
    out += differences(entry.summary, derive_summary(entry.runs, track.target_loss, rule), "summary")
    out += _reference_problems(entry)
    out += duplicate_problems(entry_evidence(entry))
    return out


def _digest_problems(raw: dict, entry) -> list[str]:
    out = []
    for key, digests_key in (("runs", "run_digests"), ("reference_runs", "reference_digests")):
        runs, digests = raw.get(key) or [], raw.get(digests_key)
        if digests is None:
            if runs and entry.entry_version >= 2:
                out.append(f"{key} carry no digests ({digests_key})")
            continue
        if len(digests) != len(runs):
            out.append(f"{digests_key} holds {len(digests)} digests for {len(runs)} {key}")
        for i, (run, digest) in enumerate(zip(runs, digests)):
            if record_digest(run) != digest:
                out.append(
                    f"{key}[{i}] does not match its stored digest (the record was edited after submission)"
                )
    stored = raw.get("entry_digest")
    if stored is not None and entry_digest(raw) != stored:
        out.append("the entry does not match its entry_digest (the file was edited after submission)")
    elif stored is None and entry.entry_version >= 2:
        out.append("the entry carries no entry_digest")
    return out


def _reference_problems(entry) -> list[str]:
    ref = entry.reference
    if ref is None:
        return ["reference_runs are stored without a reference"] if entry.reference_runs else []
    if not entry.reference_runs:
        if ref.get("records") == REFERENCE_NOT_KEPT and entry.entry_digest:
            return []  # made before reference runs were kept: covered by the entry digest alone
        return ["reference has no reference_runs to re-derive its seconds from"]
    try:
        derived = speedrun.derive_reference(ref.get("kind"), entry.reference_runs, ref.get("declared_tokens"))
    except ValueError as err:
        return [f"reference: {err}"]
    return differences(ref, derived, "reference")
