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
