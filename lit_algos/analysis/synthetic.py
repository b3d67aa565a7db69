"""Synthetic run records with known answers, for tests and for trying the analysis commands.

``synthetic_record(loss_fn=...)`` evaluates ``loss_fn(flops)`` on a FLOP grid. A recipe that is
``k`` times more compute-efficient has ``loss_fn_new(F) = loss_fn_ref(k * F)``; when the loss is
linear in ln F between evaluations, the interpolated CEG is exactly ``k`` in every unit
(tokens and seconds follow FLOPs through fixed FLOPs-per-token and FLOPs-per-second).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from lit_algos.config import Config, hash_config_dict
from lit_algos.config.recipes import deep_merge
from lit_algos.flops import estimate_flops
from lit_algos.records import EvalPoint, RunRecord, interpolate_to_target

BYTES_PER_TOKEN = 4.0  # for a plausible bits-per-byte column
# the host fingerprint every synthetic run reports (lit_algos.hardware.host_fingerprint's fields)
SYNTHETIC_HOST = {
    "cpu_model": "Synthetic CPU",
    "isa": ["avx2"],
    "cores": 2,
    "torch_threads": 2,
    "accelerator": "cpu",
    "accelerator_name": None,
    "accelerator_count": 0,
    "torch": "2.13.0",
}


def log_linear_loss(a: float = 10.0, b: float = 0.2, k: float = 1.0) -> Callable[[float], float]:
    """L(F) = a - b ln(k F): linear in ln F, so log-space interpolation is exact."""
    return lambda flops: a - b * math.log(k * flops)


# long: one record with every field a trained run writes, set out in one place to read against RunRecord
def synthetic_record(
    run_id: str,
    *,
    recipe: str = "ref",
    seed: int = 0,
    loss_fn: Callable[[float], float] | None = None,
    losses: Sequence[float] | None = None,
    flops: Sequence[float] | None = None,
    flops_per_token: float | None = None,
    flops_per_second: float = 1e9,
    target_loss: float | None = None,
    status: str | None = None,
    val_fingerprint: str | None = "synthetic-val",
    config: dict | None = None,
    hardware_class: str = "2-core CPU",
    commit: str = "0000000",
    stop_at_target: bool = False,
    full_run: bool = False,
    host: dict | None = None,
) -> RunRecord:
    """A complete run record whose curve is ``loss_fn`` (or ``losses``) on the ``flops`` grid.

    ``full_run``: a run of the speedrun rule, its declared length (the grid) run in full with
    ``train.stop_at_target: false`` (status budget_exhausted, the crossing still recorded).

    The record agrees with itself the way a trained one does (``leaderboard.verify.audit_record``):
    its config is a full resolved config (``config`` is merged into a tiny default one) with one
    token per step (batch 1, block 1), so step = tokens = FLOPs / FLOPs-per-token, the analytic
    FLOPs per token of that config unless ``flops_per_token`` is given."""

    grid = list(flops) if flops is not None else list(np.geomspace(1e12, 1e15, 16))
    base = {
        "name": recipe,
        "model": {"block_size": 1, "vocab_size": 4096},
        "train": {"batch_size": 1, "max_tokens": 1, "target_loss": target_loss, "seed": seed},
        "data": {"corpus": "synthetic"},
    }
    resolved = Config.from_dict(deep_merge(base, config or {}))
    # A tiny explicit FLOP grid (analysis unit tests: 1, 2, 4 FLOPs) is kept as given; any other grid
    # is snapped to whole tokens so the record is self-consistent.
    exact = flops is None or min(flops) >= 1e9
    if flops_per_token is None:
        flops_per_token = estimate_flops(resolved.model).per_token_train if exact else 1e6
    last = int(round(grid[-1] / flops_per_token)) if grid else 1
    # the budget: spent by the last evaluation, unless the run stopped at the target before it
    stopped_early = stop_at_target and target_loss is not None
    resolved.train.max_tokens = max(1, last) * (10 if stopped_early else 1)
    cfg = resolved.to_dict()
    curve = []
    token_grid = [
        max(1, int(round(f / flops_per_token))) if exact else int(round(f / flops_per_token)) for f in grid
    ]
    if exact:
        grid = [t * flops_per_token for t in token_grid]  # FLOPs = FLOPs per token x whole tokens, exactly
    values = list(losses) if losses is not None else [(loss_fn or log_linear_loss())(f) for f in grid]
    for i, (tokens, f, loss) in enumerate(zip(token_grid, grid, values)):
        curve.append(
            EvalPoint(
                step=tokens if exact else (i + 1) * 10,
                tokens=tokens,
                flops=float(f),
                train_seconds=float(f / flops_per_second),
                val_loss=float(loss),
                val_bpb=float(loss) / math.log(2) / BYTES_PER_TOKEN,
            )
        )
        if stop_at_target and target_loss is not None and loss <= target_loss:
            break
    to_target = interpolate_to_target(curve, target_loss) if target_loss is not None else None
    if status is None:
        status = "reached" if to_target is not None and not full_run else "budget_exhausted"
    if full_run:
        cfg["train"].update({"stop_at_target": False, "max_tokens": curve[-1].tokens, "batch_size": 1})
    return RunRecord(
        run_id=run_id,
        recipe=recipe,
        config=cfg,
        config_hash=hash_config_dict(cfg),
        seed=seed,
        status=status,
        code={"commit": commit, "dirty": False, "version": "0.1.0"},
        hardware={
            "accelerator": "cpu",
            "device_name": "synthetic",
            "n_devices": 1,
            "class": hardware_class,
            "host": dict(host or SYNTHETIC_HOST),
        },
        data={
            "corpus": "synthetic",
            "tokenizer": "bpe:4096",
            "val_fingerprint": val_fingerprint,
            "val_tokens": 65536,
            "val_bytes": int(65536 * BYTES_PER_TOKEN),
        },
        flops_per_token={"analytic": flops_per_token, "measured": None},
        target_loss=target_loss,
        reached=to_target is not None,
        to_target=to_target,
        curve=curve,
        final=curve[-1] if curve else None,
        tokens_per_second=flops_per_second / flops_per_token,
        started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:10:00Z",
    )


def synthetic_tracks_yaml(target_loss: float = 3.5, min_seeds: int = 3, baseline: str | None = None) -> str:
    """A tracks.yaml with a calibrated track ``toy`` matching ``synthetic_record``'s validation
    fingerprint, and an uncalibrated track ``closed``."""
    return f"""\
