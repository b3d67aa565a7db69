"""Run records and run directories for the sweep tests, written without training."""

from __future__ import annotations

from pathlib import Path

from lit_algos.records import EvalPoint, RunRecord, current_owner
from lit_algos.sweeps import RunSpec


def fake_run(
    runs_dir: Path,
    spec: RunSpec,
    status: str,
    *,
    checkpoint: bool = False,
    evals: int = 2,
    seconds_per_eval: float = 10.0,
    owner: dict | None = None,
) -> Path:
    """``runs_dir/<spec_id>`` holding a record of ``status`` with ``evals`` evaluations (and a
    last.ckpt if asked): FLOPs = analytic FLOPs/token x tokens, ``seconds_per_eval`` apart."""
    from lit_algos.flops import estimate_flops

    cfg = spec.config()
    sid = spec.spec_id(cfg)
    fpt = estimate_flops(cfg.model).per_token_train
    step_tokens = cfg.train.batch_size * cfg.model.block_size
    curve = [
        EvalPoint(
            step=i * 4,
            tokens=i * 4 * step_tokens,
            flops=fpt * i * 4 * step_tokens,
            train_seconds=seconds_per_eval * i,
            val_loss=6.0 - 0.1 * i,
            val_bpb=2.0,
        )
        for i in range(1, evals + 1)
    ]
    record = RunRecord(
        run_id=sid,
        recipe=cfg.name,
        config=cfg.to_dict(),
        config_hash=cfg.config_hash(),
        seed=spec.seed,
        status=status,
        flops_per_token={"analytic": fpt},
        curve=curve,
        final=curve[-1] if curve else None,
        started_at="2026-01-01T00:00:00+00:00",
        owner=owner if owner is not None else current_owner(),
    )
    run_dir = runs_dir / sid
    record.save(run_dir / "record.json")
    if checkpoint:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"not a real checkpoint")
    return run_dir
