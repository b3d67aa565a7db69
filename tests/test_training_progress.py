"""What a run shows while it runs: plain lines in a pipe (read while the run goes on), the terminal bar."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from lit_algos.training.progress import RunHeader, duration

REPO = Path(__file__).resolve().parents[1]


def test_train_piped_prints_plain_lines_while_it_runs(data_cache, tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "lit_algos", "train", "debug", "--runs-dir", str(runs)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LIT_ALGOS_CACHE": str(data_cache)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, status_at_first_eval = [], None
    for line in proc.stdout:  # read as the child writes: no line may wait for the end of the run
        lines.append(line.rstrip("\n"))
        if line.startswith("eval step 16/") and status_at_first_eval is None:
            (record,) = runs.glob("*/record.json")
            status_at_first_eval = json.loads(record.read_text())["status"]
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    # The first line came while the run was still going: its record said "running" at the first eval line.
    assert status_at_first_eval == "running"
    (run_dir,) = runs.iterdir()
    header = lines[0]
    assert header.startswith(f"run {run_dir.name} | folder {run_dir} | recipe debug (config ")
    assert "budget 16,384 tokens (64 steps)" in header and "eval every 4,096 tokens" in header
    steps = [x for x in lines if x.startswith("step ")]
    evals = [x for x in lines if x.startswith("eval step ")]
    # debug: 64 steps, train.log_every 5 -> steps 5..60; an evaluation every 16 steps.
    assert [int(re.match(r"step (\d+)/64", x).group(1)) for x in steps] == list(range(5, 61, 5))
    assert [int(re.match(r"eval step (\d+)/64", x).group(1)) for x in evals] == [16, 32, 48, 64]
    for x in steps:
        assert re.search(r"\| tokens [\d,]+ \| loss \d+\.\d{4} \| lr \d\.\d\de-0\d \| ", x), x
        assert re.search(r"tok/s \| MFU [\d.]+% \| elapsed \d+s \| ETA \d+s$", x), x
    record = json.loads((run_dir / "record.json").read_text())
    for x, point in zip(evals, record["curve"]):
        assert f"val loss {point['val_loss']:.4f} (bpb {point['val_bpb']:.4f})" in x
    assert "nan" not in "\n".join(lines)


def test_the_bar_shows_folder_lr_eta_and_no_nan_before_the_first_evaluation(data_cache, tmp_path):
    from rich.console import Console

    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=220)
    snapshots = []

    import lightning as L

    class Snap(L.Callback):  # what the bar says at each step before the first evaluation
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            bar = next(c for c in trainer.callbacks if type(c).__name__ == "BudgetProgress")
            if trainer.global_step in (3, 10):
                snapshots.append(bar._info(trainer, pl_module))

    record = train(
        load_config("debug"), runs_dir=tmp_path / "runs", console=console, progress="bar", callbacks=[Snap()]
    )
    text = out.getvalue()
    assert text.index(f"folder {tmp_path / 'runs' / record.run_id}") < text.index("% of budget")
    assert len(snapshots) == 2 and all("ETA" in s and "lr " in s and "val" not in s for s in snapshots)
    assert "nan" not in text.lower()
    assert "val 5." in text  # after evaluations the bar shows the validation loss


def test_header_and_durations():
    header = RunHeader("r1", "runs/r1", "modern", "abc", 0, 4096, 512, 600.0, 4.0, 131072, "1x cpu")
    line = header.line()
    assert line.startswith("run r1 | folder runs/r1 | recipe modern (config abc, seed 0)")
    assert "budget 2,097,152 tokens (512 steps) or 600 s of training" in line and "target 4.0" in line
    assert [duration(s) for s in (None, 42, 185, 7620)] == ["-", "42s", "3m05s", "2h07m"]
