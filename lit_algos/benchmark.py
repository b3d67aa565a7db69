"""Throughput of the real training loop, measured so that it can be believed.

``benchmark_recipe`` trains a recipe for a few steps on the speedrun clock: ``steps`` timed
optimizer steps after one warm-up step, one evaluation at the end (excluded from the clock), no
target and no other budget. ``lit-algos benchmark`` and ``submit``'s same-machine reference both
use it, so both time the same thing.

A single timing on a shared machine means little (rounds under load disagreed by up to 20x), so
``compare`` alternates the recipes over several rounds (ABBA order: a drift in load hits every
recipe alike) and reports the median and the spread (min-max and IQR) of each. ``plain_loop``
runs the same model, optimizer, schedule, precision and data in a minimal PyTorch loop with no
Lightning: the reference row that tells what the trainer costs. ``matmul_peak`` measures the
device's dense matmul rate (best of several sizes and repeats) so MFU on a CPU is reported
against a measured peak; on known GPUs it is reported against the data-sheet table
(``lit_algos.flops.PEAK_FLOPS``).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PLAIN = "plain"  # the row name suffix of a recipe run in the plain PyTorch loop


def benchmark_recipe(recipe: str, overrides: Sequence[str] = (), steps: int = 30):
    """Train ``recipe`` (with ``overrides``) for ``steps`` timed steps; returns (config, run record)."""
    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train

    cfg = load_config(recipe, list(overrides))
    tokens_per_step = cfg.train.batch_size * cfg.model.block_size
    budget = [
        f"train.max_tokens={(steps + 1) * tokens_per_step}",  # +1: the first step is warm-up
        "train.max_flops=null",
        "train.max_seconds=null",
        "train.target_loss=null",
        f"train.eval_every_tokens={10 * (steps + 1) * tokens_per_step}",
    ]
    cfg = load_config(recipe, [*overrides, *budget])
    with tempfile.TemporaryDirectory(prefix="lit-algos-bench-") as tmp:
        record = train(cfg, runs_dir=Path(tmp), progress=False)
    return cfg, record


def lightning_round(recipe: str, overrides: Sequence[str], steps: int) -> dict:
    """One timed round of the Lightning loop: tokens/s, seconds per step, FLOP/s, precision that ran."""
    usage = _usage()
    cfg, record = benchmark_recipe(recipe, overrides, steps)
    sys_s, faults = (b - a for a, b in zip(usage, _usage(), strict=True))
    timed = max(1, record.final.step - record.warmup_steps)
    ran = (record.hardware.get("precision") or {}).get("ran", cfg.train.precision)
    return {
        "tokens_per_s": record.tokens_per_second or 0.0,
        "step_s": record.final.train_seconds / timed,
        "flops_per_token": record.flops_per_token["analytic"],
        "precision": ran,
        "requested_precision": cfg.train.precision,
        "compile": cfg.train.compile,
        "params": record.params.get("total"),
        "warmup_s": record.warmup_seconds,
        "steps": timed,
        "sys_s": sys_s,  # system CPU seconds of the whole round (page faults of freed-and-refaulted buffers)
        "minor_faults": faults,
    }


def plain_loop(recipe: str, overrides: Sequence[str] = (), steps: int = 30) -> dict:
    """The recipe's model, optimizer, schedule, precision, grad clipping and data in a bare loop.

    No Lightning, no callbacks, no logging: ``steps`` timed optimizer steps after one warm-up step
    (the same split as ``benchmark_recipe``). Gradient accumulation follows the recipe's
    micro-batch size. Returns the same keys as ``lightning_round``.
    """
    import torch

    from lit_algos.config.recipes import load_config
    from lit_algos.data import TokenDataModule, prepare_dataset
    from lit_algos.flops import record_flops
    from lit_algos.model import build_model, param_counts
    from lit_algos.optim import build_optimizer, build_scheduler
    from lit_algos.precision import resolve_precision
    from lit_algos.training.plan import plan_run

    cfg = load_config(recipe, list(overrides))
    plan = plan_run(cfg)
    if plan.accelerator not in ("cpu", "gpu") or plan.world_size != 1:
        raise ValueError("the plain loop runs on one device (cpu or one gpu)")
    device = torch.device("cuda" if plan.accelerator == "gpu" else "cpu")
    ran, _ = resolve_precision(cfg.train.precision, plan.accelerator)
    prepared = prepare_dataset(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, device=device)
    model.train()
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim.schedule, steps + 1)
    loss_fn = torch.compile(model.loss) if cfg.train.compile else model.loss  # as LitGPT compiles it
    dm = TokenDataModule(prepared, cfg.model.block_size, cfg.train.batch_size, cfg.train.micro_batch_size, 0)
    micro = iter(dm.train_micro_batches(start_step=0, rank=0, world_size=1))
    accum = plan.accumulate
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=ran == "bf16-mixed")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step():
        for _ in range(accum):
            x, y = (t.to(device, non_blocking=True) for t in next(micro))
            with autocast:
                loss, aux = loss_fn(x, y, chunked=cfg.train.chunked_loss)
            ((loss + aux) / accum).backward()
        if cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()

    usage = _usage()
    t0 = time.perf_counter()
    step()  # warm-up: compilation, allocator
    sync()
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - t0
    sys_s, faults = (b - a for a, b in zip(usage, _usage(), strict=True))
    return {
        "tokens_per_s": steps * plan.tokens_per_step / seconds,
        "step_s": seconds / steps,
        "flops_per_token": record_flops(cfg.model)["analytic"],
        "precision": ran,
        "requested_precision": cfg.train.precision,
        "compile": cfg.train.compile,
        "params": param_counts(model)["total"],
        "warmup_s": warmup,
        "steps": steps,
        "sys_s": sys_s,
        "minor_faults": faults,
    }


def _usage() -> tuple[float, int]:
    """(system CPU seconds, minor page faults) of this process so far (zeros where unsupported)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0, 0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_stime, ru.ru_minflt


