"""Throughput of the real training loop, measured so that it can be believed.

``benchmark_recipe`` trains a recipe for a few steps on the speedrun clock: ``steps`` timed
optimizer steps after one warm-up step, one evaluation at the end (excluded from the clock), no
target and no other budget. ``lit-algos benchmark`` and ``submit``'s same-machine reference both
use it, so both time the same thing.

A single timing on a shared machine means little (rounds under load disagreed by up to 20x), so
``compare`` alternates the recipes over several rounds (ABBA order: a drift in load hits every
recipe alike) and reports the median and the spread (min-max and IQR) of each. ``plain_loop``
runs the same model, optimizer, schedule, precision and data in a minimal PyTorch loop with no
Lightning: the reference row that tells what the trainer costs. An A/B row (``jobs``' ``ab``)
runs a recipe with extra config overrides, e.g. ``train.chunked_loss=false`` (the loss's plain
strategy) or ``optim.muon_ns_dtype=float32``: a before/after toggle is a config option, never an
environment variable read in a hot path. MFU is ``lit_algos.flops.mfu`` against the host's sustained
matmul peak on a CPU (``lit_algos.peaks``) and the data sheet on known GPUs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lit_algos.config.recipes import load_config, parse_override
from lit_algos.data import TokenDataModule, prepare_dataset
from lit_algos.errors import LitAlgosError
from lit_algos.flops import mfu, record_flops
from lit_algos.hardware import host_fingerprint, host_string
from lit_algos.model import build_model, param_counts
from lit_algos.optim import build_optimizer, build_scheduler
from lit_algos.peaks import fingerprint_peaks, peak_for
from lit_algos.precision import resolve_precision
from lit_algos.training.plan import plan_run
from lit_algos.training.run import train
from lit_algos.utils.host_memory import keep_freed_memory
from lit_algos.utils.spread import spread

PLAIN = "plain"  # the row name suffix of a recipe run in the plain PyTorch loop


def benchmark_recipe(recipe: str, overrides: Sequence[str] = (), steps: int = 30):
    """Train ``recipe`` (with ``overrides``) for ``steps`` timed steps; returns (config, run record)."""

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
    with keep_freed_memory(cfg.train.keep_freed_memory):  # as train() runs the fit
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
        # resource is POSIX only
        import resource
    except ImportError:  # not on Windows
        return 0.0, 0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_stime, ru.ru_minflt


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


# The environment toggles benchmarks once set, and the config options that replaced them.
RETIRED_TOGGLES = {
    "LIT_ALGOS_CHUNKED_CE=0": "train.chunked_loss=false",
    "LIT_ALGOS_NS_BF16=0": "optim.muon_ns_dtype=float32",
    "LIT_ALGOS_BATCHED_NS=0": None,  # the per-matrix Newton-Schulz lost its benchmark and is gone
}


def benchmark_jobs(
    recipes: Sequence[str],
    overrides: Sequence[str],
    steps: int,
    *,
    plain: bool = False,
    ab: Sequence[str] = (),
) -> dict[str, Callable[[], dict]]:
    """Row name -> one timed round: each recipe in the Lightning loop; with ``plain`` also in the
    plain PyTorch loop; for each ``ab`` override (``KEY=VALUE``, a config field) the recipe with it."""

    for toggle in ab:
        if toggle in RETIRED_TOGGLES:
            now = RETIRED_TOGGLES[toggle]
            raise LitAlgosError(
                f"--ab {toggle}: the benchmark toggles are config options now, not environment variables; "
                + (
                    f"use --ab {now}."
                    if now
                    else "the batched Newton-Schulz is the only one left (nothing to compare)."
                )
            )
        if toggle.startswith("LIT_ALGOS_"):
            raise LitAlgosError(
                f"--ab {toggle}: --ab takes a config override KEY=VALUE (e.g. train.chunked_loss=false), not an "
                "environment variable; set that for the whole command instead (e.g. LIT_ALGOS_PRECISION=asked "
                "lit-algos benchmark ...)."
            )
        parse_override(toggle)  # KEY=VALUE, or a ConfigError naming it
    jobs: dict[str, Callable[[], dict]] = {}
    for recipe in recipes:
        jobs[recipe] = lambda r=recipe: lightning_round(r, overrides, steps)
        if plain:
            jobs[f"{recipe} ({PLAIN})"] = lambda r=recipe: plain_loop(r, overrides, steps)
        for toggle in ab:
            jobs[f"{recipe} [{toggle}]"] = lambda r=recipe, t=toggle: lightning_round(
                r, [*overrides, t], steps
            )
    return jobs


def with_mfu(summary: dict[str, dict], peaks: dict[str, dict] | None, device_name: str) -> list[dict]:
    """``compare``'s rows with the peak each is measured against and their MFU (median, min, max...)."""

    rows = []
    for name, row in summary.items():
        peak, source = peak_for(row["precision"], peaks, device_name)
        spread_mfu = {k: mfu(v, peak) for k, v in row["flop_per_s"].items() if k != "n"}
        rows.append({"name": name, **row, "peak_flop_per_s": peak, "peak_source": source, "mfu": spread_mfu})
    return rows


