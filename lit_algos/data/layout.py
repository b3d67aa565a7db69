"""The batch layout of a run: how a global batch splits over devices and micro-batches (no
Lightning import, so planning a run stays quick)."""

from __future__ import annotations

from lit_algos.errors import ConfigError


def batch_plan(batch_size: int, micro_batch_size: int | None, world_size: int) -> tuple[int, int]:
    """(micro-batch size per rank, accumulation steps) with micro * accum * world == batch_size."""
    if world_size < 1 or batch_size < 1 or batch_size % world_size:
        raise ConfigError(
            "train.batch_size",
            batch_size,
            f"The global batch must split evenly over {world_size} device(s): use a multiple of {world_size}.",
        )
    per_rank = batch_size // world_size
    if micro_batch_size is None:
        return per_rank, 1
    if micro_batch_size < 1 or per_rank % micro_batch_size:
        divisors = [d for d in range(1, per_rank + 1) if per_rank % d == 0]
        raise ConfigError(
            "train.micro_batch_size",
            micro_batch_size,
            f"Each of {world_size} device(s) gets {per_rank} sequences of the global batch {batch_size}; the micro-batch "
            f"must divide that: one of {', '.join(map(str, divisors))}.",
        )
    return micro_batch_size, per_rank // micro_batch_size