def spread(values: Sequence[float]) -> dict:
    """Median, min, max and the interquartile range (inclusive quartiles) of ``values``."""
    xs = sorted(values)
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "q1": q1, "q3": q3, "n": len(xs)}


def round_order(names: Sequence[str], rounds: int) -> list[list[str]]:
    """ABBA: the order of each round, reversed every other round, so a trend in load is shared."""
    return [list(names) if r % 2 == 0 else list(reversed(names)) for r in range(rounds)]


def compare(
    jobs: dict[str, Callable[[], dict]], rounds: int, on_round: Callable[[int, str, dict], None] | None = None
) -> dict[str, dict]:
    """Run every job once per round in alternating order; per job: its rounds and their spreads.

    ``jobs``: name -> a function doing one timed round (``lightning_round`` / ``plain_loop``).
    """
    results: dict[str, list[dict]] = {name: [] for name in jobs}
    for r, order in enumerate(round_order(list(jobs), rounds)):
        for name in order:
            out = jobs[name]()
            results[name].append(out)
            if on_round is not None:
                on_round(r, name, out)
    summary = {}
    for name, outs in results.items():
        row = {k: v for k, v in outs[0].items() if k not in ("tokens_per_s", "step_s", "warmup_s", "sys_s")}
        row["rounds"] = outs
        row["tokens_per_s"] = spread([o["tokens_per_s"] for o in outs])
        row["step_s"] = spread([o["step_s"] for o in outs])
        row["flop_per_s"] = spread([o["tokens_per_s"] * o["flops_per_token"] for o in outs])
        row["sys_s"] = spread([o.get("sys_s", 0.0) for o in outs])
        summary[name] = row
    return summary


def with_env(key: str, value: str, job: Callable[[], dict]) -> Callable[[], dict]:
    """``job`` run with ``os.environ[key] = value`` (restored after): a before/after toggle."""

    def run() -> dict:
        old = os.environ.get(key)
        os.environ[key] = value
        try:
            return job()
        finally:
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old

    return run


# ---- peak ----------------------------------------------------------------------------------------
PEAK_SIZES = {"fp32": (256, 512, 1024, 2048), "bf16": (256, 512, 1024)}