def host_line() -> str:
    """Threads, the host and the load average: the context every figure is read in."""

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{host_string(host_fingerprint(peaks=fingerprint_peaks(cached=True)))}; torch threads {torch.get_num_threads()}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)"
    )


# ---- start-up ------------------------------------------------------------------------------------
def import_round(module: str = "lightning") -> dict:
    """Seconds from spawning ``python -c "import MODULE"`` to its exit: the import floor."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
    return {"seconds": time.perf_counter() - t0}


def startup_round(recipe: str = "debug", overrides: Sequence[str] = ()) -> dict:
    """Seconds from spawning ``python -m lit_algos train RECIPE`` to its header line and to its
    first training step's progress line (``train.log_every=1``), in a throw-away runs directory;
    the run is stopped there (SIGTERM) and waited for."""
    with tempfile.TemporaryDirectory(prefix="lit-algos-startup-") as tmp:
        cmd = [sys.executable, "-m", "lit_algos", "train", recipe, "--no-progress", "--runs-dir", tmp]
        cmd += [a for o in [*overrides, "train.log_every=1"] for a in ("--set", o)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        header = first_step = None
        for line in proc.stdout:
            if header is None and line.startswith("run "):
                header = time.perf_counter() - t0
            if line.startswith("step "):
                first_step = time.perf_counter() - t0
                break
        proc.send_signal(signal.SIGTERM)
        proc.communicate()
    if first_step is None:
        raise RuntimeError(f"`{' '.join(cmd)}` printed no step line (exit status {proc.returncode})")
    return {"seconds": first_step, "header_seconds": header}


def startup(recipe: str = "debug", overrides: Sequence[str] = (), rounds: int = 10, on_round=None) -> dict:
    """Alternating rounds of ``import lightning`` and ``train RECIPE`` to its first step (``compare``);
    ``beyond_import``: per round, the train process's seconds minus the import's, with its spread."""
    jobs = {"import lightning": import_round, f"train {recipe}": lambda: startup_round(recipe, overrides)}
    results: dict[str, list[dict]] = {name: [] for name in jobs}
    for r, order in enumerate(round_order(list(jobs), rounds)):
        for name in order:
            results[name].append(jobs[name]())
            if on_round is not None:
                on_round(r, name, results[name][-1])
    imports, trains = ([o["seconds"] for o in results[name]] for name in jobs)
    headers = [o["header_seconds"] for o in results[f"train {recipe}"] if o["header_seconds"]]
    return {
        "rounds": results,
        "import": spread(imports),
        "train": spread(trains),
        "header": spread(headers) if headers else None,
        "beyond_import": spread([t - i for t, i in zip(trains, imports, strict=True)]),
    }
