"""Run records: a record left "running" by a process that is gone reads as interrupted."""

import socket
import subprocess
import sys

from lit_algos.records import RunRecord, current_owner


def _record(owner: dict, status: str = "running") -> RunRecord:
    record = RunRecord(run_id="r1", recipe="debug", config={}, config_hash="h", seed=0, status=status)
    record.owner = owner
    return RunRecord.from_dict(record.to_dict())


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid no longer exists
    return proc.pid


def test_a_running_record_of_a_live_process_stays_running():
    assert _record(current_owner()).status == "running"


def test_a_running_record_whose_process_is_gone_reads_as_interrupted():
    record = _record({"host": socket.gethostname(), "pid": _dead_pid()})
    assert record.status == "interrupted"
    assert "killed" in record.error


def test_another_hosts_process_and_finished_records_are_left_alone():
    dead = _dead_pid()
    assert _record({"host": socket.gethostname() + "-elsewhere", "pid": dead}).status == "running"
    assert _record({"host": socket.gethostname(), "pid": dead}, status="reached").status == "reached"
    assert _record({}).status == "running"  # records written before owners were recorded


def test_run_ids_of_sweep_specs_pass_the_record_schema():
    # `sweep scaling` names its runs "<recipe>@<size>"; the record schema once refused the '@'
    # that the run id inherits, so the sweep's own records could not be read back.
    from lit_algos.schema import check_record
    from lit_algos.sweeps.ablation import plan_ablation
    from lit_algos.sweeps.scaling import plan_scaling

    specs = plan_scaling(["retro"], ["scales/mini"], seeds=1, overrides=[]).specs
    specs += plan_ablation("retro", "modern", ["norm"], seeds=1, overrides=[]).specs
    for spec in specs:
        record = RunRecord(
            run_id=spec.spec_id(),
            recipe=spec.name,
            config={},
            config_hash="h",
            seed=spec.seed,
            status="budget_exhausted",
        )
        check_record(record.to_dict(), "test")


def test_the_schema_of_a_curve_point_has_the_fields_of_an_eval_point():
    """schema.py declares the curve point's fields itself (it imports nothing from records, which
    validates with it): the two lists must stay the same."""
    import dataclasses

    from lit_algos.records import EvalPoint
    from lit_algos.schema import EvalPointModel

    assert set(EvalPointModel.model_fields) == {f.name for f in dataclasses.fields(EvalPoint)}