def matmul_peak(
    dtype: str = "fp32",
    sizes: Sequence[int] | None = None,
    repeats: int = 5,
    device: str = "cpu",
    budget_s: float = 3.0,
) -> dict:
    """Dense square matmul FLOP/s at each size (best of ``repeats``) and the best over sizes.

    ``budget_s`` bounds the time spent per size (emulated bf16 on an AVX2 CPU runs at ~1 GFLOP/s).
    """
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    per_size = {}
    for n in sizes or PEAK_SIZES[dtype]:
        a = torch.randn(n, n, device=device).to(dt)
        b = torch.randn(n, n, device=device).to(dt)
        out = torch.empty(n, n, device=device, dtype=dt)
        best = 0.0
        spent = 0.0
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            if device == "cuda":
                torch.cuda.synchronize()
            dt_s = time.perf_counter() - t0
            spent += dt_s
            best = max(best, 2 * n**3 / dt_s)
            if spent > budget_s:
                break
        per_size[n] = best
    return {"dtype": dtype, "per_size": per_size, "peak": max(per_size.values())}


def peak_for(precision: str, peaks: dict[str, dict] | None, device_name: str) -> tuple[float | None, str]:
    """The peak MFU is reported against, and where it comes from (measured here or the data sheet)."""
    from lit_algos.flops import PEAK_FLOPS, canonical_device, peak_flops

    key = canonical_device(device_name)
    if key is not None and PEAK_FLOPS.get(key):
        return peak_flops(device_name, precision), f"{key} data sheet"
    kind = "bf16" if precision.startswith("bf16") else "fp32"
    if peaks and kind in peaks:
        return peaks[kind]["peak"], f"measured {kind} matmul peak"
    return None, "no peak"


# The CPU peak that training's MFU (W&B, progress lines, the run record) is computed against: the
# benchmark's matmul measurement, stored per host and thread count so a run measures it once at most.
PEAK_CACHE = "peaks"


def _peak_cache_file(kind: str, cache_dir=None) -> Path:
    import hashlib

    import torch

    from lit_algos.data.hub import cache_root
    from lit_algos.hardware import host_fingerprint

    host = host_fingerprint("cpu")
    key = f"{host['cpu_model']}|{','.join(host['isa'] or [])}|{torch.get_num_threads()}|{kind}"
    return cache_root(cache_dir) / PEAK_CACHE / f"cpu-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def store_cpu_peak(kind: str, measured: dict, cache_dir=None) -> None:
    """Keep a CPU matmul peak (``matmul_peak``'s result) for the runs on this host and thread count."""
    from datetime import datetime, timezone

    from lit_algos.utils.io import atomic_write_json

    try:
        atomic_write_json(
            _peak_cache_file(kind, cache_dir),
            {
                "peak": measured["peak"],
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )
    except OSError:
        pass  # a read-only cache only costs a measurement next time


def cpu_peak(kind: str = "fp32", cache_dir=None) -> tuple[float, str]:
    """This CPU's dense matmul peak (FLOP/s) for ``kind`` (fp32 or bf16), and where it comes from:
    the last ``lit-algos benchmark`` (or training run) on this host and thread count, else a quick
    measurement now (a second or two), stored for the next run."""
    import json

    path = _peak_cache_file(kind, cache_dir)
    try:
        stored = json.loads(path.read_text())
        return float(stored["peak"]), f"measured {kind} matmul peak ({stored.get('measured_at', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    measured = matmul_peak(kind, sizes=PEAK_SIZES[kind][-2:], repeats=3, budget_s=1.0)
    store_cpu_peak(kind, measured, cache_dir)
    return measured["peak"], f"measured {kind} matmul peak (now)"


def device_peak(device_name: str, precision: str, accelerator: str = "cpu") -> tuple[float | None, str]:
    """Peak FLOP/s per device that MFU is computed against: a known GPU's data sheet, the measured
    matmul peak on a CPU (``cpu_peak``), or None for a GPU missing from the table."""
    from lit_algos.flops import PEAK_FLOPS, canonical_device, peak_flops

    key = canonical_device(device_name)
    if key is not None and PEAK_FLOPS.get(key):
        return peak_flops(device_name, precision), f"{key} data sheet"
    if accelerator != "cpu":
        return None, f"no peak for {device_name!r} in lit_algos.flops.PEAK_FLOPS"
    return cpu_peak("bf16" if str(precision).startswith("bf16") else "fp32")


def host_line() -> str:
    """Threads, the host and the load average: the context every figure is read in."""
    import torch

    from lit_algos.hardware import host_fingerprint, host_string

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{host_string(host_fingerprint())}; torch threads {torch.get_num_threads()}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)"
    )
