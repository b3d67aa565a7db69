"""Terminal summary of a run record."""

from __future__ import annotations

from rich.table import Table

from lit_algos.records import RunRecord


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def record_table(record: RunRecord) -> Table:
    table = Table(title=f"run {record.run_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    final = record.final
    tt = record.to_target
    rows = [
        ("recipe", f"{record.recipe} (config {record.config_hash}, seed {record.seed})"),
        ("status", record.status),
        (
            "params",
            f"{record.params.get('total', 0):,} total, {record.params.get('non_embedding', 0):,} non-embedding",
        ),
        ("FLOPs/token", _fmt(record.flops_per_token.get("analytic"), ".4g")),
        ("target", _fmt(record.target_loss, ".4f")),
        (
            "final val loss",
            _fmt(final and final.val_loss, ".4f") + f"  (bpb {_fmt(final and final.val_bpb, '.4f')})",
        ),
        ("steps / tokens", f"{_fmt(final and final.step, 'd')} / {_fmt(final and final.tokens, ',')}"),
        (
            "train seconds",
            _fmt(final and final.train_seconds, ".1f")
            + f"  (eval {record.eval_seconds:.1f}, warm-up {record.warmup_seconds:.1f})",
        ),
        (
            "to target",
            "-" if tt is None else f"{tt.train_seconds:.1f} s, {tt.tokens:,.0f} tokens, {tt.flops:.3e} FLOPs",
        ),
        ("tokens/s", _fmt(record.tokens_per_second, ",.0f")),
        ("MFU", _fmt(record.mfu, ".1%") + _peak_note(record)),
    ]
    if record.error:
        rows.append(("error", record.error))
    for k, v in rows:
        table.add_row(k, v)
    return table


def _peak_note(record: RunRecord) -> str:
    """Where the peak MFU is measured against comes from (a data sheet, or this CPU's matmul peak)."""
    peak = record.hardware.get("peak_flops") or {}
    if not peak.get("flops"):
        return ""
    return f"  (of {peak['flops'] / 1e9:,.0f} GFLOP/s: {peak.get('source', '?')})"
