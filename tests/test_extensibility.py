"""A new entry on any axis is one file plus one registry line, and the existing tests cover it.

``tests/newcomers/`` holds one newcomer per axis, written from the contract alone: a norm (Dynamic
Tanh), an optimizer (Lion), a schedule (step decay) and a mixer (a GRU). This test runs the
parametrized contract tests of the suite in a fresh process with the newcomers registered (the
plugin stands for their import lines) and checks that each newcomer was collected and passed the
tests of its axis, which name no entry.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The tests each newcomer must be picked up by, by the test id fragment that names it.
EXPECTED = {
    "norm-dyt": [
        "test_components.py::test_every_registry_entry_trains",
        "test_components.py::test_every_entry_builds_on_meta_and_initialises",
        "test_components.py::test_every_entry_is_causal",
        "test_components.py::test_every_entry_saves_and_loads",
        "test_flops.py::test_every_entry_counts_its_flops",
    ],
    "mixer-gru": [
        "test_components.py::test_every_registry_entry_trains",
        "test_components.py::test_every_entry_builds_on_meta_and_initialises",
        "test_components.py::test_every_entry_is_causal",
        "test_components.py::test_every_entry_saves_and_loads",
        "test_flops.py::test_every_entry_counts_its_flops",
    ],
    "lion": [
        "test_optim.py::test_every_optimizer_fits_a_toy_regression",
        "test_optim.py::test_every_optimizer_state_dict_round_trips",
        "test_optim.py::test_every_optimizer_groups_parameters_by_role",
    ],
    "step_decay": [
        "test_schedules.py::test_warmup_is_a_linear_ramp_to_the_peak",
        "test_schedules.py::test_every_schedule_reloads_from_its_state_dict",
    ],
}


@pytest.mark.slow
def test_a_newcomer_on_every_axis_is_covered_by_the_existing_tests():
    files = sorted({f"tests/{t.split('::')[0]}" for tests in EXPECTED.values() for t in tests})
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.newcomers.plugin", "-q", "-rA", "--no-header",
           "-p", "no:cacheprovider", "-k", " or ".join(EXPECTED), *files]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    passed = set(re.findall(r"^PASSED (\S+)", out.stdout, re.M))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    for newcomer, tests in EXPECTED.items():
        for test in tests:
            assert any(p.startswith(f"tests/{test}[") and newcomer in p for p in passed), (newcomer, test)
