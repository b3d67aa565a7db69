"""The whole entry is evidence (lit_algos.leaderboard.evidence, issue 25).

Each forgery tried on the board in issue 25 is a test here: reference runs with shrunk or
inflated seconds, an entry's statistics or reference seconds edited after submit, one run
relabelled as other seeds (also by ten concurrent submits), a seed carrying another seed's
curve. Known answers: synthetic seeds differ by 0.01 nats (``synthetic_seeds``), so two of them
are never "the same run"; a relabelled copy has exactly the same losses.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from lit_algos.analysis.synthetic import synthetic_reference, synthetic_seeds, synthetic_tracks_yaml
from lit_algos.config import hash_config_dict
from lit_algos.errors import SubmissionError
from lit_algos.leaderboard.entries import Entry, load_entries
from lit_algos.leaderboard.render import board_rows, write_board
from lit_algos.leaderboard.submit import submit
from lit_algos.leaderboard.tracks import load_tracks
from lit_algos.records import RunRecord


@pytest.fixture
def board(tmp_path) -> Path:
    root = tmp_path / "leaderboard"
    root.mkdir()
    (root / "tracks.yaml").write_text(synthetic_tracks_yaml())
    return root


def submit_toy(root, runs, **kwargs):
    if "reference_runs" not in kwargs:
        kwargs.setdefault("reference", synthetic_reference(1e6))
    return submit(runs, "toy", "toy entry", ["ada"], leaderboard_dir=root, plots=False, **kwargs)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def edited(record: RunRecord, change) -> RunRecord:
    data = json.loads(json.dumps(record.to_dict()))
    change(data)
    return RunRecord.from_dict(data)


def relabelled(record: RunRecord, seed: int) -> RunRecord:
    """The same run under another seed, every field that names the seed changed consistently."""

    def change(d):
        d["seed"] = seed
        d["config"]["train"]["seed"] = seed
        d["config_hash"] = hash_config_dict(d["config"])
        d["run_id"] = f"{d['recipe']}-s{seed}"

    return edited(record, change)


def scale_seconds(factor: float):
    def change(d):
        for p in d["curve"]:
            p["train_seconds"] *= factor
        d["final"] = d["curve"][-1]
        if d.get("to_target"):
            d["to_target"]["train_seconds"] *= factor

    return change


def edit_entry(root: Path, name: str, change) -> None:
    path = root / "entries" / "toy" / f"{name}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# ---- the reference runs are evidence too --------------------------------------------------------
def test_reference_runs_are_stored_with_digests_and_rederived(board):
    refs = synthetic_seeds("retro")  # the track's baseline recipe, run on the same host
    submit_toy(board, synthetic_seeds("fast", k=2.0), name="fast", reference_runs=refs)
    [entry] = load_entries(board)["toy"]
    assert [r.run_id for r in entry.reference_runs] == [r.run_id for r in refs]
    assert entry.reference["seconds"] == [r.final.train_seconds for r in refs]
    assert len(entry.reference_digests) == 3 and entry.entry_digest.startswith("sha256:")


def test_reference_runs_with_forged_seconds_are_refused_at_submit(board):
    """Issue 25: the reference runs' seconds tripled made a 3.31x speedup; they had no audit."""
    refs = [edited(r, scale_seconds(3.0)) for r in synthetic_seeds("retro")]
    before = snapshot(board)
    with pytest.raises(SubmissionError, match="reference run records do not agree") as err:
        submit_toy(board, synthetic_seeds("fast", k=2.0), reference_runs=refs)
    assert "tokens_per_second" in str(err.value)
    assert snapshot(board) == before


def test_reference_runs_meet_the_track_like_the_runs(board):
    refs = synthetic_seeds("retro", target_loss=3.6)  # trained for another target
    with pytest.raises(SubmissionError, match="Reference run retro-s0 trained for target_loss 3.6"):
        submit_toy(board, synthetic_seeds("fast", k=2.0), reference_runs=refs)
    refs = synthetic_seeds("retro")
    with pytest.raises(SubmissionError, match="Each reference run must be a distinct seed; repeated seed: 0"):
        submit_toy(board, synthetic_seeds("fast", k=2.0), reference_runs=[refs[0], replace(refs[1], seed=0)])


