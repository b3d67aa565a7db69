"""`lit-algos --help` stays light: it must not import torch, lightning or scipy (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_help_does_not_import_the_training_stack():
    code = (
        "import sys, io, contextlib\n"
        "from lit_algos.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "import json\n"
        "print(json.dumps(sorted(m for m in ('torch', 'lightning', 'scipy', 'numpy') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_runs_header_needs_no_lightning():
    """`train` prints what it runs before importing Lightning (seconds on a loaded host)."""
    code = (
        "import sys\n"
        "from lit_algos.config.recipes import load_config\n"
        "from lit_algos.training import run\n"
        "from lit_algos.training.trainer import trainer_options\n"
        "cfg = load_config('debug')\n"
        "plan = run.plan_run(cfg)\n"
        "trainer_options(cfg)\n"
        "run._show_header('lines', None, cfg, plan, 'r1', 'runs/r1', False)\n"
        "print('lightning' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, last = out.stdout.strip().splitlines()[0], out.stdout.strip().splitlines()[-1]
    assert first.startswith("run r1 | folder runs/r1 | recipe debug") and last == "False"