tracks:
  toy:
    description: A toy track for synthetic runs.
    corpus: synthetic
    tokenizer: bpe:4096
    val_tokens: 65536
    val_fingerprint: synthetic-val
    target_loss: {target_loss}
    hardware_class: 2-core CPU
    min_seeds_for_significance: {min_seeds}
    alpha: 0.01
    baseline: {baseline or "null"}
    baseline_recipe: retro
    rules: [Synthetic runs only.]
  closed:
    description: Not calibrated yet.
    corpus: synthetic
    tokenizer: bpe:4096
    val_tokens: 65536
    val_fingerprint: null
    target_loss: null
    hardware_class: 2-core CPU
"""


def synthetic_seeds(
    recipe: str,
    k: float = 1.0,
    seeds: Sequence[int] = (0, 1, 2),
    target_loss: float = 3.5,
    declare_shorter: bool = False,
    **kwargs,
) -> list[RunRecord]:
    """Full runs (the speedrun rule) of one recipe for ``target_loss`` (crossed mid-run, so the
    final losses sit well below it); seed s shifts the loss by 0.01 * (s - 1) so the seeds differ.
    ``k`` is the compute multiplier over ``k = 1``; ``declare_shorter``: the recipe declares a
    length 1/k of the default grid, so it ends at the same loss as ``k = 1`` with 1/k the FLOPs."""
    if declare_shorter:
        kwargs.setdefault("flops", [f / k for f in np.geomspace(1e12, 1e15, 16)])
    kwargs.setdefault("full_run", True)
    return [
        synthetic_record(
            f"{recipe}-s{s}",
            recipe=recipe,
            seed=s,
            target_loss=target_loss,
            loss_fn=lambda f, s=s: log_linear_loss(k=k)(f) + 0.01 * (s - 1),
            **kwargs,
        )
        for s in seeds
    ]


def synthetic_reference(
    seconds: float, flops_per_second: float = 1e9, host: dict | None = None, recipe: str = "base"
) -> dict:
    """A same-machine reference as ``speedrun.benchmark_reference`` measures it on SYNTHETIC_HOST
    (or ``host``): a short benchmark run of the baseline at ``flops_per_second`` (the synthetic
    runs' default), declaring as many tokens as take ``seconds`` (to whole tokens) at that rate."""
    fpt = synthetic_record("probe", recipe=recipe).flops_per_token["analytic"]
    record = synthetic_record(
        f"{recipe}-bench",
        recipe=recipe,
        flops=[fpt * 1024, fpt * 2048],  # >= 1e9 FLOPs: a grid of whole tokens at the analytic FLOPs/token
        flops_per_second=flops_per_second,
        full_run=True,
        host=host,
    )
    tps = record.tokens_per_second
    return {
        "recipe": recipe,
        "tokens_per_second": tps,
        "flops_per_token": fpt,
        "host": dict(host or SYNTHETIC_HOST),
        "declared_tokens": int(round(seconds * tps)),
        "steps": 2048,
        "record": record,
    }