# ---- figures re-derived on every load ---------------------------------------------------------
EDITS = {
    # issue 25: statistics edited after submit were shown and ranked #1
    "statistics": lambda d: d["statistics"].update(p=1e-9, n=100, provisional=False),
    # issue 25: reference.seconds x3 was shown
    "reference.seconds": lambda d: d["reference"].update(seconds=[s * 3 for s in d["reference"]["seconds"]]),
    "summary.final_loss": lambda d: d["summary"]["final_loss"].update(value=1.0),
    "recipe": lambda d: d.update(recipe="other"),
    "description": lambda d: d.update(description="edited after submission"),
}


@pytest.mark.parametrize("field", list(EDITS))
def test_an_entry_whose_figures_do_not_rederive_is_flagged_never_ranked(board, field):
    submit_toy(board, synthetic_seeds("base"), name="base")
    submit_toy(board, synthetic_seeds("fast", k=2.0, flops_per_second=4e9), name="fast")
    edit_entry(board, "fast", EDITS[field])
    with pytest.warns(UserWarning, match=f"fast.json.*{field.split('.')[0]}|fast.json.*entry_digest"):
        entries = load_entries(board)["toy"]
    assert [e.id for e in entries] == ["base"]  # not ranked, not shown among the entries
    rows = board_rows(load_tracks(board)["toy"], entries)
    assert [(r.entry.id, r.rank_time) for r in rows] == [("base", 1)]
    with pytest.warns(UserWarning):
        write_board(board, plots=False)
    readme = (board / "README.md").read_text()
    assert "Flagged entries" in readme and "`fast.json`" in readme


def test_the_bundled_board_rederives_exactly():
    """The cpu-kjv entries load clean: every figure re-derived from the stored runs, each entry's
    same-machine reference from its stored retro-baseline seeds, each run on a fingerprinted host."""
    root = Path(__file__).resolve().parents[1] / "leaderboard"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a flagged entry warns
        entries = load_entries(root)["cpu-kjv"]
    assert {e.id for e in entries} >= {"retro-baseline", "modern", "speedrun"}
    byid = {e.id: e for e in entries}
    baseline = {r.run_id for r in byid["retro-baseline"].runs}
    for name in ("retro-baseline", "modern", "speedrun"):
        assert {r.run_id for r in byid[name].reference_runs} == baseline  # the same 5 seeds, stored
        for run in byid[name].runs:  # the fingerprint that tells hosts apart, with its peaks (issue 29)
            assert {"fp32", "bf16"} <= set(run.hardware["host"]["peaks"])


# ---- one run, one seed ----------------------------------------------------------------------
def test_a_run_relabelled_as_another_seed_is_refused(board):
    """Issue 25: a record relabelled as seed 77 was accepted beside the original."""
    runs = synthetic_seeds("toy", seeds=(0, 1))
    before = snapshot(board)
    with pytest.raises(SubmissionError, match="cannot stand for two seeds") as err:
        submit_toy(board, [*runs, relabelled(runs[0], 77)])
    assert "run toy-s0 (seed 0) has the losses of run toy-s77 (seed 77)" in str(err.value)
    assert snapshot(board) == before


def test_a_seed_carrying_another_seeds_curve_is_refused(board):
    runs = synthetic_seeds("toy")

    def copy_curve(d):  # seed 2's record with seed 1's losses, everything else its own
        src = runs[1].to_dict()
        d.update(curve=src["curve"], final=src["final"], to_target=src["to_target"])

    with pytest.raises(
        SubmissionError, match="toy-s1 \\(seed 1\\) has the losses of run toy-s2 \\(seed 2\\)"
    ):
        submit_toy(board, [runs[0], runs[1], edited(runs[2], copy_curve)])


def test_a_copy_of_a_run_on_the_board_is_refused_in_any_entry(board):
    runs = synthetic_seeds("toy")
    submit_toy(board, runs, name="first")
    before = snapshot(board)
    with pytest.raises(SubmissionError, match="toy-s77 \\(seed 77\\) has the losses of run toy-s0"):
        submit_toy(board, [relabelled(runs[0], 77)], name="again")  # one seed: a provisional entry
    renamed = [
        replace(r, run_id=f"{r.run_id}-mine") for r in synthetic_seeds("twin")
    ]  # same config and seeds
    with pytest.raises(SubmissionError, match="is a copy of run toy-s0 of entry 'first'"):
        submit_toy(board, renamed, name="twin")
    assert snapshot(board) == before


def test_losses_close_but_not_equal_are_other_runs():
    from lit_algos.leaderboard.evidence import same_losses

    a, b = synthetic_seeds("toy", seeds=(0, 1))
    assert not same_losses(a, b)  # seeds 0.01 apart
    nudged = edited(a, lambda d: [p.update(val_loss=p["val_loss"] + 1e-6) for p in d["curve"]])
    assert same_losses(a, nudged)  # a copy with noise added is still the same run
    shifted = edited(a, lambda d: [p.update(val_loss=p["val_loss"] + 1e-3) for p in d["curve"]])
    assert not same_losses(a, shifted)


def _submit_copy(root: str, seed: int, barrier, results) -> None:
    base = synthetic_seeds("honest", seeds=(0,))[0]
    barrier.wait()
    try:
        submit_toy(Path(root), [relabelled(base, seed)], name=f"copy-{seed}")
        results.put("landed")
    except SubmissionError:
        results.put("refused")


def test_ten_concurrent_relabelled_copies_land_once(board):
    """Issue 25: ten concurrent submits of seed-relabelled copies of one record all landed."""
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(10), ctx.Queue()
    procs = [ctx.Process(target=_submit_copy, args=(str(board), 70 + i, barrier, results)) for i in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes == ["landed"] + ["refused"] * 9
    assert len(list((board / "entries" / "toy").glob("*.json"))) == 1


# ---- migration of entries made before issue 25 ---------------------------------------------------
def _as_format_1(data: dict) -> dict:
    """What an entry looked like before issue 25: no reference runs, no entry digest."""
    out = {k: v for k, v in data.items() if k not in ("reference_runs", "reference_digests", "entry_digest")}
    return {**out, "entry_version": 1}


def test_migration_rederives_format_1_entries_and_keeps_every_figure(board, capsys):
    from lit_algos.cli import main

    base = synthetic_seeds("retro")
    submit_toy(board, base, name="retro", reference_runs=base)
    submit_toy(board, synthetic_seeds("fast", k=2.0), name="fast", reference_runs=base)
    submit_toy(board, synthetic_seeds("lost", k=3.0), name="lost")  # its benchmark record: not on the board
    track = load_tracks(board)["toy"]
    before = {r.entry.id: r.to_dict() for r in board_rows(track, load_entries(board)["toy"])}
    for name in ("retro", "fast", "lost"):
        path = board / "entries" / "toy" / f"{name}.json"
        path.write_text(json.dumps(_as_format_1(json.loads(path.read_text()))))
    with pytest.warns(UserWarning):
        assert load_entries(board)["toy"] == []  # format 1: the references cannot be re-derived
    tampered = board / "entries" / "toy" / "tampered.json"
    data = json.loads((board / "entries" / "toy" / "fast.json").read_text())
    data["id"], data["statistics"]["p"] = "tampered", 1e-12
    tampered.write_text(json.dumps(data))
    assert main(["leaderboard", "--leaderboard-dir", str(board), "--migrate", "--no-write", "--json"]) == 0
    out = capsys.readouterr().out
    assert "fast.json: migrated (figures re-derived; reference re-derived from 3 stored runs)" in out
    assert "lost.json: migrated (figures re-derived; reference runs not found: marked 'not kept')" in out
    assert "tampered.json: not migrated" in out and "statistics.p" in out
    tampered.unlink()
    after = {r.entry.id: r.to_dict() for r in board_rows(track, load_entries(board)["toy"])}
    assert after == before  # same ranks and figures, all re-derived


def test_a_new_entry_must_carry_its_reference_runs(board):
    submit_toy(board, synthetic_seeds("fast", k=2.0), name="fast")
    edit_entry(board, "fast", lambda d: d.update(reference_runs=None, reference_digests=None))
    with pytest.warns(UserWarning, match="reference has no reference_runs"):
        assert load_entries(board)["toy"] == []


def test_entry_round_trips_through_json(board):
    entry = submit_toy(board, synthetic_seeds("fast", k=2.0), name="fast")
    loaded = Entry.load(board / "entries" / "toy" / "fast.json")
    assert loaded.reference == entry.reference and loaded.statistics == entry.statistics
    assert [r.to_dict() for r in loaded.reference_runs] == [r.to_dict() for r in entry.reference_runs]
